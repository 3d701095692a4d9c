"""The one training loop for every family.

The training split lives on the device; each call of one compiled function runs ``steps_per_call``
steps fused with ``jax.lax.scan``, sampling every batch inside the step (uniform indices from
``fold_in(key, step)``), with the state donated. Metrics come back once per call (the log step):
their mean over the call goes to ``metrics.jsonl`` and the progress bar. Because data order and
randomness derive from the seed and the step alone, a resumed run equals an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm
from tqdm.notebook import tqdm as notebook_tqdm

from jax.sharding import Mesh, NamedSharding, PartitionSpec

from genjax import families, optim, parallel, rundir
from genjax.checkpoint import Checkpointer
from genjax.data import Dataset
from genjax.errors import ConfigError, Interrupted, TrainingDiverged
from genjax.state import State


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns: the final state and the logged records."""

    state: State
    history: list[dict]
    compile_seconds: float  # ahead-of-time compilation of the fused step(s)
    train_seconds: float  # wall time of the loop, compilation, evaluation and checkpoints included
    steps_per_second: float  # median over the calls of this session (compilation excluded)


def scan_steps(train_step: Callable, batch_rows: int, length: int, mesh: Mesh | None = None) -> Callable:
    """``(state, data, key) -> (state, metrics [length])``: ``length`` train steps under one ``lax.scan``.

    ``data`` is a dict of device arrays with a shared leading axis (the training split); each step
    draws ``batch_rows`` uniform indices and its own step key from ``fold_in(key, state.step)``.
    With a ``mesh``, each batch is split along its rows over the mesh's ``data`` axis (data parallelism:
    XLA partitions the step and sums the gradients across devices). Not jitted: see :func:`fused_steps`.
    """
    batch_sharding = None if mesh is None else NamedSharding(mesh, PartitionSpec(parallel.DATA_AXIS))

    def run(state: State, data: dict, key: jax.Array) -> tuple[State, dict]:
        n = data["x"].shape[0]

        def body(state, _):
            k_batch, k_step = jax.random.split(jax.random.fold_in(key, state.step))
            index = jax.random.randint(k_batch, (batch_rows,), 0, n)
            batch = {name: jnp.take(a, index, axis=0) for name, a in data.items()}
            if batch_sharding is not None:
                batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
            return train_step(state, batch, k_step)

        return jax.lax.scan(body, state, length=length)

    return run


def fused_steps(train_step: Callable, batch_rows: int, length: int, mesh: Mesh | None = None) -> Callable:
    """:func:`scan_steps` jitted with the state donated."""
    return jax.jit(scan_steps(train_step, batch_rows, length, mesh), donate_argnums=0)


# On XLA:CPU, copy insertion that analyses loop regions drops the buffer copies at the boundaries of
# the step loop and of the PRNG's while loops: the same bits (tested), and 6-9% more steps/s for the
# small and default GANs on the 2-core CPU (A/B in one session, see benchmarks/RESULTS.md).
CPU_COMPILER_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}


def compile_steps(jitted: Callable, *args) -> Callable:
    """Ahead-of-time compile ``jitted`` for ``args``, with :data:`CPU_COMPILER_OPTIONS` on the CPU backend."""
    options = CPU_COMPILER_OPTIONS if jax.default_backend() == "cpu" else {}
    return jitted.lower(*args).compile(compiler_options=options)


class CompiledCalls:
    """The fused-step calls of one training loop, compiled once per call length (the last call of a run
    may be shorter), and the seconds spent compiling them."""

    def __init__(self, build: Callable[[int], Callable]):
        self._build = build  # call length -> jitted function of (state, data, key)
        self._calls: dict[int, Callable] = {}
        self.compile_seconds = 0.0

    def get(self, length: int, *args) -> Callable:
        """The call running ``length`` steps, compiled with :func:`compile_steps` for ``args`` the first time."""
        if length not in self._calls:
            t0 = time.perf_counter()
            self._calls[length] = compile_steps(self._build(length), *args)
            self.compile_seconds += time.perf_counter() - t0
        return self._calls[length]


# Seconds between progress refreshes written to a log file (a batch job's stderr): a refresh per call
# (100 steps by default) would put 800 carriage-return lines into the log of an 80,000-step run.
LOG_REFRESH_SECONDS = 30.0


def progress_bar(total: int, initial: int, desc: str, disable: bool) -> tqdm:
    """The loop's bar of steps: refreshed as tqdm does in a terminal or a notebook, and at most every
    :data:`LOG_REFRESH_SECONDS` when stderr is not a terminal (a log file), besides the final refresh."""
    to_log = not sys.stderr.isatty() and not issubclass(tqdm, notebook_tqdm)
    return tqdm(total=total, initial=initial, desc=desc, unit="step", disable=disable, dynamic_ncols=True,
                mininterval=LOG_REFRESH_SECONDS if to_log else 0.1)


