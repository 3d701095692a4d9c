"""The one training loop for every family.

The training split lives on the device; each call of one compiled function runs ``steps_per_call``
steps fused with ``jax.lax.scan`` (:mod:`genjax.train.steps`), with the state donated. Metrics come
back once per call (the log step): their mean over the call goes to the run's writers
(:mod:`genjax.train.writers`) and the progress bar. Because data order and randomness derive from the
seed and the step alone, a resumed run equals an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from genjax.core.data import Dataset, cache_dir
from genjax.core.errors import ConfigError, Interrupted
from genjax.core.state import State
from genjax.models import registry
from genjax.models.family import AUTO_RUN, Family, RunRecipe, runs_used
from genjax.train import cluster, rundir
from genjax.train import mesh as mesh_lib
from genjax.train.checkpoint import Checkpointer
from genjax.train.lock import waiting_lock
from genjax.train.progress import progress_bar
from genjax.train.signals import StopRequests
from genjax.train.steps import CompiledCalls, divergence, fused_steps, resolve_strategy, run_config, validate_arguments
from genjax.train.writers import MetricWriter, run_writers

Evaluate = Callable[[State], dict]  # a trained state -> held-out measures (numbers)


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns: the final state and the logged records."""

    state: State
    history: list[dict]
    compile_seconds: float  # ahead-of-time compilation of the fused step(s), this session
    train_seconds: float  # wall time of the loop (compilation, evaluation, checkpoints), every session of the run
    steps_per_second: float  # median over the logged calls of every session (compilation excluded)
    resident_rows: int = 0  # rows of the training split (padding included) on this process's devices, all counted
    loop_strategy: str = "scan"  # how the calls ran (genjax.train.steps.LOOP_STRATEGIES)


