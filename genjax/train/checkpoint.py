"""Orbax checkpoints of a :class:`genjax.core.state.State` under ``workdir/checkpoints/<step>``.

Saves are synchronous and atomic (orbax writes to a temporary directory and renames it), and only
the newest ``keep`` are kept. Restoring needs a state of the same structure (from ``family.init``).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from genjax.core.errors import RunError
from genjax.core.state import State

REASON_CHARS = 160  # orbax's error for a damaged file can run to kilobytes on one line


class Checkpointer:
    """Save and restore states of one run."""

    def __init__(self, directory: Path, keep: int = 3):
        self.options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(Path(directory).absolute(), options=self.options)

    def _reopen(self) -> None:
        """A fresh manager: one that failed to restore a damaged step can fail on the good ones after it."""
        self.manager.close()
        self.manager = ocp.CheckpointManager(self.directory, options=self.options)

    def save(self, state: State) -> int:
        """Save ``state`` at its own step (a no-op if that step is already saved); return the step."""
        step = int(state.step)
        if step not in self.manager.all_steps():
            self.manager.save(step, args=ocp.args.StandardSave(state))
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
        for step in steps:
            try:
                state = self.restore(like, step)
            except Exception as exc:  # orbax raises many types for missing or corrupt files
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:REASON_CHARS]
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

    @property
    def directory(self) -> Path:
        return Path(self.manager.directory)

    def close(self) -> None:
        self.manager.close()


def _finite(state: State) -> bool:
    """True when every floating-point array of ``state`` holds only finite values."""
    leaves = [leaf for leaf in jax.tree.leaves(state) if jnp.issubdtype(leaf.dtype, jnp.inexact)]
    return all(bool(np.isfinite(np.asarray(leaf)).all()) for leaf in leaves)
