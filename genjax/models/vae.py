"""Variational autoencoders: a Gaussian encoder, reparameterised sampling, Bernoulli or Gaussian likelihood.

The loss is the negative ELBO per example in nats, ``reconstruction + beta_t * KL``: reconstruction
is -log p(x | z) summed over the example's elements (one z per example, drawn by the
reparameterisation trick), KL is KL(q(z | x) || N(0, I)) in closed form, both averaged over the
batch. ``beta_t`` rises linearly from 0 to ``beta`` over ``kl_warmup_steps``. With ``loss="bce"``
the decoder's outputs are Bernoulli logits (the usual choice for pixels in [0, 1]; for grey levels
it is a relaxation, not a normalised density); with ``loss="mse"`` they are the means of a Gaussian
with fixed ``output_std``, and the nats include its normalising constant; with ``loss="discretized"``
they are the means of that Gaussian integrated over the 256 bins of 8-bit pixels, a proper probability
of 8-bit images (:func:`genjax.nn.losses.discretized_gaussian_log_prob`). :func:`log_likelihood` is the
importance-weighted bound (Burda et al. 2016) with ``iwae_samples`` draws from q(z | x): tighter than
the ELBO, and the test negative log-likelihood that reports quote.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from genjax.core import config as cfg_lib
from genjax.core import optim
from genjax.core.errors import ConfigError
from genjax.core.state import State
from genjax.models import coder
from genjax.models.family import Batch, Capabilities, Metrics, expect_config, expect_count
from genjax.nn import losses, nets

NAME = "vae"
DEFAULT_STEPS = 8000  # what the scripts train for unless told otherwise
# Fields a sweep may vary in one program (genjax.train.sweep): a learning rate names the optimizers it drives.
SWEEPABLE = {"learning_rate": ("encoder", "decoder"), "beta": (), "kl_warmup_steps": (), **optim.SWEEPABLE}
CAPABILITIES = Capabilities(encodes=True, samples=True, likelihood=True)


LOSSES = ("mse", "bce", "discretized")
LIKELIHOODS = {  # loss -> (name in reports, a probability of the data's discrete values)
    "mse": ("Gaussian density (fixed std)", False),
    "bce": ("Bernoulli on grey levels (not normalised over them)", False),
    "discretized": ("discretised Gaussian over 256 grey levels (fixed std)", True),
}


def _unit_interval_outputs(name: str, value: str, config: Config) -> None:
    if value in ("bce", "discretized") and config.output == "linear":
        raise ConfigError(f"loss {value!r} needs sigmoid outputs (data in [0, 1]); vectors train with loss 'mse' "
                          "and output 'linear'")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(coder.CoderConfig):
    """VAE hyperparameters; every field has a default (``dataclasses.replace`` to change). The prior is
    N(0, I_latent_dim); with loss mse, ``output`` sets the Gaussian likelihood's means."""

    loss: str = cfg_lib.Spec("likelihood: mse (Gaussian density, std output_std), bce (Bernoulli logits) or "
                             "discretized (Gaussian mass over the 256 levels of 8-bit pixels: a proper likelihood)",
                             (cfg_lib.choice(LOSSES), _unit_interval_outputs))("mse")
    output_std: float = cfg_lib.Spec("std of the Gaussian likelihood in data units (loss mse or discretized)",
                                     (cfg_lib.positive,))(0.1)
    iwae_samples: int = cfg_lib.Spec("draws per test example of the evaluation's importance-weighted "
                                     "log-likelihood", (cfg_lib.positive,))(64)
    beta: float = cfg_lib.Spec("weight of the KL term (a beta-VAE when != 1)", (cfg_lib.nonnegative,))(1.0)
    kl_warmup_steps: int = cfg_lib.Spec("steps over which the KL weight rises linearly from 0 (0: none)",
                                        (cfg_lib.nonnegative,))(1000)