def fit(
    family: Family | str,
    config: Any,
    dataset: Dataset,
    *,
    steps: int,
    seed: int = 0,
    workdir: str | Path | None = None,
    steps_per_call: int = 100,
    evaluate: Evaluate | None = None,
    eval_every: int = 1000,
    checkpoint_every: int = 1000,
    keep: int = 3,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    devices: int | None = None,
    loop_strategy: str = "auto",
) -> FitResult:
    """Train ``family`` (a module such as ``genjax.gan``, or its name) on ``dataset`` for ``steps`` steps.

    The config is first completed (:func:`genjax.train.steps.run_config`: every placeholder resolved;
    ``config.json`` records the values it ran with). With a ``workdir``: writes ``config.json``,
    ``metrics.jsonl`` (a record per call; the same numbers as TensorBoard events in ``tensorboard/``
    when tensorboardX is installed) and orbax checkpoints every ``checkpoint_every`` steps and at the
    end; ``resume`` continues from the newest checkpoint (records past it are dropped; time goes on from the last
    record kept, so ``train_seconds`` covers every session); an existing
    run is refused unless ``resume`` or ``overwrite``. Every ``eval_every`` steps, ``evaluate(state)``
    is logged with an ``eval_`` prefix (``genjax.fit`` passes the family's light evaluation).
    ``devices`` N > 1 trains data-parallel on the first N devices (:func:`genjax.train.mesh.data_mesh`):
    the state replicated, the training split and each batch split by rows. In a ``jax.distributed`` cluster
    (:mod:`genjax.train.cluster`) every process calls ``fit`` alike and training spans every device of the
    cluster; process 0 alone writes the run's files other than checkpoints and evaluates.
    ``loop_strategy`` says how each call runs its steps (:data:`genjax.train.steps.LOOP_STRATEGIES`: a rolled
    scan, an unrolled one, one dispatch per step); ``"auto"`` (:func:`genjax.train.steps.resolve_strategy`)
    takes the measured rule, and ``config.json`` records the choice. A non-finite loss raises
    :class:`genjax.TrainingDiverged` naming the step; the checkpoints already saved are left as they
    were. SIGINT or SIGTERM (in the main thread) lets the current call finish, checkpoints the state
    and raises :class:`genjax.Interrupted`; a second signal stops at once.
    """
    family = registry.lookup(family)
    config = run_config(family, config, dataset, steps)
    rows = family.batch_rows(config)
    validate_arguments(rows, dataset, steps, steps_per_call, eval_every, checkpoint_every, seeds=(seed,))
    strategy = resolve_strategy(loop_strategy)
    if devices is None and cluster.processes() > 1:
        devices = jax.device_count()
    mesh = mesh_lib.data_mesh(devices, rows) if devices else None
    train = dataset.train_arrays()
    data = mesh_lib.replicate(train, None) if mesh is None else mesh_lib.shard_rows(train, mesh)
    init_key, train_key = jax.random.split(jax.random.key(seed))
    config = with_trained_runs(family, config, dataset, progress)
    example = {name: a[:rows] for name, a in train.items()}
    state = mesh_lib.replicate(rundir.init_state(family, init_key, config, example), mesh)
    primary = cluster.is_primary()  # writes the run's files and evaluates; every process checkpoints

    history: list[dict] = []
    checkpointer = writer = None
    with contextlib.ExitStack() as cleanup:
        if workdir is not None:
            workdir = Path(workdir)
            if primary:
                cleanup.enter_context(rundir.claimed(workdir, resume))
            description = rundir.describe(family, config, dataset.name, dataset.data_shape, seed, strategy)
            rundir.check(workdir, description, resume, overwrite)
            cluster.barrier("genjax-run-checked")  # every process checks before process 0 writes
            if primary:
                rundir.prepare(workdir, description, resume, overwrite)
            checkpointer = Checkpointer(workdir / rundir.CHECKPOINTS, keep)
            if primary:
                checkpointer.after_save = functools.partial(rundir.discard_previous, workdir)
            cleanup.callback(checkpointer.close)
            if resume:  # records past the restored step (or all, if nothing was saved yet) are dropped
                restored = checkpointer.restore_newest(
                    state, set_aside=workdir / rundir.DAMAGED_CHECKPOINTS if primary else None)
                if restored is not None:
                    state = mesh_lib.replicate(restored, mesh)
                if primary:
                    history = rundir.restart_metrics(workdir, int(state.step))
            if primary:
                writer = run_writers(workdir)
                cleanup.callback(writer.close)
        split_rows = len(dataset.x_train)
        calls = CompiledCalls(lambda length, unroll: fused_steps(family.train_step, rows, length, mesh, split_rows,
                                                                 unroll), strategy)
        stop = cleanup.enter_context(StopRequests())
        return _loop(family, state, data, train_key, calls, history, checkpointer, writer, steps, steps_per_call,
                     evaluate if eval_every and primary else None, eval_every, checkpoint_every,
                     progress and primary, stop)


def with_trained_runs(family: Family, config: Any, dataset: Dataset, progress: bool = True) -> Any:
    """``config`` (resolved) with each run it builds on that it names :data:`AUTO_RUN` replaced by a run directory:
    the family's recipe trained on ``dataset`` once (seed 0) and cached under ``$GENJAX_CACHE``; processes that
    need it meanwhile wait for it."""
    changes = {name: str(_cached_run(family.run_recipe(name, config), dataset, f"{name}={AUTO_RUN}", progress))
               for name, where in runs_used(family, config).items() if where == AUTO_RUN}
    return dataclasses.replace(config, **changes) if changes else config


def _cached_run(recipe: RunRecipe, dataset: Dataset, purpose: str, progress: bool) -> Path:
    """The run directory of ``recipe`` trained on ``dataset``: found in the cache, or trained now and cached."""
    if cluster.processes() > 1:
        raise ConfigError(f"{purpose} trains a {recipe.family} first, which a run of several processes does not do: "
                          f"train it alone (genjax-train --model {recipe.family} ...) and pass its directory")
    family = registry.get(recipe.family)
    config = dataclasses.replace(family.Config(), **dict(recipe.changes))
    path = cache_dir() / f"run-{dataset.name}-{recipe.family}-{dataset.fingerprint(config, recipe.steps)}"
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
    with waiting_lock(path.parent / f"{path.name}.lock", f"trains the {recipe.family} that {purpose} builds on"):
        if not _finished(path, recipe.steps):
            print(f"genjax: {purpose}: training its {recipe.family} on {dataset.name} ({recipe.steps:,} steps, once; "
                  f"cached in {path})", file=sys.stderr, flush=True)
            fit(family, config, dataset, steps=recipe.steps, workdir=path, overwrite=True, progress=progress)
    return path


