"""Optax optimizers built from config fields shared by every family."""
from __future__ import annotations

import optax

SCHEDULES = ("constant", "cosine", "warmup_cosine")


def learning_rate_schedule(peak: float, schedule: str, decay_steps: int, warmup_steps: int) -> optax.Schedule:
    """A learning rate per step: constant, cosine decay to 0 over ``decay_steps``, or linear warm-up then cosine."""
    if schedule == "constant":
        return optax.constant_schedule(peak)
    if schedule == "cosine":
        return optax.cosine_decay_schedule(peak, decay_steps)
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup_steps, decay_steps)


def adam(
    peak: float,
    schedule: str = "constant",
    decay_steps: int = 10_000,
    warmup_steps: int = 0,
    b1: float = 0.9,
    b2: float = 0.999,
    weight_decay: float = 0.0,
) -> optax.GradientTransformation:
    """Adam (AdamW when ``weight_decay`` > 0) with the given learning-rate schedule."""
    lr = learning_rate_schedule(peak, schedule, decay_steps, warmup_steps)
    if weight_decay > 0:
        return optax.adamw(lr, b1=b1, b2=b2, weight_decay=weight_decay)
    return optax.adam(lr, b1=b1, b2=b2)
