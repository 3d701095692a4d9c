"""Device meshes: a 1-D :class:`~jax.sharding.Mesh` over the first N devices, and placing trees on it.

Data parallelism uses the axis ``"data"``: the training split is sharded by rows (:func:`shard_rows`), each
batch is split by rows and XLA's SPMD partitioner inserts the gradient all-reduce. With several processes
(:mod:`genjax.train.cluster`) the mesh spans every process's devices. Many seeds use the axis ``"seeds"``
(each device trains its own seeds).
"""
from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from genjax.core.errors import ConfigError
from genjax.train import cluster

DATA_AXIS = "data"
SEED_AXIS = "seeds"
CPU_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def _mesh(devices: int, axis: str) -> Mesh:
    """A 1-D mesh with axis ``axis`` over the first ``devices`` devices."""
    available = jax.device_count()
    if not isinstance(devices, int) or not 1 <= devices <= available:
        raise ConfigError(f"devices must be between 1 and the {available} available, got {devices!r}")
    return Mesh(np.array(jax.devices()[:devices]), (axis,))


def data_mesh(devices: int, batch_rows: int) -> Mesh:
    """A 1-D mesh named ``"data"`` over the first ``devices`` devices; the batch must split evenly."""
    if cluster.processes() > 1 and devices != jax.device_count():
        raise ConfigError(f"with {cluster.processes()} processes, training uses all {jax.device_count()} devices of "
                          f"the cluster; got devices={devices!r} (omit --devices)")
    mesh = _mesh(devices, DATA_AXIS)
    if batch_rows % devices:
        raise ConfigError(f"a batch of {batch_rows} rows does not split evenly over {devices} devices; choose a "
                          f"batch_size whose batch is a multiple of {devices}")
    return mesh


def seed_mesh(devices: int, seeds: int) -> Mesh:
    """A 1-D mesh named ``"seeds"`` over the first ``devices`` devices; the seeds must split evenly."""
    mesh = _mesh(devices, SEED_AXIS)
    if seeds % devices:
        raise ConfigError(f"{seeds} seeds do not split evenly over {devices} devices; use a multiple of {devices} "
                          "seeds or fewer devices")
    return mesh


def replicate(tree: Any, mesh: Mesh | None) -> Any:
    """``tree`` on every device of ``mesh`` (or on the default device without one); in a cluster every process
    must pass the same values."""
    if mesh is None:
        return jax.device_put(tree)
    sharding = NamedSharding(mesh, PartitionSpec())
    if cluster.processes() == 1:
        return jax.device_put(tree, sharding)
    # Every process holds the same tree (a state from the same seed): each fills its own devices, with no
    # communication (device_put would compare the processes' values first, a collective per leaf).
    host = jax.device_get(tree)
    return jax.tree.map(lambda a: jax.make_array_from_callback(np.shape(a), sharding, lambda index: a[index]), host)


def shard_rows(arrays: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Host arrays with a shared leading axis of ``n`` rows as global arrays sharded by rows over ``mesh``'s
    ``"data"`` axis: zero rows pad the end to a multiple of the device count, and each device holds one
    contiguous block, so a process holds only its own devices' rows (about n / processes)."""
    devices = mesh.devices.size
    sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))

    def place(a: np.ndarray) -> jax.Array:
        padded_rows = -(-len(a) // devices) * devices
        shape = (padded_rows, *a.shape[1:])

        def block(index: tuple[slice, ...]) -> np.ndarray:
            rows = a[index[0]]
            missing = (index[0].stop or padded_rows) - (index[0].start or 0) - len(rows)
            return np.concatenate([rows, np.zeros((missing, *a.shape[1:]), a.dtype)]) if missing else rows

        return jax.make_array_from_callback(shape, sharding, block)

    return {name: place(np.asarray(a)) for name, a in arrays.items()}


def cpu_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_devices_wanted(runs: int) -> int:
    """The CPU devices that ``runs`` independent runs split over best: the fewest that divide them and are at least
    the cores (XLA:CPU runs each device's program on its own thread, and a program of small matmuls keeps about one
    core busy; 27 runs on 2 cores: 3 devices)."""
    return next(d for d in range(1, runs + 1) if runs % d == 0 and d >= min(cpu_cores(), runs))


def force_cpu_devices(count: int) -> bool:
    """Ask XLA:CPU for ``count`` devices (``XLA_FLAGS``), unless the flags already choose a count or JAX's backends
    have started (too late then); True if it did."""
    from jax._src import xla_bridge

    flags = os.environ.get("XLA_FLAGS", "")
    if CPU_DEVICES_FLAG in flags or xla_bridge.backends_are_initialized():
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {CPU_DEVICES_FLAG}={count}".strip()
    return True


def devices_for_runs(runs: int) -> int:
    """How many devices ``runs`` runs split over by default: on a CPU, :func:`cpu_devices_wanted` as far as there
    are devices, on accelerators as many as divide the runs."""
    divisors = [d for d in range(1, min(runs, jax.device_count()) + 1) if runs % d == 0]
    if jax.default_backend() == "cpu":
        return next((d for d in divisors if d >= cpu_devices_wanted(runs)), divisors[-1])
    return divisors[-1]
