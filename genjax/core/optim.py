"""The optimizer every family trains with: Adam (AdamW with weight decay) on a learning-rate schedule.

:class:`OptimizerFields` declares its config fields once; every family's ``Config`` derives from it
and may change a default (the GAN's ``beta1`` 0.5, say) by declaring the field again with the same
spec. :func:`adam` builds the optax transformation from those fields and a peak learning rate.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

import optax

from genjax.core import config as cfg_lib
from genjax.core.errors import ConfigError

SCHEDULES = ("constant", "cosine", "warmup_cosine")


def _run_length(value: int, config: Any, context: cfg_lib.Context) -> int:
    """``decay_steps`` 0 means the length of the run, when the schedule decays."""
    return context.steps if value == 0 and config.schedule != "constant" else value


def _below_decay(name: str, value: int, config: Any) -> None:
    if config.schedule == "warmup_cosine" and 0 < config.decay_steps <= value:
        raise ConfigError(f"warmup_steps ({value}) must be below decay_steps ({config.decay_steps})")


BETA1 = cfg_lib.Spec("Adam's first-moment decay", (cfg_lib.below_one,))
BETA2 = cfg_lib.Spec("Adam's second-moment decay", (cfg_lib.below_one,))
WEIGHT_DECAY = cfg_lib.Spec("decoupled weight decay (AdamW) when > 0", (cfg_lib.nonnegative,))
SCHEDULE = cfg_lib.Spec(f"learning-rate schedule: {', '.join(SCHEDULES)}", (cfg_lib.choice(SCHEDULES),))
DECAY_STEPS = cfg_lib.Spec("steps of the cosine decay; 0: the length of the run", (cfg_lib.nonnegative,),
                           resolve=_run_length)
WARMUP_STEPS = cfg_lib.Spec("steps of linear warm-up (warmup_cosine)", (cfg_lib.nonnegative, _below_decay))
LEARNING_RATE = cfg_lib.Spec("Adam's peak learning rate", (cfg_lib.positive,))


@cfg_lib.listed_last
@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimizerFields(cfg_lib.ConfigBase):
    """The optimizer's fields, shared by every family's config (learning rates are the family's own)."""

    beta1: float = BETA1(0.9)
    beta2: float = BETA2(0.999)
    weight_decay: float = WEIGHT_DECAY(0.0)
    schedule: str = SCHEDULE("constant")
    decay_steps: int = DECAY_STEPS(0)
    warmup_steps: int = WARMUP_STEPS(0)


def learning_rate_schedule(peak: float, schedule: str, decay_steps: int, warmup_steps: int) -> optax.Schedule:
    """A learning rate per step: constant, cosine decay to 0 over ``decay_steps``, or linear warm-up then cosine."""
    if schedule == "constant":
        return optax.constant_schedule(peak)
    if schedule == "cosine":
        return optax.cosine_decay_schedule(peak, decay_steps)
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup_steps, decay_steps)


@functools.cache
def adam(config: OptimizerFields, peak: float) -> optax.GradientTransformation:
    """Adam with ``config``'s betas and schedule at peak learning rate ``peak`` (AdamW when its
    ``weight_decay`` > 0). Cached: equal (frozen) configs share one optimizer object, so the states
    that carry it share their compiled steps. ``decay_steps`` must be resolved first."""
    return adam_with(config, peak, config.beta1, config.beta2)


def adam_with(config: OptimizerFields, peak: Any, beta1: Any, beta2: Any) -> optax.GradientTransformation:
    """:func:`adam` with the peak learning rate and the betas given, numbers or arrays (a sweep builds it inside
    its traced step from the run's swept betas; the optimizer state has the same structure either way)."""
    if config.schedule != "constant" and config.decay_steps == 0:
        raise ConfigError("decay_steps 0 (the run's length) must be resolved before building the optimizer")
    lr = learning_rate_schedule(peak, config.schedule, config.decay_steps, config.warmup_steps)
    if config.weight_decay > 0:
        return optax.adamw(lr, b1=beta1, b2=beta2, weight_decay=config.weight_decay)
    return optax.adam(lr, b1=beta1, b2=beta2)


SWEEPABLE = {"beta1": (), "beta2": ()}  # Adam's betas, sweepable in every family (genjax.train.sweep)
BETAS_PEAK = "adam_peak"  # hyper[BETAS_PEAK][optimizer name]: its peak learning rate, when a sweep sets betas
