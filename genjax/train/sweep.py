"""Sweeps in one program: every setting of a hyperparameter grid, times every seed, trained by one compiled program
(:func:`fit_sweep`; :func:`fit_seeds` is the sweep of one setting over seeds).

A setting gives values to some of the family's ``SWEEPABLE`` fields: numbers that change neither shapes nor code
(learning rates, penalty weights, the EMA decay, the VAE's beta). Each run's state carries its values as arrays
in ``state.hyper``, stacked with the states; train steps read them through :meth:`genjax.core.state.State.hp`,
and a learning rate scales its optimizer's updates (``hyper["update_scale"]``). Run (setting, seed) starts from
the state that ``genjax.fit(seed=...)`` builds for the setting's own config and draws the same keys, so it
matches that run to float rounding. With a ``workdir``, each run gets a complete run directory (``config.json``
with its own config, ``metrics.jsonl``, orbax checkpoints without the sweep's arrays), so ``load_run`` and
``experiments.train --resume`` work on it as on any run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from genjax.core import config as cfg_lib
from genjax.core import optim
from genjax.core.data import Dataset
from genjax.core.errors import ConfigError, Interrupted
from genjax.core.state import State
from genjax.models import registry
from genjax.models.family import Family, runs_used
from genjax.train import cluster, rundir
from genjax.train.checkpoint import Checkpointer
from genjax.train.loop import with_trained_runs
from genjax.train.mesh import SEED_AXIS, replicate, seed_mesh
from genjax.train.progress import progress_bar
from genjax.train.signals import StopRequests
from genjax.train.steps import CompiledCalls, divergence, resolve_strategy, run_config, scan_steps, validate_arguments
from genjax.train.writers import JsonlWriter

UPDATE_SCALE = "update_scale"  # hyper[UPDATE_SCALE][optimizer name]: a swept learning rate / the program's own


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of a sweep: its setting (swept field -> value), its seed, its own config (as ``config.json`` records
    it: ``experiments.train`` with it trains the same run alone) and its directory name under the sweep's."""

    setting: dict[str, float]
    seed: int
    config: Any

    @property
    def name(self) -> str:
        values = "_".join(f"{field}={value:g}" for field, value in self.setting.items())
        return f"{values}/seed-{self.seed}" if values else f"seed-{self.seed}"


def parse_values(family: Family, field: str, text: str) -> list[float]:
    """``--sweep FIELD=V1,V2,...``'s values: ConfigError for a field that cannot be swept in one program, an empty
    list or a value that is not a number."""
    check_field(family, field)
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or not all(parts):
        raise ConfigError(f"--sweep {field}= needs a comma-separated list of numbers, got {text!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--sweep {field}: every value must be a number, got {text!r}") from None
    if len(set(values)) != len(values):
        raise ConfigError(f"--sweep {field}: the values repeat ({text})")
    return values


def sweepable(family: Family) -> dict[str, tuple[str, ...]]:
    """The family's ``SWEEPABLE`` fields (a learning rate with the optimizers it drives); none if it declares none."""
    return getattr(family, "SWEEPABLE", {})


def check_field(family: Family, field: str) -> None:
    """ConfigError unless ``field`` is one of the family's sweepable fields (naming them, and why others are not)."""
    names = {f.name for f in dataclasses.fields(family.Config)}
    fields = ", ".join(sweepable(family)) or "none"
    if field not in names:
        raise ConfigError(f"{family.NAME} has no config field {field!r}; sweepable in one program: {fields}")
    if field not in sweepable(family):
        raise ConfigError(f"{field} changes shapes or code (or is not traced) and cannot be swept in one program; "
                          f"sweepable for {family.NAME}: {fields} (train other values as separate runs)")


def grid(sweep: dict[str, Sequence[float]]) -> list[dict[str, float]]:
    """Every combination of the swept values, the first field varying slowest."""
    fields = list(sweep)
    return [dict(zip(fields, values, strict=True)) for values in itertools.product(*sweep.values())]


def plan(family: Family, config: Any, dataset: Dataset, steps: int, sweep: dict[str, Sequence[float]],
         seeds: Sequence[int], progress: bool = False) -> tuple[Any, list[Run]]:
    """The program's config (each swept field at its largest value, so that code a field switches on, such as the
    R1 penalty, runs for every setting) and the runs, setting-major, each with its own resolved config. An empty
    ``sweep`` gives one run per seed of ``config``."""
    seeds = tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be a non-empty list of distinct integers, got {list(seeds)}")
    for field, values in sweep.items():
        check_field(family, field)
        if not values:
            raise ConfigError(f"--sweep {field}: the list of values is empty")
    def overrides(setting: dict[str, float]) -> list[str]:  # a whole number as an integer field's text
        return [f"{f}={int(v) if isinstance(getattr(config, f), int) and float(v).is_integer() else v!r}"
                for f, v in setting.items()]

    def resolved(changes: dict[str, float]) -> Any:
        return run_config(family, cfg_lib.override(config, overrides(changes)), dataset, steps)

    base = with_trained_runs(family, resolved({f: max(v) for f, v in sweep.items()}), dataset, progress)
    # swept fields are numbers, so every run builds on the base's trained runs ("auto" ones trained once, cached)
    built_on = runs_used(family, base)
    runs = [Run(setting, seed, dataclasses.replace(resolved(setting), **built_on)) for setting in grid(sweep)
            for seed in seeds]
    return base, runs