@functools.cache
def _networks(cfg: Config, data_shape: tuple[int, ...]) -> tuple[nets.Encoder, nets.Decoder]:
    shared = dict(architecture=cfg.architecture, hidden_dims=cfg.hidden_dims, conv_channels=cfg.conv_channels,
                  activation=cfg.activation)
    return nets.Encoder(2 * cfg.latent_dim, **shared), nets.Decoder(data_shape, **shared)


def batch_rows(cfg: Config) -> int:
    """Examples per ``train_step`` batch."""
    return cfg.batch_size


def init(key: jax.Array, cfg: Config, batch: Batch) -> State:
    """A fresh state; parameter shapes come from the example ``batch['x']`` ``[N, *data_shape]``."""
    expect_config(cfg, Config, NAME)
    return coder.init(key, cfg, batch, _networks, DEFAULT_STEPS)


def _posterior(state: State, params: dict, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    encoder, _ = _networks(state.config, state.data_shape)
    mean, log_var = jnp.split(encoder.apply(params["encoder"], x), 2, axis=-1)
    return mean, log_var


def _nll(state: State, outputs: jax.Array, x: jax.Array) -> jax.Array:
    """-log p(x | z) per example in nats, averaged over the batch, from the decoder's raw outputs."""
    cfg = state.config
    if cfg.loss == "bce":
        return losses.bernoulli_nll(outputs, x)
    if cfg.loss == "discretized":
        return -jnp.mean(losses.discretized_gaussian_log_prob(losses.activate(outputs, cfg.output), x, cfg.output_std))
    return losses.gaussian_nll(losses.activate(outputs, cfg.output), x, cfg.output_std)


def beta_at(cfg: Config, step: jax.Array, beta: float | jax.Array | None = None,
            warmup: int | jax.Array | None = None) -> jax.Array:
    """The KL weight at ``step``: ``beta * min(1, step / kl_warmup_steps)``, or ``beta`` when the warm-up is 0
    (``beta`` and ``warmup``: the config's unless given, as a sweep gives them, as arrays)."""
    beta = cfg.beta if beta is None else beta
    warmup = cfg.kl_warmup_steps if warmup is None else warmup
    if isinstance(warmup, int):
        if warmup == 0:
            return jnp.asarray(beta, jnp.float32)
        return beta * jnp.minimum(1.0, step.astype(jnp.float32) / warmup)
    ramp = jnp.minimum(1.0, step.astype(jnp.float32) / jnp.maximum(warmup, 1.0))
    return beta * jnp.where(warmup > 0, ramp, 1.0)


def _elbo_terms(state: State, params: dict, x: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-example reconstruction nats ``[N]`` and KL nats ``[N]``, with one reparameterised z per example."""
    _, decoder = _networks(state.config, state.data_shape)
    mean, log_var = _posterior(state, params, x)
    z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape, mean.dtype)
    outputs = decoder.apply(params["decoder"], z)
    recon = jax.vmap(lambda o, t: _nll(state, o[None], t[None]))(outputs, x)
    return recon, losses.gaussian_kl(mean, log_var)


@jax.jit
def train_step(state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]:
    """One Adam step on the negative ELBO of ``batch['x']`` ``[batch_size, *data_shape]``.

    Metrics (nats per example, batch means): ``loss`` (reconstruction + beta_t * KL), ``recon_nats``,
    ``kl_nats``, ``neg_elbo`` (reconstruction + KL, the bound at beta = 1) and ``beta`` (this step's
    KL weight). Pure; compiles once per batch shape.
    """
    cfg = state.config
    expect_config(cfg, Config, NAME)
    nets.check_batch(cfg.architecture, batch, state.data_shape)
    beta = beta_at(cfg, state.step, state.hp("beta"), state.hp("kl_warmup_steps"))

    def loss_fn(params):
        recon, kl = (jnp.mean(t) for t in _elbo_terms(state, params, batch["x"], key))
        return recon + beta * kl, {"recon_nats": recon, "kl_nats": kl, "neg_elbo": recon + kl, "beta": beta}

    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return state.apply_gradients(grads), {"loss": loss, **aux}


@jax.jit
def encode(state: State, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Posterior mean and log-variance, each ``[N, latent_dim]``, of examples ``[N, *data_shape]``."""
    return _posterior(state, state.params, x)


def codes(state: State, x: jax.Array) -> jax.Array:
    """The posterior means ``[N, latent_dim]``: the deterministic codes of the contract."""
    return encode(state, x)[0]


@jax.jit
def decode(state: State, z: jax.Array) -> jax.Array:
    """The likelihood's mean ``[N, *data_shape]`` (Bernoulli probabilities or Gaussian means) at ``z``
    ``[N, latent_dim]``."""
    _, decoder = _networks(state.config, state.data_shape)
    activation = "sigmoid" if state.config.loss == "bce" else state.config.output
    return losses.activate(decoder.apply(state.params["decoder"], z), activation)


@jax.jit
def reconstruct(state: State, x: jax.Array) -> jax.Array:
    """``decode`` of the posterior means: ``[N, *data_shape]``."""
    return decode(state, codes(state, x))


@functools.partial(jax.jit, static_argnames="n")
def sample(state: State, key: jax.Array, n: int) -> jax.Array:
    """``n`` samples ``[n, *data_shape]``: the likelihood's mean at ``z ~ N(0, I)``."""
    expect_config(state.config, Config, NAME)
    expect_count(n)
    return nets.in_chunks(lambda z: decode(state, z), jax.random.normal(key, (n, state.config.latent_dim)))


@functools.partial(jax.jit, static_argnames="n")
def interpolate(state: State, x_a: jax.Array, x_b: jax.Array, n: int) -> jax.Array:
    """Decoded straight lines between the posterior means of ``x_a`` and ``x_b`` (each ``[B, *data_shape]``):
    ``[B, n, *data_shape]``, from ``x_a``'s code (first) to ``x_b``'s (last)."""
    return nets.interpolate(lambda x: codes(state, x), lambda z: decode(state, z), x_a, x_b, n)


@jax.jit
def elbo_terms(state: State, x: jax.Array, key: jax.Array) -> dict[str, jax.Array]:
    """Per-example reconstruction nats ``[N]`` and KL nats ``[N]`` (one z per example from ``key``)."""
    recon, kl = _elbo_terms(state, state.params, x, key)
    return {"recon": recon, "kl": kl}


@functools.partial(jax.jit, static_argnames="samples")
def log_likelihood(state: State, x: jax.Array, key: jax.Array, samples: int) -> jax.Array:
    """The importance-weighted estimate of log p(x) per example ``[N]`` in nats:
    log (1/K sum_k p(x | z_k) p(z_k) / q(z_k | x)) with K = ``samples`` draws z_k ~ q(z | x). A lower bound
    whose expectation rises to log p(x) as K grows; K = 1 is the ELBO."""
    _, decoder = _networks(state.config, state.data_shape)
    mean, log_var = _posterior(state, state.params, x)
    std = jnp.exp(0.5 * log_var)
    log_norm = 0.5 * mean.shape[-1] * math.log(2.0 * math.pi)

    def weight(draw_key: jax.Array) -> jax.Array:
        eps = jax.random.normal(draw_key, mean.shape, mean.dtype)
        z = mean + std * eps
        outputs = decoder.apply(state.params["decoder"], z)
        log_px_z = -jax.vmap(lambda o, t: _nll(state, o[None], t[None]))(outputs, x)
        log_pz = -0.5 * jnp.sum(jnp.square(z), -1) - log_norm
        log_qz = -0.5 * jnp.sum(jnp.square(eps) + log_var, -1) - log_norm
        return log_px_z + log_pz - log_qz

    weights = jax.lax.map(weight, jax.random.split(key, samples))  # [samples, N]
    return jax.nn.logsumexp(weights, axis=0) - math.log(samples)


def likelihood_name(cfg: Config) -> tuple[str, bool]:
    """The likelihood's name for reports and whether it is a probability of 8-bit pixel values."""
    return LIKELIHOODS[cfg.loss]