def _finished(workdir: Path, steps: int) -> bool:
    """Whether ``workdir`` holds a run with a checkpoint at ``steps``."""
    if not (workdir / rundir.CONFIG_FILE).is_file():
        return False
    checkpointer = Checkpointer(workdir / rundir.CHECKPOINTS)
    try:
        return checkpointer.latest_step() == steps
    finally:
        checkpointer.close()


def _save(checkpointer: Checkpointer | None, state: State, stop: StopRequests) -> None:
    """Checkpoint ``state`` (if the run has a directory); a second signal waits until the save is whole."""
    if checkpointer is not None:
        with stop.critical():
            checkpointer.save(state)


def _loop(family: Family, state: State, data: dict, train_key: jax.Array, calls: CompiledCalls, history: list[dict],
          checkpointer: Checkpointer | None, writer: MetricWriter | None, steps: int, steps_per_call: int,
          evaluate: Evaluate | None, eval_every: int, checkpoint_every: int, progress: bool,
          stop: StopRequests) -> FitResult:
    earlier_seconds = history[-1]["time_s"] if history else 0.0  # a resumed run's time up to its last record
    start_time = time.perf_counter() - earlier_seconds
    step = int(state.step)
    bar = progress_bar(steps, min(step, steps), family.NAME, disable=not progress)
    while step < steps:
        length = min(steps_per_call - step % steps_per_call, steps - step)
        call = calls.get(length, state, data, train_key)
        t0 = time.perf_counter()
        state, stacked = call(state, data, train_key)
        stacked = jax.device_get(stacked)
        elapsed = time.perf_counter() - t0
        error = divergence(np.asarray(stacked["loss"]), step)
        if error is not None:
            bar.close()
            if checkpointer is not None:
                error.saved, error.checkpoint = True, checkpointer.latest_step()
            raise error
        step += length
        record = {"step": step, **{k: float(np.mean(v)) for k, v in stacked.items()},
                  "steps_per_sec": length / elapsed, "time_s": time.perf_counter() - start_time}
        if eval_every and step % eval_every == 0:
            if evaluate is not None:  # process 0 alone, on its own copy of the state; the others wait for it
                local = cluster.local_copy(state)
                with cluster.alone():
                    record.update({f"eval_{k}": v for k, v in evaluate(local).items()})
            cluster.barrier(f"evaluated-{step}")
        history.append(record)
        if writer is not None:
            writer.write(record)
        if checkpoint_every and step % checkpoint_every == 0:
            _save(checkpointer, state, stop)
        bar.set_postfix(loss=f"{record['loss']:.4g}", steps_s=f"{record['steps_per_sec']:.0f}", refresh=False)
        bar.update(length)  # refreshes, postfix included, when mininterval has passed
        agreed = cluster.largest(stop.signum or 0)  # a signal to any process stops every process here
        if agreed:
            stop.signum = stop.signum or agreed
            break
    bar.close()
    _save(checkpointer, state, stop)
    if stop.signum is not None:  # also when it came during the last call or the final save: never swallowed
        raise Interrupted(step, stop.signum, saved=checkpointer is not None)
    return FitResult(
        state=state,
        history=history,
        compile_seconds=calls.compile_seconds,
        train_seconds=time.perf_counter() - start_time,
        steps_per_second=float(np.median([r["steps_per_sec"] for r in history])) if history else 0.0,
        resident_rows=sum(shard.data.shape[0] for shard in data["x"].addressable_shards),
        loop_strategy=calls.strategy,
    )
