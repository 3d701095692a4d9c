"""Many seeds in one program: S independent runs of one config, the state stacked along a leading axis
and the fused steps vmapped over it.

Seed ``s`` gets the keys that ``genjax.fit(seed=s)`` would, so the results match S separate runs up to
float rounding. With ``devices`` N, the seed axis is also split over a 1-D mesh with axis ``"seeds"``
(S / N seeds per device, no communication between them). On a CPU, forcing one XLA device per core
(``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>`` before JAX starts) lets small models use
every core this way, where one program of tiny matmuls keeps about one core busy.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from genjax.core.data import Dataset
from genjax.core.errors import ConfigError
from genjax.models import registry
from genjax.models.family import Family
from genjax.train import cluster
from genjax.train.mesh import SEED_AXIS, replicate, seed_mesh
from genjax.train.steps import CompiledCalls, divergence, run_config, scan_steps, validate_arguments


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


def fit_seeds(family: Family | str, config: Any, dataset: Dataset, *, steps: int, seeds: Sequence[int],
              steps_per_call: int = 100, devices: int | None = None) -> SeedsResult:
    """Train ``len(seeds)`` runs of one config at once: ``jax.vmap`` of the fused steps over stacked states.

    ``devices`` N splits the seeds over the first N devices (:func:`seed_mesh`; ``len(seeds)`` must be a
    multiple of N), the training split replicated on each. No run directory, evaluation or
    checkpoints (use :func:`genjax.fit` per seed for those); metrics come back once per call for
    every seed. A non-finite loss in any seed raises ``TrainingDiverged``.
    """
    family = registry.lookup(family)
    if cluster.processes() > 1:
        raise ConfigError(f"fit_seeds trains in one process, and this one is one of {cluster.processes()}; train each "
                          "seed with genjax.fit across the cluster, or the seeds in separate single-process jobs")
    seeds = tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be a non-empty list of distinct integers, got {list(seeds)}")
    config = run_config(family, config, dataset, steps)
    rows = family.batch_rows(config)
    validate_arguments(rows, dataset, steps, steps_per_call, seeds=seeds)
    mesh = seed_mesh(devices, len(seeds)) if devices else None
    data = replicate(dataset.train_arrays(), mesh)
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
