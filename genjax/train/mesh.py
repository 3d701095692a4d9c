"""Device meshes: a 1-D :class:`~jax.sharding.Mesh` over the first N devices, and placing trees on it.

Data parallelism uses the axis ``"data"``: the training split is sharded by rows (:func:`shard_rows`), each
batch is split by rows and XLA's SPMD partitioner inserts the gradient all-reduce. With several processes
(:mod:`genjax.train.cluster`) the mesh spans every process's devices. Many seeds use the axis ``"seeds"``
(each device trains its own seeds).
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from genjax.core.errors import ConfigError
from genjax.train import cluster

DATA_AXIS = "data"
SEED_AXIS = "seeds"


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
