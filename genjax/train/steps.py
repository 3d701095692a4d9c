"""Fused training steps, shared by :func:`genjax.train.loop.fit` and :func:`genjax.train.sweep.fit_sweep`.

The training split lives on the device; one compiled call runs ``length`` steps under ``jax.lax.scan``,
each drawing its batch (uniform indices) and its key from ``fold_in(key, state.step)``, so data order
and randomness depend only on the seed and the step.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from genjax.core.data import Dataset
from genjax.core.errors import ConfigError, DataError, TrainingDiverged
from genjax.core.state import State
from genjax.models.family import Family
from genjax.train.mesh import DATA_AXIS


def scan_steps(train_step: Callable, batch_rows: int, length: int, mesh: Mesh | None = None,
               split_rows: int | None = None, unroll: bool = False) -> Callable:
    """``(state, data, key) -> (state, metrics [length])``: ``length`` train steps under one ``lax.scan``
    (rolled, or with ``unroll`` every step inlined).

    ``data`` is a dict of device arrays with a shared leading axis (the training split; ``split_rows`` real
    rows, default all); each step draws ``batch_rows`` uniform indices in ``0..split_rows-1`` and its own step
    key from ``fold_in(key, state.step)``. With a ``mesh``, ``data`` is sharded by rows over its ``data``
    axis (:func:`genjax.train.mesh.shard_rows`) and so is each batch (:func:`gather_rows`: the same rows as
    without a mesh), and XLA partitions the step and sums the gradients across devices (data parallelism).
    Not jitted: see :func:`fused_steps`.
    """
    def run(state: State, data: dict, key: jax.Array) -> tuple[State, dict]:
        n = data["x"].shape[0] if split_rows is None else split_rows

        def body(state, _):
            k_batch, k_step = jax.random.split(jax.random.fold_in(key, state.step))
            index = jax.random.randint(k_batch, (batch_rows,), 0, n)
            if mesh is None:
                batch = {name: jnp.take(a, index, axis=0) for name, a in data.items()}
            else:
                batch = gather_rows(data, index, mesh)
            return train_step(state, batch, k_step)

        return jax.lax.scan(body, state, length=length, unroll=unroll)

    return run


def gather_rows(data: dict, index: jax.Array, mesh: Mesh) -> dict:
    """``{name: a[index]}`` for arrays sharded by rows over ``mesh``'s ``data`` axis, the result sharded by rows
    too: each device takes the drawn rows it holds (zeros for the others) and a reduce-scatter sums the
    devices' picks into each device's block of the batch. Exact: each sum adds zeros to one row."""
    def pick(blocks: dict, index: jax.Array) -> dict:
        def one(block):
            local = index - jax.lax.axis_index(DATA_AXIS) * block.shape[0]
            held = (local >= 0) & (local < block.shape[0])
            rows = jnp.take(block, jnp.clip(local, 0, block.shape[0] - 1), axis=0)
            rows = jnp.where(held.reshape(-1, *(1,) * (rows.ndim - 1)), rows, jnp.zeros((), rows.dtype))
            return jax.lax.psum_scatter(rows, DATA_AXIS, scatter_dimension=0, tiled=True)
        return {name: one(block) for name, block in blocks.items()}

    return jax.shard_map(pick, mesh=mesh, in_specs=(PartitionSpec(DATA_AXIS), PartitionSpec()),
                         out_specs=PartitionSpec(DATA_AXIS))(data, index)


def fused_steps(train_step: Callable, batch_rows: int, length: int, mesh: Mesh | None = None,
                split_rows: int | None = None, unroll: bool = False) -> Callable:
    """:func:`scan_steps` jitted with the state donated."""
    return jax.jit(scan_steps(train_step, batch_rows, length, mesh, split_rows, unroll), donate_argnums=0)


# How a call of ``length`` steps executes (``genjax.fit(loop_strategy=...)``, ``--loop-strategy``):
#   scan      one compiled call per log step, the steps under a rolled ``lax.scan`` (a while loop);
#   unrolled  one compiled call per log step, every step inlined (compile time grows with steps_per_call);
#   dispatch  one compiled call per step (a scan of 1), dispatched from Python; metrics stay on the device.
LOOP_STRATEGIES = ("scan", "unrolled", "dispatch")


def resolve_strategy(requested: str = "auto") -> str:
    """The strategy a loop runs with: ``requested``, checked, or for ``"auto"`` the rule that
    ``benchmarks/strategies.py`` checks on every configuration it times: ``scan`` on every backend (on the
    2-core CPU it is the fastest or within noise of it everywhere, and compiles once per call length in
    seconds; benchmarks/RESULTS.md, "Loop strategies")."""
    if requested == "auto":
        return "scan"
    if requested not in LOOP_STRATEGIES:
        raise ConfigError(f"unknown loop strategy {requested!r}; choose auto, {', '.join(LOOP_STRATEGIES)}")
    return requested


# On XLA:CPU, copy insertion that analyses loop regions drops the buffer copies at the boundaries of
# the step loop and of the PRNG's while loops: the same bits (tested), and 6-9% more steps/s for the
# small and default GANs on the 2-core CPU (A/B in one session, see benchmarks/RESULTS.md).
CPU_COMPILER_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}


def compile_steps(jitted: Callable, *args) -> Callable:
    """Ahead-of-time compile ``jitted`` for ``args``, with :data:`CPU_COMPILER_OPTIONS` on the CPU backend."""
    options = CPU_COMPILER_OPTIONS if jax.default_backend() == "cpu" else {}
    return jitted.lower(*args).compile(compiler_options=options)


class CompiledCalls:
    """The calls of one training loop, each running ``length`` steps as ``strategy`` says (one of
    :data:`LOOP_STRATEGIES`, as :func:`resolve_strategy` returns it), compiled once per call length (the last call
    of a run may be shorter; ``dispatch`` compiles one step), and the seconds spent compiling them."""

    def __init__(self, build: Callable[[int, bool], Callable], strategy: str = "scan"):
        self._build = build  # (call length, unroll) -> jitted function of (state, data, key)
        self.strategy = strategy
        self._calls: dict[int, Callable] = {}
        self.compile_seconds = 0.0

    def get(self, length: int, *args) -> Callable:
        """The call running ``length`` steps, compiled with :func:`compile_steps` for ``args`` the first time."""
        compiled_length = 1 if self.strategy == "dispatch" else length
        if compiled_length not in self._calls:
            t0 = time.perf_counter()
            self._calls[compiled_length] = compile_steps(self._build(compiled_length, self.strategy == "unrolled"),
                                                         *args)
            self.compile_seconds += time.perf_counter() - t0
        compiled = self._calls[compiled_length]
        return functools.partial(dispatched, compiled, length) if self.strategy == "dispatch" else compiled


def dispatched(one_step: Callable, length: int, state: Any, *args) -> tuple[Any, dict]:
    """``length`` calls of the compiled one-step call ``one_step(state, *args)``, its metrics ``[..., 1]`` joined
    along their step axis on the device (fetched by the caller at the log step)."""
    chunks = []
    for _ in range(length):
        state, metrics = one_step(state, *args)
        chunks.append(metrics)
    axis = jnp.ndim(chunks[0]["loss"]) - 1  # the step axis: last, after any runs axis of a sweep
    return state, jax.tree.map(lambda *parts: jnp.concatenate(parts, axis=axis), *chunks)


def run_config(family: Family, config: Any, dataset: Dataset, steps: int) -> Any:
    """The config a run of ``steps`` steps on ``dataset`` trains with: every placeholder resolved (the
    value ``config.json`` records), after checking that the data carry the labels it needs."""
    config = config.resolved(dataset.context(steps))
    if family.CAPABILITIES.labels and family.needs_labels(config):
        if dataset.y_train is None:
            raise ConfigError(f"this {family.NAME} config trains on labels, and {dataset.name} has none")
        empty = np.flatnonzero(np.bincount(dataset.y_train, minlength=dataset.num_classes) == 0)
        if len(empty):
            raise DataError(f"this {family.NAME} config trains on labels, and classes {', '.join(map(str, empty[:5]))} "
                            f"of 0..{dataset.num_classes - 1} have no training examples in {dataset.name}; number "
                            "the classes 0..K-1 without gaps")
    return config


def validate_arguments(rows: int, dataset: Dataset, steps: int, steps_per_call: int, eval_every: int = 0,
                       checkpoint_every: int = 0, seeds: tuple = (0,)) -> None:
    """ConfigError for loop arguments that cannot work."""
    for seed in seeds:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**32:
            raise ConfigError(f"a seed must be an integer in 0..{2**32 - 1} (the PRNG's range), got {seed!r}")
    for name, value in (("steps", steps), ("steps_per_call", steps_per_call)):
        if not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    for name, value in (("eval_every", eval_every), ("checkpoint_every", checkpoint_every)):
        if not isinstance(value, int) or value < 0 or value % steps_per_call:
            raise ConfigError(f"{name} must be 0 (off) or a multiple of steps_per_call={steps_per_call}, got {value!r}")
    if rows > len(dataset.x_train):
        raise ConfigError(f"a batch of {rows} examples (batch_size, times n_critic for a GAN or num_heads for a DGN) "
                          f"is larger than the {len(dataset.x_train)} training examples of {dataset.name}")


def divergence(losses: np.ndarray, first_step: int) -> TrainingDiverged | None:
    """The error for the first non-finite entry of ``losses`` ``[..., length]`` (the last axis counts steps
    from ``first_step`` + 1), or None when every loss is finite."""
    bad = np.argwhere(~np.isfinite(losses))
    if not len(bad):
        return None
    return TrainingDiverged(first_step + int(bad[0][-1]) + 1, float(losses[tuple(bad[0])]))
