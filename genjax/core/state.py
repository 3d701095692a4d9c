"""The training state shared by every family: a pytree of arrays with its static parts alongside."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.core import FrozenDict

from genjax.core import optim


class State(struct.PyTreeNode):
    """Everything a family's ``train_step`` reads and writes.

    Leaves (traced): ``step`` (int32 scalar, train steps taken), ``params`` (parameter trees by name,
    e.g. ``{"encoder": ..., "decoder": ...}``), ``opt_state`` (the optax state of each named
    parameter set, under the same names) and ``extra`` (family-specific arrays such as an EMA of the
    generator; may be empty). Static (part of the tree structure, so one compile serves every state
    of one config): ``config`` (the family's frozen Config), ``data_shape`` (one example's shape, e.g.
    (8, 8, 1)) and ``optimizers`` (the optax transformation of each named parameter set). ``hyper`` (leaves,
    empty outside sweeps): swept config values as arrays, which :meth:`hp` returns in place of the config's,
    and ``hyper["update_scale"][name]``, a factor on ``optimizers[name]``'s updates (a swept learning rate
    over the config's); see :mod:`genjax.train.sweep`.

    Every update goes through :meth:`update`: one optimizer step of one named parameter set.
    :meth:`apply_gradients` updates every set it gets gradients for and counts one train step.
    """

    step: jax.Array
    params: dict[str, Any]
    opt_state: dict[str, Any]
    extra: dict[str, Any]
    config: Any = struct.field(pytree_node=False)
    data_shape: tuple[int, ...] = struct.field(pytree_node=False)
    optimizers: FrozenDict = struct.field(pytree_node=False)
    hyper: dict[str, Any] = struct.field(default_factory=dict)

    @classmethod
    def create(cls, *, params: dict[str, Any], optimizers: Mapping[str, optax.GradientTransformation], config: Any,
               data_shape: tuple[int, ...], extra: dict[str, Any] | None = None) -> State:
        """A state at step 0 with a fresh optimizer state for each named parameter set."""
        opt_state = {name: tx.init(params[name]) for name, tx in optimizers.items()}
        return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state, extra=extra or {},
                   config=config, data_shape=tuple(data_shape), optimizers=FrozenDict(optimizers))

    def hp(self, field: str) -> Any:
        """The value of config ``field`` this state trains with: the swept array in ``hyper``, else the config's."""
        return self.hyper[field] if field in self.hyper else getattr(self.config, field)

    def update(self, name: str, grads: Any) -> State:
        """One step of ``optimizers[name]`` on ``params[name]`` with ``grads``; ``step`` is left alone."""
        transformation = self.optimizers[name]
        if "beta1" in self.hyper or "beta2" in self.hyper:  # a sweep of Adam's betas: Adam built with the run's
            transformation = optim.adam_with(self.config, self.hyper[optim.BETAS_PEAK][name], self.hp("beta1"),
                                             self.hp("beta2"))
        updates, opt_state = transformation.update(grads, self.opt_state[name], self.params[name])
        scale = self.hyper.get("update_scale", {}).get(name)
        if scale is not None:
            updates = jax.tree.map(lambda u: u * scale, updates)
        return self.replace(params={**self.params, name: optax.apply_updates(self.params[name], updates)},
                            opt_state={**self.opt_state, name: opt_state})

    def apply_gradients(self, grads: Mapping[str, Any]) -> State:
        """:meth:`update` of every named parameter set in ``grads``, then ``step`` advanced by one."""
        state = self
        for name, g in grads.items():
            state = state.update(name, g)
        return state.replace(step=self.step + 1)
