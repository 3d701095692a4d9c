"""A run directory: ``config.json``, ``metrics.jsonl``, ``checkpoints/`` (plus what scripts add).

``config.json`` holds ``model``, ``dataset``, ``seed``, ``data_shape``, the family ``config`` and, for a run that
builds on trained runs (a DGN's ``kernel_encoder``), ``runs``: their own ``config.json`` contents by field. That is
everything :func:`load_run` needs to rebuild the state's structure before restoring it, so a run loads without
the runs it was built on (its checkpoints hold what it took from them).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from genjax.core import config as cfg_lib
from genjax.core.errors import RunError
from genjax.core.state import State
from genjax.models import registry
from genjax.models.family import AUTO_RUN, Family, runs_used
from genjax.train.checkpoint import Checkpointer, summary
from genjax.train.lock import run_lock
from genjax.train.writers import EVENTS, METRICS_FILE

CONFIG_FILE = "config.json"
EVAL_FILE = "eval.json"  # the final evaluation, written by genjax.experiment.train_and_evaluate
CHECKPOINTS = "checkpoints"
DAMAGED_CHECKPOINTS = "damaged-checkpoints"  # where a resume moves checkpoints it could not restore
PREVIOUS_RUN = "previous-run"  # where --overwrite keeps the old run until the new one's first checkpoint
OWN_FILES = (CONFIG_FILE, METRICS_FILE, EVAL_FILE, "samples.png", "reconstructions.png", "interpolations.png",
             "loss_curve.png")


def describe(family: Family, config: Any, dataset_name: str, data_shape: tuple[int, ...], seed: int,
             loop_strategy: str = "scan") -> dict:
    """The contents of ``config.json`` for a run (``config`` as it runs, placeholders resolved; ``loop_strategy``
    as :func:`genjax.train.steps.resolve_strategy` chose it), with the descriptions of the runs it builds on (read
    from their directories; a run still named :data:`AUTO_RUN` is not resolved yet and left out)."""
    description = {
        "model": family.NAME,
        "dataset": dataset_name,
        "seed": seed,
        "data_shape": list(data_shape),
        "loop_strategy": loop_strategy,
        "config": cfg_lib.to_dict(config),
    }
    runs = {name: _used_run(name, workdir, read_description)
            for name, workdir in runs_used(family, config).items() if workdir != AUTO_RUN}
    return {**description, "runs": runs} if runs else description


def _used_run(name: str, workdir: str, read: Callable[[str], Any]) -> Any:
    """``read(workdir)`` for the run a config names in field ``name``; its RunError names the field."""
    try:
        return read(workdir)
    except RunError as exc:
        raise RunError(f"{name}={workdir}: {exc}") from None


DESCRIPTION_DEFAULTS = {"loop_strategy": "scan"}  # what a config.json written before the key existed ran with


def read_description(workdir: Path) -> dict:
    """The ``config.json`` of the run in ``workdir``, with :data:`DESCRIPTION_DEFAULTS` for keys it predates."""
    path = Path(workdir) / CONFIG_FILE
    try:
        description = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{workdir} holds no run ({CONFIG_FILE} is missing)") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {path}: {exc}") from None
    if not _well_formed(description):
        raise RunError(f"{path} is malformed: expected an object with model (a name), data_shape (positive ints), "
                       "config (an object) and optionally runs (such objects by name), as genjax wrote it")
    return {**DESCRIPTION_DEFAULTS, **description}


def _well_formed(description: Any) -> bool:
    """Whether ``description`` has the keys and types :func:`load_run` reads, its ``runs`` included."""
    if not isinstance(description, dict):
        return False
    shape, runs = description.get("data_shape"), description.get("runs", {})
    return (isinstance(description.get("model"), str) and isinstance(description.get("config"), dict)
            and isinstance(shape, list) and all(isinstance(n, int) and n > 0 for n in shape)
            and isinstance(runs, dict) and all(map(_well_formed, runs.values())))


def differences(saved: dict, description: dict) -> list[str]:
    """The keys (``config.NAME`` for config fields) in which two ``config.json`` contents differ (``saved`` as
    :func:`read_description` returns it). ``runs`` does not count: the config names the same runs, and what a run
    took from them is in its checkpoints."""
    differing = sorted(key for key in set(saved) | set(description)
                       if saved.get(key) != description.get(key) and key not in ("config", "runs"))
    saved_cfg, new_cfg = saved.get("config", {}), description["config"]
    changed = (k for k in set(saved_cfg) | set(new_cfg) if saved_cfg.get(k) != new_cfg.get(k))
    return differing + sorted(f"config.{k}" for k in changed)


def holds_run(workdir: Path) -> bool:
    """Whether ``workdir`` holds any file of a run."""
    return workdir.is_dir() and any((workdir / name).exists() for name in (*OWN_FILES, CHECKPOINTS))


@contextlib.contextmanager
def claimed(workdir: Path, resume: bool) -> Iterator[None]:
    """Hold ``workdir``'s lock (:func:`genjax.train.lock.run_lock`) while the block runs, so one process at a time
    writes the run; a fresh run creates the directory first, a resumed one must find it."""
    workdir = Path(workdir)
    if resume and not workdir.is_dir():
        raise RunError(f"{workdir} holds no run to resume (no such directory)")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot write to {workdir}: {exc.strerror or exc}") from None
    with run_lock(workdir):
        yield


def check(workdir: Path, description: dict, resume: bool, overwrite: bool) -> None:
    """RunError unless ``workdir`` can take this run: a resumed run must match ``config.json``; a fresh one needs
    an empty directory or ``overwrite``. Reads only (every process of a cluster checks)."""
    workdir = Path(workdir)
    if resume:
        if not workdir.is_dir():
            raise RunError(f"{workdir} holds no run to resume (no such directory)")
        differing = differences(read_description(workdir), description)
        if differing:
            raise RunError(f"--resume: this run differs from the one in {workdir} in {', '.join(differing)}")
    elif holds_run(workdir) and not overwrite:
        raise RunError(f"{workdir} already holds a run; pass --resume to continue it or --overwrite to replace it")


def prepare(workdir: Path, description: dict, resume: bool, overwrite: bool) -> None:
    """Make ``workdir`` (created by :func:`claimed`) ready after :func:`check`: new (write config.json), resumed
    (nothing to do), or overwritten (the old run's files set aside in ``previous-run/`` until the new run's
    first checkpoint)."""
    workdir = Path(workdir)
    check(workdir, description, resume, overwrite)
    if resume:
        return
    try:
        if overwrite:
            _set_aside(workdir)
        (workdir / CONFIG_FILE).write_text(json.dumps(description, indent=2) + "\n")
    except OSError as exc:
        raise RunError(f"cannot write to {workdir}: {exc.strerror or exc}") from None


def _set_aside(workdir: Path) -> None:
    """--overwrite: move the old run's files into ``PREVIOUS_RUN`` (removed by :func:`discard_previous` once the
    new run's first checkpoint is written). If ``PREVIOUS_RUN`` exists, an earlier overwrite stopped before its
    first checkpoint: that folder keeps the last complete run, and what is in ``workdir`` is deleted."""
    previous = workdir / PREVIOUS_RUN
    keep_older = previous.exists()
    previous.mkdir(exist_ok=True)
    for name in (*OWN_FILES, CHECKPOINTS, DAMAGED_CHECKPOINTS, EVENTS):
        path = workdir / name
        if keep_older and path.is_dir():
            shutil.rmtree(path)
        elif keep_older:
            path.unlink(missing_ok=True)
        elif path.exists():
            os.replace(path, previous / name)


def discard_previous(workdir: Path) -> None:
    """Delete the run that --overwrite set aside (called once the new run has a checkpoint)."""
    shutil.rmtree(Path(workdir) / PREVIOUS_RUN, ignore_errors=True)


def _record(line: str) -> dict | None:
    """One line of ``metrics.jsonl`` as a record, or None when it is not one (cut off, NUL bytes, no int step)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    ok = isinstance(record, dict) and isinstance(record.get("step"), int) and not isinstance(record["step"], bool)
    return record if ok else None


