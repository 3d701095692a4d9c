"""Variational autoencoders: a Gaussian encoder, reparameterised sampling, Bernoulli or Gaussian likelihood.

The loss is the negative ELBO per example in nats, ``reconstruction + beta_t * KL``: reconstruction
is -log p(x | z) summed over the example's elements (one z per example, drawn by the
reparameterisation trick), KL is KL(q(z | x) || N(0, I)) in closed form, both averaged over the
batch. ``beta_t`` rises linearly from 0 to ``beta`` over ``kl_warmup_steps``. With ``loss="bce"``
the decoder's outputs are Bernoulli logits (the usual choice for pixels in [0, 1]; for grey levels
it is a relaxation, not a normalised density); with ``loss="mse"`` they are the means of a Gaussian
with fixed ``output_std``, and the nats include its normalising constant.

Contract (DESIGN.md): ``Config``, ``init``, ``train_step``, ``encode`` (mean, log-variance),
``decode``, ``reconstruct``, ``sample`` and ``interpolate``.
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from genjax import config as cfg_lib
from genjax import autoencoder, losses, metrics, nets, optim, plots
from genjax.data import Dataset
from genjax.errors import ConfigError
from genjax.state import State

DEFAULT_STEPS = 8000  # what experiments.train runs unless told otherwise
EVAL_NOTES = ("test_elbo_nats, test_recon_nats, test_kl_nats: nats per example (reconstruction summed over the "
              "example's elements, one z per example), averaged over the test split; with loss mse they are "
              "Gaussian log-densities, so reconstruction nats can be negative",)


@dataclasses.dataclass(frozen=True)
class Config:
    """VAE hyperparameters; every field has a default (``dataclasses.replace`` to change)."""

    latent_dim: int = 8  # size of z; prior N(0, I)
    architecture: str = "mlp"  # "mlp" or "conv" (images only)
    hidden_dims: tuple[int, ...] = (256, 128)  # encoder MLP widths; the decoder mirrors them
    conv_channels: tuple[int, ...] = (32, 64)
    activation: str = "relu"
    loss: str = "mse"  # likelihood: "mse" (Gaussian, std output_std) or "bce" (Bernoulli logits)
    output: str = "auto"  # Gaussian means: "auto" (sigmoid for images, linear for vectors), "sigmoid", "linear"
    output_std: float = 0.1  # std of the Gaussian likelihood, in data units (loss "mse")
    beta: float = 1.0  # weight of the KL term (beta-VAE when != 1)
    kl_warmup_steps: int = 1000  # beta rises linearly from 0 over these steps (0: no warm-up)
    batch_size: int = 128
    learning_rate: float = 1e-3
    schedule: str = "constant"
    decay_steps: int = 0  # cosine length; 0: the run's (genjax.fit), or DEFAULT_STEPS
    warmup_steps: int = 0
    weight_decay: float = 0.0

    def __post_init__(self):
        cfg_lib.require_types(self)
        cfg_lib.require_positive(self, "latent_dim", "batch_size", "learning_rate", "output_std")
        cfg_lib.require_nonnegative(self, "beta", "kl_warmup_steps", "warmup_steps", "decay_steps", "weight_decay")
        cfg_lib.require_choice(self, "architecture", nets.ARCHITECTURES)
        cfg_lib.require_choice(self, "activation", nets.ACTIVATIONS)
        cfg_lib.require_choice(self, "loss", losses.RECONSTRUCTION_LOSSES)
        cfg_lib.require_choice(self, "output", losses.OUTPUTS)
        optim.validate_schedule(self)
        cfg_lib.require_widths(self, "hidden_dims")
        cfg_lib.require_widths(self, "conv_channels")
        if self.loss == "bce" and self.output == "linear":
            raise ConfigError("loss 'bce' (Bernoulli) needs sigmoid outputs; use loss 'mse' with output 'linear'")


@functools.cache
def _networks(cfg: Config, data_shape: tuple[int, ...]) -> tuple[nets.Encoder, nets.Decoder]:
    shared = dict(architecture=cfg.architecture, hidden_dims=cfg.hidden_dims, conv_channels=cfg.conv_channels,
                  activation=cfg.activation)
    return nets.Encoder(2 * cfg.latent_dim, **shared), nets.Decoder(data_shape, **shared)


batch_rows = autoencoder.batch_rows  # examples per train_step batch: batch_size


def init(key: jax.Array, cfg: Config, batch: dict) -> State:
    """A fresh state; parameter shapes come from the example ``batch['x']`` ``[N, *data_shape]``."""
    return autoencoder.init_coder(key, cfg, batch, _networks, optim.config_adam(cfg, DEFAULT_STEPS))


def _posterior(state: State, params: dict, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    encoder, _ = _networks(state.config, state.data_shape)
    mean, log_var = jnp.split(encoder.apply(params["encoder"], x), 2, axis=-1)
    return mean, log_var


def _nll(state: State, outputs: jax.Array, x: jax.Array) -> jax.Array:
    """-log p(x | z) per example in nats, averaged over the batch, from the decoder's raw outputs."""
    cfg = state.config
    if cfg.loss == "bce":
        return losses.bernoulli_nll(outputs, x)
    mean = losses.activate(outputs, losses.output_activation(cfg.output, state.data_shape))
    return losses.gaussian_nll(mean, x, cfg.output_std)


def beta_at(cfg: Config, step: jax.Array) -> jax.Array:
    """The KL weight at ``step``: ``beta * min(1, step / kl_warmup_steps)``."""
    if cfg.kl_warmup_steps == 0:
        return jnp.asarray(cfg.beta, jnp.float32)
    return cfg.beta * jnp.minimum(1.0, step.astype(jnp.float32) / cfg.kl_warmup_steps)