def hyper(family: Family, base: Any, setting: dict[str, float]) -> dict:
    """``state.hyper`` of one run: each swept field's value, and each swept learning rate as the scale of its
    optimizers' updates relative to the program's (``base``'s) learning rate."""
    values: dict[str, Any] = {}
    scales: dict[str, Any] = {}
    for field, value in setting.items():
        optimizers = sweepable(family)[field]
        if optimizers:
            for name in optimizers:
                scales[name] = np.float32(value / getattr(base, field))
        else:
            values[field] = np.float32(value)
    if set(setting) & set(optim.SWEEPABLE):  # Adam rebuilt in the step with the run's betas: its peak rates
        values[optim.BETAS_PEAK] = {name: np.float32(getattr(base, field)) for field, names in
                                    sweepable(family).items() for name in names}
    return {**values, UPDATE_SCALE: scales} if scales else values


def without_hyper(state: State) -> State:
    """A run's state as a plain run would hold it (for its checkpoints and evaluation)."""
    return state.replace(hyper={})


@dataclasses.dataclass
class SweepResult:
    """What :func:`fit_sweep` returns: the runs, their states stacked along axis 0 (with ``hyper``) and per-call
    metrics (each ``[runs]``)."""

    runs: list[Run]
    states: Any
    history: list[dict]
    compile_seconds: float
    train_seconds: float
    steps_per_second: float  # median over this session's calls, one step of every run counted as one
    runs_per_group: int  # runs vmapped together on a device (the groups of a device run one after another)

    @property
    def seeds(self) -> tuple[int, ...]:
        """Each run's seed, in the order of ``runs``."""
        return tuple(run.seed for run in self.runs)

    def state(self, i: int) -> State:
        """Run ``i``'s state as a plain run of its own config holds it."""
        one = jax.tree.map(lambda leaf: leaf[i], self.states)
        return without_hyper(one).replace(config=self.runs[i].config)


def _stack(states: list) -> Any:
    """Host-side states stacked leaf by leaf along a new axis 0 (sent to the device once: a vmapped init, or
    ``jnp.stack`` per leaf, would compile a program for every new stacked shape)."""
    return jax.tree.map(lambda *leaves: np.stack([np.asarray(leaf) for leaf in leaves]), *states)


def _initial_states(family: Family, base: Any, runs: list[Run], example: dict) -> tuple[Any, jax.Array]:
    """Each run's initial state as ``genjax.fit`` builds it for the run's config, given the program's static parts
    and the run's ``hyper``, stacked on the host; and the runs' train keys, stacked."""
    built_on = rundir.trained_runs(family, base)  # loaded once: every run builds on the same runs (see plan)
    base_state = rundir.init_state(family, jax.random.key(0), base, example, built_on)
    states, train_keys = [], []
    for run in runs:
        init_key, train_key = jax.random.split(jax.random.key(run.seed))
        state = rundir.init_state(family, init_key, run.config, example, built_on)
        states.append(state.replace(config=base, optimizers=base_state.optimizers,
                                    hyper=hyper(family, base, run.setting)))
        train_keys.append(np.asarray(jax.random.key_data(train_key)))
    return _stack(states), jax.random.wrap_key_data(np.stack(train_keys))


