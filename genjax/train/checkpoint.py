"""Orbax checkpoints of a :class:`genjax.core.state.State` under ``workdir/checkpoints/<step>``.

Saves are synchronous and atomic (orbax writes to a temporary directory and renames it), and only
the newest ``keep`` are kept. Restoring needs a state of the same structure (from ``family.init``).
"""
from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp

from genjax.core.state import State


class Checkpointer:
    """Save and restore states of one run."""

    def __init__(self, directory: Path, keep: int = 3):
        self.manager = ocp.CheckpointManager(
            Path(directory).absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False),
        )

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

    def close(self) -> None:
        self.manager.close()