def read_metrics(workdir: Path, up_to_step: int | None = None) -> list[dict]:
    """The readable records of ``metrics.jsonl`` (those with ``step <= up_to_step`` if given); lines that are
    not records (a line cut off by a kill, a NUL tail, a record without ``step``) are skipped."""
    return _read_records(Path(workdir) / METRICS_FILE, up_to_step)[0]


def _read_records(path: Path, up_to_step: int | None) -> tuple[list[dict], int]:
    """The readable records of ``path`` up to ``up_to_step`` and the count of lines that were not records."""
    if not path.exists():
        return [], 0
    lines = [line for line in path.read_bytes().decode("utf-8", "replace").splitlines() if line.strip()]
    records = [_record(line) for line in lines]
    kept = [r for r in records if r is not None and (up_to_step is None or r["step"] <= up_to_step)]
    return kept, sum(r is None for r in records)


def restart_metrics(workdir: Path, step: int) -> list[dict]:
    """On resume from ``step``: keep the readable records up to it, rewrite ``metrics.jsonl`` with them
    (atomically) and say on stderr how many unreadable lines were dropped. Returns the records kept."""
    path = Path(workdir) / METRICS_FILE
    records, unreadable = _read_records(path, step)
    if unreadable:
        print(f"genjax: {path}: dropped {unreadable} unreadable line(s); kept {len(records)} records up to step "
              f"{step}", file=sys.stderr)
    write_metrics(workdir, records)
    return records