def _elbo_terms(state: State, params: dict, x: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-example reconstruction nats ``[N]`` and KL nats ``[N]``, with one reparameterised z per example."""
    _, decoder = _networks(state.config, state.data_shape)
    mean, log_var = _posterior(state, params, x)
    z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape, mean.dtype)
    outputs = decoder.apply(params["decoder"], z)
    recon = jax.vmap(lambda o, t: _nll(state, o[None], t[None]))(outputs, x)
    return recon, losses.gaussian_kl(mean, log_var)


@jax.jit
def train_step(state: State, batch: dict, key: jax.Array) -> tuple[State, dict]:
    """One Adam step on the negative ELBO of ``batch['x']`` ``[batch_size, *data_shape]``.

    Metrics (nats per example, batch means): ``loss`` (reconstruction + beta_t * KL), ``recon_nats``,
    ``kl_nats``, ``neg_elbo`` (reconstruction + KL, the bound at beta = 1) and ``beta`` (this step's
    KL weight). Pure; compiles once per batch shape.
    """
    cfg = state.config
    nets.check_batch(cfg.architecture, batch, state.data_shape)
    beta = beta_at(cfg, state.step)

    def loss_fn(params):
        recon, kl = (jnp.mean(t) for t in _elbo_terms(state, params, batch["x"], key))
        return recon + beta * kl, {"recon_nats": recon, "kl_nats": kl, "neg_elbo": recon + kl, "beta": beta}

    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return optim.gradient_step(state, optim.config_adam(cfg, DEFAULT_STEPS), grads), {"loss": loss, **aux}


@jax.jit
def encode(state: State, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Posterior mean and log-variance, each ``[N, latent_dim]``, of examples ``[N, *data_shape]``."""
    return _posterior(state, state.params, x)


@jax.jit
def decode(state: State, z: jax.Array) -> jax.Array:
    """The likelihood's mean ``[N, *data_shape]`` (Bernoulli probabilities or Gaussian means) at ``z`` ``[N, latent_dim]``."""
    _, decoder = _networks(state.config, state.data_shape)
    activation = "sigmoid" if state.config.loss == "bce" else losses.output_activation(state.config.output,
                                                                                       state.data_shape)
    return losses.activate(decoder.apply(state.params["decoder"], z), activation)


@jax.jit
def reconstruct(state: State, x: jax.Array) -> jax.Array:
    """``decode`` of the posterior means: ``[N, *data_shape]``."""
    return decode(state, encode(state, x)[0])


@functools.partial(jax.jit, static_argnames="n")
def sample(state: State, key: jax.Array, n: int) -> jax.Array:
    """``n`` samples ``[n, *data_shape]``: the likelihood's mean at ``z ~ N(0, I)``."""
    return decode(state, jax.random.normal(key, (n, state.config.latent_dim)))


@functools.partial(jax.jit, static_argnames="n")
def interpolate(state: State, x_a: jax.Array, x_b: jax.Array, n: int) -> jax.Array:
    """Decoded straight lines between the posterior means of ``x_a`` and ``x_b`` (each ``[B, *data_shape]``):
    ``[B, n, *data_shape]``, from ``x_a``'s code (first) to ``x_b``'s (last)."""
    return nets.interpolate(lambda x: encode(state, x)[0], lambda z: decode(state, z), x_a, x_b, n)


@jax.jit
def elbo_terms(state: State, x: jax.Array, key: jax.Array) -> dict[str, jax.Array]:
    """Per-example reconstruction nats ``[N]`` and KL nats ``[N]`` (one z per example from ``key``)."""
    recon, kl = _elbo_terms(state, state.params, x, key)
    return {"recon": recon, "kl": kl}


def evaluate(state: State, dataset: Dataset, full: bool = True) -> dict[str, float | None]:
    """Test ELBO in nats per example (reconstruction summed over elements, averaged over the test split,
    one z per example, seed 0), its two terms, reconstruction MSE from the posterior means and, with
    ``full``, the probe on the means, PCA, and the quality of prior samples (:func:`metrics.sample_report`)."""
    def both(x):
        terms = elbo_terms(state, x, jax.random.key(0))
        return jnp.stack([terms["recon"], terms["kl"]], -1)

    recon, kl = metrics.batched(both, dataset.x_test).mean(0)
    report = {"test_elbo_nats": float(-(recon + kl)), "test_recon_nats": float(recon), "test_kl_nats": float(kl)}
    report.update(metrics.reconstruction_report(lambda x: encode(state, x)[0], lambda x: reconstruct(state, x),
                                                dataset, state.config.latent_dim, full))
    if full:
        samples = np.asarray(sample(state, jax.random.key(0), metrics.EVAL_SAMPLES))
        report.update(metrics.sample_report(samples, dataset, full))
    return report


def write_figures(state: State, dataset: Dataset, workdir: Path) -> list[Path]:
    """``reconstructions.png``, ``samples.png`` (from the prior) and, for images, ``interpolations.png``."""
    workdir = Path(workdir)
    written = autoencoder.write_coder_figures(reconstruct, interpolate, state, dataset, workdir)
    if dataset.is_image:
        samples = np.asarray(sample(state, jax.random.key(1), 64))
        return written + [plots.image_grid(samples, workdir / "samples.png", rows=8)]
    samples = np.asarray(sample(state, jax.random.key(1), metrics.EVAL_SAMPLES))
    return written + [plots.scatter(samples, workdir / "samples.png", dataset.x_test, dataset.modes)]
