"""Many devices and many seeds: data parallelism through ``jax.sharding`` and seeds through ``jax.vmap``.

Data parallelism (``genjax.fit(..., devices=N)``, ``experiments.train --devices N``): a 1-D
:class:`~jax.sharding.Mesh` with axis ``"data"`` over the first N devices; the state and the
training split are replicated, every batch is split by rows, and XLA's SPMD partitioner inserts the
gradient all-reduce. One step equals the single-device step up to float summation order (tested
with 8 forced CPU devices).

Multi-host: start every process with ``jax.distributed.initialize()`` (coordinator address, process
count and id from the cluster environment or arguments) before anything else touches JAX; then
``jax.devices()`` lists every host's devices and ``devices=jax.device_count()`` spans them all. Each
process must load the same data set (it is replicated); only process 0 should write run files.

Many seeds (:func:`fit_seeds`): S independent runs of one config in one compiled program, the state
stacked along a leading axis and the fused steps vmapped over it; seed ``s`` gets the keys that
``genjax.fit(seed=s)`` would, so the results match S separate runs up to float rounding. With
``devices`` N, the seed axis is also split over a 1-D mesh with axis ``"seeds"`` (S / N seeds per
device, no communication between them). On a CPU, forcing one XLA device per core
(``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>`` before JAX starts) lets small models
use every core this way, where one program of tiny matmuls keeps about one core busy.
"""
from __future__ import annotations

import dataclasses
import time
from types import ModuleType
from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from genjax.data import Dataset
from genjax.errors import ConfigError

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
    """``tree`` on every device of ``mesh`` (or on the default device without one)."""
    if mesh is None:
        return jax.device_put(tree)
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def training_arrays(dataset: Dataset) -> dict[str, np.ndarray]:
    """The training split as a batch-like dict: ``{"x": ...}`` plus ``"y"`` when labelled."""
    arrays = {"x": dataset.x_train}
    if dataset.y_train is not None:
        arrays["y"] = dataset.y_train
    return arrays


@dataclasses.dataclass
class SeedsResult:
    """What :func:`fit_seeds` returns: states stacked along axis 0 (one per seed) and per-call metrics."""

    states: Any
    seeds: tuple[int, ...]
    history: list[dict]  # per call: {"step": ..., metric: [S] means over the call}
    compile_seconds: float
    train_seconds: float
    steps_per_second: float  # median over calls, counting one step of all S seeds as one step

    def state(self, i: int) -> Any:
        """Seed ``seeds[i]``'s state."""
        return jax.tree.map(lambda leaf: leaf[i], self.states)


def fit_seeds(family: ModuleType | str, config: Any, dataset: Dataset, *, steps: int, seeds: Sequence[int],
              steps_per_call: int = 100, devices: int | None = None) -> SeedsResult:
    """Train ``len(seeds)`` runs of one config at once: ``jax.vmap`` of the fused steps over stacked states.

    ``devices`` N splits the seeds over the first N devices (:func:`seed_mesh`; ``len(seeds)`` must be a
    multiple of N), the training split replicated on each. No run directory, evaluation or
    checkpoints (use :func:`genjax.fit` per seed for those); metrics come back once per call for
    every seed. A non-finite loss in any seed raises ``TrainingDiverged``.
    """
    from genjax import families
    from genjax.fit import CompiledCalls, divergence, resolve_config, scan_steps, validate_arguments

    family = families.get(family) if isinstance(family, str) else family
    seeds = tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be a non-empty list of distinct integers, got {list(seeds)}")
    config = resolve_config(family, config, dataset, steps)
    rows = family.batch_rows(config)
    validate_arguments(rows, dataset, steps, steps_per_call)
    mesh = seed_mesh(devices, len(seeds)) if devices else None
    data = replicate(training_arrays(dataset), mesh)
    keys = [jax.random.split(jax.random.key(s)) for s in seeds]  # init and train keys, as in genjax.fit
    example = {name: a[:rows] for name, a in data.items()}
    # Each seed's init exactly as fit runs it, stacked on the host and sent once (a vmapped init, or
    # jnp.stack per leaf, would compile a program for every new stacked shape: slower than this).
    inits = [family.init(k[0], config, example) for k in keys]
    states = jax.tree.map(lambda *leaves: np.stack([np.asarray(leaf) for leaf in leaves]), *inits)
    train_keys = jax.random.wrap_key_data(np.stack([np.asarray(jax.random.key_data(k[1])) for k in keys]))
    # row s of every stacked leaf to the device that trains seed s
    sharding = None if mesh is None else NamedSharding(mesh, PartitionSpec(SEED_AXIS))
    states, train_keys = jax.device_put((states, train_keys), sharding)
    calls = CompiledCalls(lambda length: jax.jit(
        jax.vmap(scan_steps(family.train_step, rows, length), in_axes=(0, None, 0)), donate_argnums=0))
    history, rates, start, step = [], [], time.perf_counter(), 0
    while step < steps:
        length = min(steps_per_call, steps - step)
        call = calls.get(length, states, data, train_keys)
        t0 = time.perf_counter()
        states, stacked = call(states, data, train_keys)
        stacked = jax.device_get(stacked)  # each metric [S, length]
        rates.append(length / (time.perf_counter() - t0))
        error = divergence(np.asarray(stacked["loss"]), step)  # [S, length]
        if error is not None:
            raise error
        step += length
        history.append({"step": step, **{k: np.asarray(v).mean(axis=1).tolist() for k, v in stacked.items()}})
    return SeedsResult(states, seeds, history, calls.compile_seconds, time.perf_counter() - start,
                       float(np.median(rates)))
