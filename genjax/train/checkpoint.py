"""Orbax checkpoints of a :class:`genjax.core.state.State` under ``workdir/checkpoints/<step>``.

Saves are synchronous and atomic (orbax writes to a temporary directory and renames it), and only
the newest ``keep`` are kept. Restoring needs a state of the same structure (from ``family.init``).
"""
from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from genjax.core.errors import RunError
from genjax.core.state import State

TMP_SUFFIX = ".orbax-checkpoint-tmp"  # orbax writes a save under <step>.orbax-checkpoint-tmp-<time>, then renames it
REASON_CHARS = 160  # orbax's error for a damaged file can run to kilobytes on one line


class Checkpointer:
    """Save and restore states of one run."""

    def __init__(self, directory: Path, keep: int = 3):
        self.options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
        self.manager = self._manager(Path(directory).absolute())
        self.after_save: Callable[[], None] | None = None  # called after every save that wrote a checkpoint

    def _reopen(self) -> None:
        """A fresh manager: one that failed to restore a damaged step can fail on the good ones after it."""
        self.manager.close()
        self.manager = self._manager(self.directory)

    def _manager(self, directory: Path) -> ocp.CheckpointManager:
        return ocp.CheckpointManager(directory, options=self.options, item_handlers=ocp.StandardCheckpointHandler())

    def save(self, state: State) -> int:
        """Save ``state`` at its own step (a no-op if that step is already saved); return the step."""
        step = int(state.step)
        if step not in self.manager.all_steps():
            try:
                self.manager.save(step, args=ocp.args.StandardSave(state))
            except BaseException:  # a full disk, say: leave no partial checkpoint behind
                for partial in self.directory.glob(f"*{TMP_SUFFIX}*"):
                    shutil.rmtree(partial, ignore_errors=True)
                raise
            if self.after_save is not None:
                self.after_save()
        return step

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def restore(self, like: State, step: int | None = None) -> State:
        """The state saved at ``step`` (default: newest), shaped like ``like``."""
        step = self.latest_step() if step is None else step
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

    def restore_newest(self, like: State, set_aside: Path | None = None) -> State | None:
        """The newest checkpoint that restores whole and finite, shaped like ``like``; None when there is none.

        Newer damaged ones (empty, incomplete or truncated, or holding NaN or Inf) are skipped with one line
        on stderr each, and moved into ``set_aside`` when given (so that later saves are not shadowed by them).
        RunError when every checkpoint is damaged."""
        steps = sorted(self.manager.all_steps(), reverse=True)
        self.check_structure(like, steps)
        for step in steps:
            try:
                state = self.restore(like, step)
            except Exception as exc:  # orbax raises many types for missing or corrupt files
                reason = summary(exc)
            else:
                if _finite(state):
                    return state
                reason = "it holds NaN or Inf"
            where = self.directory / str(step)
            if set_aside is not None:
                Path(set_aside).mkdir(parents=True, exist_ok=True)
                shutil.move(where, Path(set_aside) / str(step))
                reason += f"; moved to {Path(set_aside) / str(step)}"
            self._reopen()
            print(f"genjax: skipping the damaged checkpoint {where} ({reason})", file=sys.stderr)
        if steps:
            raise RunError(f"every checkpoint in {self.directory} is damaged (steps {', '.join(map(str, steps))})")
        return None

    def check_structure(self, like: State, steps: list[int]) -> None:
        """RunError when the newest checkpoint with readable metadata holds arrays of other names or shapes than
        ``like`` (``config.json`` edited into another model, say): nothing is restored or moved."""
        for step in steps:
            try:
                saved = _shapes(self.manager.item_metadata(step))
            except Exception:  # unreadable metadata: a damaged checkpoint, which restore_newest handles
                continue
            if not saved:
                continue
            expected = _shapes(like)
            differing = sorted(set(saved.items()) ^ set(expected.items()))
            if differing:
                name = differing[0][0]
                raise RunError(f"the checkpoints in {self.directory} hold another model than the config describes "
                               f"({name}: {saved.get(name, 'absent')} saved, {expected.get(name, 'absent')} expected); "
                               "was config.json edited? restore it, or train anew with --overwrite")
            return

    @property
    def directory(self) -> Path:
        return Path(self.manager.directory)

    def close(self) -> None:
        self.manager.close()


def summary(exc: BaseException) -> str:
    """An orbax error in one short line (its first line, cut at REASON_CHARS; the type when it says nothing)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:REASON_CHARS]


def _shapes(tree) -> dict[str, tuple[int, ...]]:
    """Each array leaf's path (names joined by dots) and shape, for a State or orbax's metadata of one."""
    def name(path) -> str:
        return ".".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)
    return {name(path): tuple(getattr(leaf, "shape", ())) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _finite(state: State) -> bool:
    """True when every floating-point array of ``state`` holds only finite values."""
    leaves = [leaf for leaf in jax.tree.leaves(state) if jnp.issubdtype(leaf.dtype, jnp.inexact)]
    return all(bool(np.isfinite(np.asarray(leaf)).all()) for leaf in leaves)