def fit_sweep(family: Family | str, config: Any, dataset: Dataset, *, steps: int, sweep: dict[str, Sequence[float]],
              seeds: Sequence[int] = (0,), steps_per_call: int = 100, devices: int | None = None,
              workdir: str | Path | None = None, checkpoint_every: int = 1000, keep: int = 3, resume: bool = False,
              overwrite: bool = False, progress: bool = True, group: int | None = None,
              loop_strategy: str = "auto") -> SweepResult:
    """Train every setting of ``sweep`` (field -> values, a grid) times every seed in one program
    (:func:`runs_program` over the runs' stacked states). ``devices`` N splits the runs over N devices (the number
    of runs must be a multiple of N); a device's runs go in vmapped groups of ``group``, one group after another
    (default: :func:`runs_per_group`'s rule). With ``workdir``: a run directory per run (``Run.name``), saved
    together every ``checkpoint_every`` steps; ``resume`` continues every run from the newest step all of them
    saved. ``loop_strategy`` as for :func:`genjax.fit`. A non-finite loss in any run raises ``TrainingDiverged``;
    SIGINT/SIGTERM saves every run and raises ``Interrupted``."""
    family = registry.lookup(family)
    if cluster.processes() > 1:
        raise ConfigError(f"a sweep (or fit_seeds) trains in one process, and this one is one of "
                          f"{cluster.processes()}; split the runs over separate single-process jobs, or train each "
                          "with genjax.fit across the cluster")
    base, runs = plan(family, config, dataset, steps, sweep, seeds, progress)
    rows = family.batch_rows(base)
    validate_arguments(rows, dataset, steps, steps_per_call, 0, 0 if workdir is None else checkpoint_every,
                       seeds=tuple(seeds))
    strategy = resolve_strategy(loop_strategy)
    mesh = None if devices is None else seed_mesh(devices, len(runs))
    group = runs_per_group(len(runs) // (mesh.devices.size if mesh else 1), group)
    arrays = dataset.train_arrays()
    data = replicate(arrays, mesh)
    states, train_keys = _initial_states(family, base, runs, {n: a[:rows] for n, a in arrays.items()})
    histories: list[list[dict]] = [[] for _ in runs]
    with contextlib.ExitStack() as cleanup:
        checkpointers: list[Checkpointer] = []
        writers: list[JsonlWriter] = []
        if workdir is not None:
            workdir = Path(workdir)
            cleanup.enter_context(rundir.claimed(workdir, resume))
            directories = [workdir / run.name for run in runs]
            for run, directory in zip(runs, directories, strict=True):
                description = rundir.describe(family, run.config, dataset.name, dataset.data_shape, run.seed,
                                              strategy)
                directory.mkdir(parents=True, exist_ok=True)
                rundir.prepare(directory, description, resume, overwrite)
                checkpointer = Checkpointer(directory / rundir.CHECKPOINTS, keep)
                checkpointer.after_save = functools.partial(rundir.discard_previous, directory)
                cleanup.callback(checkpointer.close)
                checkpointers.append(checkpointer)
                writers.append(JsonlWriter(directory))
            if resume:
                states, histories = _restore(family, runs, states, checkpointers, directories)
        sharding = None if mesh is None else NamedSharding(mesh, PartitionSpec(SEED_AXIS))
        states, train_keys = jax.device_put((states, train_keys), sharding)
        calls = CompiledCalls(lambda length, unroll: jax.jit(runs_program(family, rows, length, mesh, group, unroll),
                                                             donate_argnums=0), strategy)
        stop = cleanup.enter_context(StopRequests())
        return _loop(family, runs, states, data, train_keys, calls, histories, checkpointers, writers, steps,
                     steps_per_call, checkpoint_every, progress, stop, group)


def runs_per_group(runs: int, requested: int | None) -> int:
    """How many runs (of the ``runs`` each device trains) one vmapped group holds; the groups run one after
    another. ``requested`` (checked) wins; else, by measurement (benchmarks/RESULTS.md, "Sweeps in one program"):
    one at a time on a CPU, where a lone run's matmuls use every core and vmapped ones do not, and all at once on an
    accelerator."""
    if requested is None:
        return 1 if jax.default_backend() == "cpu" else runs
    if not isinstance(requested, int) or isinstance(requested, bool) or not 1 <= requested <= runs:
        raise ConfigError(f"runs_per_group must be an integer between 1 and the {runs} runs of each device, got "
                          f"{requested!r}")
    return requested


def runs_program(family: Family, rows: int, length: int, mesh: Mesh | None, group: int,
                 unroll: bool = False) -> Callable:
    """``(states, data, keys) -> (states, metrics)``: ``length`` fused steps (:func:`scan_steps`) of every run,
    states, keys and metrics stacked along axis 0. The runs go in vmapped groups of ``group``, one group after
    another (``lax.map``); with a ``mesh``, each device trains its own block of runs this way. Not jitted."""
    one = scan_steps(family.train_step, rows, length, unroll=unroll)

    def local(states: Any, data: dict, keys: jax.Array) -> tuple[Any, dict]:
        if group >= keys.shape[0]:
            return jax.vmap(one, in_axes=(0, None, 0))(states, data, keys)
        return jax.lax.map(lambda run: one(run[0], data, run[1]), (states, keys),
                           batch_size=None if group == 1 else group)

    if mesh is None:
        return local
    runs = PartitionSpec(SEED_AXIS)
    return jax.shard_map(local, mesh=mesh, in_specs=(runs, PartitionSpec(), runs), out_specs=runs)


def _restore(family: Family, runs: list[Run], states: Any, checkpointers: list[Checkpointer],
             directories: list[Path]) -> tuple[Any, list[list[dict]]]:
    """Every run at the newest step that all of them saved (a kill during a save leaves some a step behind), the
    runs' ``hyper`` kept; each run's ``metrics.jsonl`` cut back to that step. From scratch when there is none."""
    saved = [set(c.manager.all_steps()) for c in checkpointers]
    common = set.intersection(*saved) if saved else set()
    if not common:
        return states, [rundir.restart_metrics(d, 0) for d in directories]
    step = max(common)
    restored = []
    for i, checkpointer in enumerate(checkpointers):
        like = without_hyper(_run_of(states, i))
        state = checkpointer.restore(like, step)
        restored.append(state.replace(hyper=_run_of(states, i).hyper))
    return _stack(restored), [rundir.restart_metrics(d, step) for d in directories]


def _run_of(states: Any, i: int) -> Any:
    """Run ``i``'s slice of host-side stacked states (arrays, not NumPy scalars, which orbax refuses)."""
    return jax.tree.map(lambda leaf: np.asarray(leaf[i]), states)


def _save(checkpointers: list[Checkpointer], states: Any, runs: list[Run], stop: StopRequests) -> None:
    """Every run's checkpoint at the current step (a second signal waits until all are whole)."""
    if not checkpointers:
        return
    host = jax.device_get(states)
    with stop.critical():
        for i, checkpointer in enumerate(checkpointers):
            checkpointer.save(without_hyper(_run_of(host, i)))


def _loop(family: Family, runs: list[Run], states: Any, data: dict, train_keys: jax.Array, calls: CompiledCalls,
          histories: list[list[dict]], checkpointers: list[Checkpointer], writers: list[JsonlWriter], steps: int,
          steps_per_call: int, checkpoint_every: int, progress: bool, stop: StopRequests, group: int) -> SweepResult:
    earlier = histories[0][-1]["time_s"] if histories[0] else 0.0
    start = time.perf_counter() - earlier
    step = int(np.asarray(jax.device_get(states.step))[0])
    history = [{"step": r["step"], **{k: [h[j][k] for h in histories] for k in r if k not in ("step", "time_s",
                                                                                                  "steps_per_sec")}}
               for j, r in enumerate(histories[0])]
    rates: list[float] = []
    bar = progress_bar(steps, min(step, steps), f"{family.NAME} sweep of {len(runs)}", disable=not progress)
    while step < steps:
        length = min(steps_per_call - step % steps_per_call, steps - step)
        call = calls.get(length, states, data, train_keys)
        t0 = time.perf_counter()
        states, stacked = call(states, data, train_keys)
        stacked = jax.device_get(stacked)  # each metric [runs, length]
        rates.append(length / (time.perf_counter() - t0))
        error = divergence(np.asarray(stacked["loss"]), step)
        if error is not None:
            bar.close()
            error.run = runs[int(np.argwhere(~np.isfinite(np.asarray(stacked["loss"])))[0][0])].name
            raise error
        step += length
        means = {k: np.asarray(v).mean(axis=1) for k, v in stacked.items()}
        history.append({"step": step, **{k: v.tolist() for k, v in means.items()}})
        now = time.perf_counter() - start
        for i, writer in enumerate(writers):
            writer.write({"step": step, **{k: float(v[i]) for k, v in means.items()}, "steps_per_sec": rates[-1],
                          "time_s": now})
        if checkpoint_every and step % checkpoint_every == 0:
            _save(checkpointers, states, runs, stop)
        bar.update(length)
        if stop.signum is not None:
            break
    bar.close()
    _save(checkpointers, states, runs, stop)
    if stop.signum is not None:
        raise Interrupted(step, stop.signum, saved=bool(checkpointers))
    return SweepResult(runs, states, history, calls.compile_seconds, time.perf_counter() - start,
                       float(np.median(rates)) if rates else 0.0, group)


def fit_seeds(family: Family | str, config: Any, dataset: Dataset, *, steps: int, seeds: Sequence[int],
              steps_per_call: int = 100, devices: int | None = None, group: int | None = None,
              loop_strategy: str = "auto") -> SweepResult:
    """``len(seeds)`` runs of one config in one program: :func:`fit_sweep` with nothing swept and no run
    directories. Seed ``s`` matches ``genjax.fit(seed=s)`` to float rounding. On a CPU, forcing one XLA device
    per core (``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>`` before JAX starts) and ``devices`` set
    to it lets small models use every core, where one program of tiny matmuls keeps about one core busy."""
    return fit_sweep(family, config, dataset, steps=steps, sweep={}, seeds=seeds, steps_per_call=steps_per_call,
                     devices=devices, progress=False, group=group, loop_strategy=loop_strategy)
