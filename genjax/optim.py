"""Optax optimizers built from config fields shared by every family."""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

import optax

from genjax.errors import ConfigError

SCHEDULES = ("constant", "cosine", "warmup_cosine")


def learning_rate_schedule(peak: float, schedule: str, decay_steps: int, warmup_steps: int) -> optax.Schedule:
    """A learning rate per step: constant, cosine decay to 0 over ``decay_steps``, or linear warm-up then cosine."""
    if schedule == "constant":
        return optax.constant_schedule(peak)
    if schedule == "cosine":
        return optax.cosine_decay_schedule(peak, decay_steps)
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup_steps, decay_steps)


def adam(config: Any, peak: float, default_steps: int, b1: float = 0.9, b2: float = 0.999) -> optax.GradientTransformation:
    """Adam (AdamW when the config's ``weight_decay`` > 0) with the config's learning-rate schedule.

    Reads ``schedule``, ``decay_steps`` and ``warmup_steps`` (and ``weight_decay`` when the config has
    it). ``decay_steps`` 0 means the run's length: :func:`genjax.fit` resolves it before ``init``; a
    state built directly with 0 decays over the family's ``default_steps``.
    """
    decay_steps = config.decay_steps or default_steps
    lr = learning_rate_schedule(peak, config.schedule, decay_steps, config.warmup_steps)
    weight_decay = getattr(config, "weight_decay", 0.0)
    if weight_decay > 0:
        return optax.adamw(lr, b1=b1, b2=b2, weight_decay=weight_decay)
    return optax.adam(lr, b1=b1, b2=b2)


@functools.cache
def config_adam(config: Any, default_steps: int) -> optax.GradientTransformation:
    """:func:`adam` at the config's ``learning_rate``: one optimizer per (frozen, hashable) config, so the
    jitted steps that call it build it once."""
    return adam(config, config.learning_rate, default_steps)


def gradient_step(state: Any, tx: optax.GradientTransformation, grads: Any) -> Any:
    """``state`` (a :class:`genjax.state.State`) after one ``tx`` update of all its params by ``grads``,
    with ``step`` advanced by one."""
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates), opt_state=opt_state)


def validate_schedule(config: Any) -> None:
    """Raise ConfigError for an unknown ``schedule`` or a warm-up that does not end before ``decay_steps``."""
    if config.schedule not in SCHEDULES:
        raise ConfigError(f"unknown schedule {config.schedule!r}; valid choices: {', '.join(SCHEDULES)}")
    if config.schedule == "warmup_cosine" and 0 < config.decay_steps <= config.warmup_steps:
        raise ConfigError(f"warmup_steps ({config.warmup_steps}) must be below decay_steps ({config.decay_steps})")


def resolve_decay_steps(config: Any, steps: int) -> Any:
    """``config`` with ``decay_steps`` 0 (meaning "the length of the run") replaced by ``steps``
    when its schedule decays."""
    if config.schedule != "constant" and config.decay_steps == 0:
        return dataclasses.replace(config, decay_steps=steps)
    return config