class StopRequests:
    """While active (in the main thread), SIGINT and SIGTERM set ``signum`` instead of killing the
    process, so the loop can finish its call and checkpoint; a second signal stops at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        if self.signum is not None:  # asked twice: give up on the clean stop
            self.__exit__()
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}


def resolve_config(family: ModuleType, config: Any, dataset: Dataset, steps: int) -> Any:
    """The config as :func:`fit` runs it: ``decay_steps`` 0 becomes ``steps``, and a family with a
    ``resolve_config(config, dataset)`` (e.g. the DGN's one head per class) fills in what the data decide."""
    config = optim.resolve_decay_steps(config, steps)
    resolve = getattr(family, "resolve_config", None)
    return resolve(config, dataset) if resolve is not None else config


def validate_arguments(rows: int, dataset: Dataset, steps: int, steps_per_call: int, eval_every: int = 0,
                       checkpoint_every: int = 0) -> None:
    """ConfigError for loop arguments that cannot work (shared by :func:`fit` and ``parallel.fit_seeds``)."""
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


def fit(
    family: ModuleType | str,
    config: Any,
    dataset: Dataset,
    *,
    steps: int,
    seed: int = 0,
    workdir: str | Path | None = None,
    steps_per_call: int = 100,
    eval_every: int = 1000,
    checkpoint_every: int = 1000,
    keep: int = 3,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    devices: int | None = None,
) -> FitResult:
    """Train ``family`` (a module such as ``genjax.autoencoder``, or its name) on ``dataset`` for ``steps`` steps.

    With a ``workdir``: writes ``config.json``, ``metrics.jsonl`` (a record per call; the same numbers as
    TensorBoard events in ``tensorboard/`` when tensorboardX is installed) and orbax
    checkpoints every ``checkpoint_every`` steps and at the end; ``resume`` continues from the newest
    checkpoint (records past it are dropped); an existing run is refused unless ``resume`` or
    ``overwrite``. Every ``eval_every`` steps, ``family.evaluate(state, dataset, full=False)`` is
    logged with an ``eval_`` prefix. The config is first completed by :func:`resolve_config`
    (``config.json`` records the values it ran with). ``devices`` N > 1 trains data-parallel on the
    first N devices (:func:`genjax.parallel.data_mesh`): state and data replicated, each batch split by
    rows. A non-finite loss
    raises :class:`TrainingDiverged` naming the step; the checkpoints already saved are left as
    they were. SIGINT or SIGTERM (in the main thread) lets the current call finish, checkpoints the
    state and raises :class:`genjax.errors.Interrupted`; a second signal stops at once.
    """
    family = families.get(family) if isinstance(family, str) else family
    config = resolve_config(family, config, dataset, steps)
    rows = family.batch_rows(config)
    validate_arguments(rows, dataset, steps, steps_per_call, eval_every, checkpoint_every)
    mesh = parallel.data_mesh(devices, rows) if devices else None
    data = parallel.replicate(parallel.training_arrays(dataset), mesh)
    init_key, train_key = jax.random.split(jax.random.key(seed))
    state = parallel.replicate(family.init(init_key, config, {name: a[:rows] for name, a in data.items()}), mesh)

    history: list[dict] = []
    checkpointer = events = None
    if workdir is not None:
        workdir = Path(workdir)
        description = rundir.describe(family, config, dataset.name, dataset.data_shape, seed)
        rundir.prepare(workdir, description, resume, overwrite)
        checkpointer = Checkpointer(workdir / rundir.CHECKPOINTS, keep)
        if resume:  # records past the restored step (or all, if nothing was saved yet) are dropped
            if checkpointer.latest_step() is not None:
                state = parallel.replicate(checkpointer.restore(state), mesh)
            history = rundir.read_metrics(workdir, int(state.step))
            rundir.write_metrics(workdir, history)
        events = rundir.event_writer(workdir)
    try:
        with StopRequests() as stop:
            return _loop(family, state, data, dataset, train_key, history, checkpointer, events, workdir,
                         steps, steps_per_call, eval_every, checkpoint_every, progress, mesh, stop)
    finally:
        if checkpointer is not None:
            checkpointer.close()
        if events is not None:
            events.close()


def _loop(family, state, data, dataset, train_key, history, checkpointer, events, workdir,
          steps, steps_per_call, eval_every, checkpoint_every, progress, mesh, stop) -> FitResult:
    start_time = time.perf_counter()
    rows = family.batch_rows(state.config)
    calls = CompiledCalls(lambda length: fused_steps(family.train_step, rows, length, mesh))
    call_rates: list[float] = []
    step = int(state.step)
    bar = progress_bar(steps, min(step, steps), families.name_of(family), disable=not progress)
    while step < steps:
        length = min(steps_per_call - step % steps_per_call, steps - step)
        call = calls.get(length, state, data, train_key)
        t0 = time.perf_counter()
        state, stacked = call(state, data, train_key)
        stacked = jax.device_get(stacked)
        elapsed = time.perf_counter() - t0
        call_rates.append(length / elapsed)
        error = divergence(np.asarray(stacked["loss"]), step)
        if error is not None:
            bar.close()
            raise error
        step += length
        record = {"step": step, **{k: float(np.mean(v)) for k, v in stacked.items()},
                  "steps_per_sec": length / elapsed, "time_s": time.perf_counter() - start_time}
        if eval_every and step % eval_every == 0:
            record.update({f"eval_{k}": v for k, v in family.evaluate(state, dataset, full=False).items()})
        history.append(record)
        if workdir is not None:
            rundir.append_metrics(workdir, record)
            if events is not None:
                rundir.log_events(events, record)
            if checkpoint_every and step % checkpoint_every == 0:
                checkpointer.save(state)
        bar.set_postfix(loss=f"{record['loss']:.4g}", steps_s=f"{record['steps_per_sec']:.0f}", refresh=False)
        bar.update(length)  # refreshes, postfix included, when mininterval has passed
        if stop.signum is not None:
            bar.close()
            if checkpointer is not None:
                checkpointer.save(state)
            raise Interrupted(step, stop.signum, saved=checkpointer is not None)
    bar.close()
    if checkpointer is not None:
        checkpointer.save(state)
    return FitResult(
        state=state,
        history=history,
        compile_seconds=calls.compile_seconds,
        train_seconds=time.perf_counter() - start_time,
        steps_per_second=float(np.median(call_rates)) if call_rates else 0.0,
    )