def write_metrics(workdir: Path, records: list[dict]) -> None:
    """Rewrite ``metrics.jsonl`` with ``records``, atomically (a temporary file renamed over it)."""
    path = Path(workdir) / METRICS_FILE
    partial = path.with_name(path.name + ".tmp")
    partial.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(partial, path)


def init_state(family: Family, key: jax.Array, config: Any, batch: dict, runs: dict[str, State] | None = None) -> State:
    """``family.init(key, config, batch)``, given the newest state of each trained run the config builds on
    (``family.uses_runs``, e.g. a DGN's ``kernel_encoder``): ``runs`` when given (:func:`trained_runs`), else
    loaded now; RunError naming the field for a run that cannot be loaded."""
    return family.init(key, config, batch, **(trained_runs(family, config) if runs is None else runs))


def trained_runs(family: Family, config: Any) -> dict[str, State]:
    """The newest state of each trained run ``config`` builds on, by ``init``'s keyword (empty for most families;
    a run still named :data:`AUTO_RUN` is left for ``init`` to refuse)."""
    return {name: _used_run(name, workdir, lambda w: load_run(w)[2])
            for name, workdir in runs_used(family, config).items() if workdir != AUTO_RUN}


def load_run(workdir: str | Path, step: int | None = None) -> tuple[Family, Any, State]:
    """``(family, config, state)`` of the run in ``workdir``, from its newest checkpoint (or ``step``);
    the family is its module (e.g. ``genjax.models.gan``), so ``family.sample(state, ...)`` works."""
    workdir = Path(workdir)
    family, config, like = _placeholder_state(read_description(workdir), workdir / CONFIG_FILE)
    checkpointer = Checkpointer(workdir / CHECKPOINTS)
    try:
        if checkpointer.latest_step() is None:
            raise RunError(f"{workdir} holds no checkpoint yet")
        if step is None:
            state = checkpointer.restore_newest(like)
        else:
            if step not in checkpointer.manager.all_steps():
                raise RunError(f"{workdir} holds no checkpoint at step {step}; steps: "
                               f"{', '.join(map(str, checkpointer.manager.all_steps()))}")
            checkpointer.check_structure(like, [step])
            try:
                state = checkpointer.restore(like, step)
            except Exception as exc:  # orbax raises many types for missing or corrupt files
                raise RunError(f"cannot restore the checkpoint of step {step} in {workdir}: {summary(exc)}") from None
    finally:
        checkpointer.close()
    return family, config, state


def _placeholder_state(description: dict, path: Path) -> tuple[Family, Any, State]:
    """``(family, config, state)`` for a run's description: the state of the right structure for a restore, its
    values those of ``init`` at key 0 (the runs it builds on as well, from ``description["runs"]``; a
    ``config.json`` written before that key existed has them loaded from their directories)."""
    try:
        family = registry.get(description["model"])
        config = family.Config(**cfg_lib.coerce(family.Config, description["config"]))
        data_shape = tuple(description["data_shape"])
    except (KeyError, TypeError) as exc:
        raise RunError(f"{path} is malformed: missing {exc}") from None
    runs = ({name: _placeholder_state(run, path)[2] for name, run in description["runs"].items()}
            if "runs" in description else None)
    example = {"x": jnp.full((1, *data_shape), 0.5, jnp.float32), "y": jnp.zeros((1,), jnp.int32)}
    return family, config, init_state(family, jax.random.key(0), config, example, runs)
