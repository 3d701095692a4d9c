"""The training state shared by every family: a pytree of arrays with its static parts alongside."""
from __future__ import annotations

from typing import Any

import jax
from flax import struct


class State(struct.PyTreeNode):
    """Everything a family's ``train_step`` reads and writes.

    Leaves (traced): ``step`` (int32 scalar, steps taken), ``params`` (dict of parameter trees,
    e.g. ``{"encoder": ..., "decoder": ...}``), ``opt_state`` (optax state for those params) and
    ``extra`` (family-specific arrays such as an EMA of the generator; may be empty).
    Static (part of the tree structure, so one compile serves every state of one config):
    ``config`` (the family's frozen Config) and ``data_shape`` (shape of one example, e.g. (8, 8, 1)).
    """

    step: jax.Array
    params: dict[str, Any]
    opt_state: Any
    extra: dict[str, Any]
    config: Any = struct.field(pytree_node=False)
    data_shape: tuple[int, ...] = struct.field(pytree_node=False)
