"""The contract every family keeps, in code: what it must define and the optional capabilities it declares.

A family is a module (or any object) with the attributes of :class:`Family`. What it can do beyond
training is declared in its ``CAPABILITIES`` (:class:`Capabilities`), and each declared capability
brings the functions of its protocol (:class:`Encoder`, :class:`Sampler`, :class:`HeadedSampler`,
:class:`Likelihood`, :class:`Conditional`, :class:`BuildsOnRuns`). The registry (:mod:`genjax.models.registry`) checks
both when it hands a family out; everything else reads ``CAPABILITIES`` and never probes.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import jax

from genjax.core.config import Context
from genjax.core.errors import ConfigError
from genjax.core.state import State

Batch = dict[str, Any]  # {"x": [N, *data_shape]} or {"x": ..., "y": [N] int labels}
Metrics = dict[str, jax.Array]  # scalars


def expect_config(config: Any, cls: type, name: str) -> None:
    """ConfigError unless ``config`` is a ``cls``: a state or Config of another family passed by mistake."""
    if not isinstance(config, cls):
        kind = f"{type(config).__module__}.{type(config).__qualname__}"
        raise ConfigError(f"genjax.{name} got a {kind}; pass a genjax.{name}.Config or a state that "
                          f"genjax.{name}.init built")


def expect_count(n: Any) -> None:
    """ConfigError unless ``n`` (samples to draw) is a positive int."""
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise ConfigError(f"the number of samples n must be a positive integer, got {n!r}")


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a family can do besides training; each true flag requires the functions named in :data:`PROVIDES`."""

    encodes: bool = False  # codes, reconstruct, interpolate (Encoder)
    samples: bool = False  # sample (Sampler)
    heads: bool = False  # class-specific sampling: sample(..., head=k), num_heads (HeadedSampler)
    likelihood: bool = False  # elbo_terms, log_likelihood, likelihood_name: nats per example (Likelihood)
    labels: bool = False  # may train on labels: needs_labels (Conditional)
    builds_on_runs: bool = False  # init takes trained runs' states: uses_runs, run_recipe (BuildsOnRuns)

    def declared(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self) if getattr(self, f.name))


REQUIRED = ("NAME", "Config", "DEFAULT_STEPS", "CAPABILITIES", "init", "train_step", "batch_rows")
PROVIDES = {
    "encodes": ("codes", "reconstruct", "interpolate"),
    "samples": ("sample",),
    "heads": ("sample", "num_heads"),
    "likelihood": ("elbo_terms", "log_likelihood", "likelihood_name"),
    "labels": ("needs_labels",),
    "builds_on_runs": ("uses_runs", "run_recipe"),
}


class Family(Protocol):
    """Required of every family: one module, registered by name."""

    NAME: str  # the registry's name for it, e.g. "gan"
    Config: type  # frozen dataclass deriving from genjax.core.optim.OptimizerFields, every field defaulted
    DEFAULT_STEPS: int  # what the scripts train for unless told otherwise
    CAPABILITIES: Capabilities

    def init(self, key: jax.Array, config: Any, batch: Batch) -> State:
        """A fresh state; shapes come from the example batch."""
        ...

    def train_step(self, state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]:
        """Pure and jitted; ``metrics`` holds a scalar ``loss`` (watched for divergence); ``step`` + 1."""
        ...

    def batch_rows(self, config: Any) -> int:
        """Examples per ``train_step`` batch."""
        ...


class Encoder(Family, Protocol):
    def codes(self, state: State, x: jax.Array) -> jax.Array:
        """Deterministic codes ``[N, L]`` of examples ``[N, *data_shape]``."""
        ...

    def reconstruct(self, state: State, x: jax.Array) -> jax.Array:
        """``[N, *data_shape]`` in data space."""
        ...

    def interpolate(self, state: State, x_a: jax.Array, x_b: jax.Array, n: int) -> jax.Array:
        """Decoded straight lines between codes: ``[B, n, *data_shape]``."""
        ...


class Sampler(Family, Protocol):
    def sample(self, state: State, key: jax.Array, n: int) -> jax.Array:
        """``n`` samples ``[n, *data_shape]`` in data space."""
        ...


class HeadedSampler(Sampler, Protocol):
    def sample(self, state: State, key: jax.Array, n: int, head: int | None = None) -> jax.Array:
        """Samples of head ``head`` (a class), or of every head in turn."""
        ...

    def num_heads(self, config: Any) -> int:
        """Class-specific samplers of this config (0 or 1: none)."""
        ...


class Likelihood(Family, Protocol):
    def elbo_terms(self, state: State, x: jax.Array, key: jax.Array) -> dict[str, jax.Array]:
        """Per-example ``recon`` (-log p(x|z)) and ``kl`` in nats, ``[N]`` each."""
        ...

    def log_likelihood(self, state: State, x: jax.Array, key: jax.Array, samples: int) -> jax.Array:
        """An importance-weighted estimate of log p(x) per example ``[N]`` in nats, from ``samples`` draws."""
        ...

    def likelihood_name(self, config: Any) -> tuple[str, bool]:
        """The likelihood's name for reports, and whether it is a probability of the data's discrete values
        (so that bits per dimension mean what the literature means)."""
        ...


class Conditional(Family, Protocol):
    def needs_labels(self, config: Any) -> bool:
        """Whether this config trains on ``batch['y']``."""
        ...


AUTO_RUN = "auto"  # in place of a run directory: genjax trains the run (the family's recipe) and caches it


@dataclasses.dataclass(frozen=True)
class RunRecipe:
    """How genjax trains a run that a config builds on when the config says :data:`AUTO_RUN`: ``family`` (a
    name) with its default config changed by ``changes`` (field -> value), for ``steps`` steps, seed 0."""

    family: str
    changes: tuple[tuple[str, Any], ...]
    steps: int


class BuildsOnRuns(Family, Protocol):
    def uses_runs(self, config: Any) -> dict[str, str]:
        """The trained runs this config builds on: ``init``'s keyword -> run directory or :data:`AUTO_RUN`
        (empty when none); ``init`` then takes each run's state under its keyword."""
        ...

    def run_recipe(self, name: str, config: Any) -> RunRecipe:
        """What to train for ``uses_runs(config)[name]`` when it is :data:`AUTO_RUN`."""
        ...


def runs_used(family: Family, config: Any) -> dict[str, str]:
    """``family.uses_runs(config)``; empty for a family without the ``builds_on_runs`` capability."""
    return family.uses_runs(config) if family.CAPABILITIES.builds_on_runs else {}


def batch_context(batch: Batch, data_shape: tuple[int, ...], steps: int) -> Context:
    """What ``init`` resolves placeholders against when it sees one batch and not the whole data set:
    the class count is unknown, and the run's length is the family's ``DEFAULT_STEPS``."""
    return Context("the batch", data_shape, "y" in batch, None, steps)
