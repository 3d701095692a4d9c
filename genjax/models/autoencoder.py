"""Deterministic autoencoders: plain, denoising (Gaussian or masking noise) and sparse (L1 on the code).

The default is mildly denoising (Gaussian noise, std 0.1): on the 1,437 training digits a plain
autoencoder overfits, and the noise roughly halves its test error; ``noise="none"`` turns it off.
"""
from __future__ import annotations

import dataclasses
import functools

import jax

from genjax.core import config as cfg_lib
from genjax.core import optim
from genjax.core.errors import ConfigError
from genjax.core.state import State
from genjax.models import coder
from genjax.models.family import Batch, Capabilities, Metrics, expect_config
from genjax.nn import draws, losses, nets

NAME = "autoencoder"
DEFAULT_STEPS = 5000  # what the scripts train for unless told otherwise
# Fields a sweep may vary in one program (genjax.train.sweep): a learning rate names the optimizers it drives.
SWEEPABLE = {"learning_rate": ("encoder", "decoder"), "noise_level": (), "sparsity_weight": (),
             **optim.SWEEPABLE}
CAPABILITIES = Capabilities(encodes=True)
NOISES = ("none", "gaussian", "masking")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(coder.CoderConfig):
    """Autoencoder hyperparameters; every field has a default (``dataclasses.replace`` to change)."""

    noise: str = cfg_lib.Spec("input corruption: none, gaussian (std noise_level) or masking (drop probability "
                              "noise_level)", (cfg_lib.choice(NOISES),))("gaussian")
    noise_level: float = cfg_lib.Spec("std of the gaussian noise, or the masking drop probability",
                                      (cfg_lib.nonnegative,))(0.1)
    sparsity_weight: float = cfg_lib.Spec("weight of the L1 penalty on the code (a sparse autoencoder when > 0)",
                                          (cfg_lib.nonnegative,))(0.0)

    def check(self) -> None:
        if self.noise == "masking" and self.noise_level >= 1:
            raise ConfigError(f"masking noise_level is a drop probability in [0, 1), got {self.noise_level}")


@functools.cache
def _networks(cfg: Config, data_shape: tuple[int, ...]) -> tuple[nets.Encoder, nets.Decoder]:
    shared = dict(architecture=cfg.architecture, hidden_dims=cfg.hidden_dims, conv_channels=cfg.conv_channels,
                  activation=cfg.activation)
    return nets.Encoder(cfg.latent_dim, **shared), nets.Decoder(data_shape, **shared)


def batch_rows(cfg: Config) -> int:
    """Examples per ``train_step`` batch."""
    return cfg.batch_size


def init(key: jax.Array, cfg: Config, batch: Batch) -> State:
    """A fresh state; parameter shapes come from the example ``batch['x']`` ``[N, *data_shape]``."""
    expect_config(cfg, Config, NAME)
    return coder.init(key, cfg, batch, _networks, DEFAULT_STEPS)


def corrupt(x: jax.Array, noise: str, level: float, key: jax.Array) -> jax.Array:
    """Denoising input: ``x + level * N(0, 1)`` (gaussian), ``x * Bernoulli(1 - level)`` (masking), or ``x``."""
    if noise == "gaussian":
        return x + level * draws.normal(key, x.shape, x.dtype)
    if noise == "masking":
        return x * draws.bernoulli(key, 1.0 - level, x.shape).astype(x.dtype)
    return x


@jax.jit
def train_step(state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]:
    """One Adam step on ``batch['x']`` ``[batch_size, *data_shape]``.

    Metrics: ``loss`` (total), ``recon_loss`` (per element; MSE or BCE in nats), ``code_l1``.
    Pure; compiles once per batch shape. Does not donate ``state``: ``genjax.fit`` does.
    """
    cfg = state.config
    expect_config(cfg, Config, NAME)
    nets.check_batch(cfg.architecture, batch, state.data_shape)
    encoder, decoder = _networks(cfg, state.data_shape)
    x = batch["x"]
    x_in = corrupt(x, cfg.noise, state.hp("noise_level"), key)

    def loss_fn(params):
        code = encoder.apply(params["encoder"], x_in)
        recon = losses.reconstruction(cfg.loss, decoder.apply(params["decoder"], code), x, cfg.output)
        code_l1 = losses.l1(code)
        return recon + state.hp("sparsity_weight") * code_l1, {"recon_loss": recon, "code_l1": code_l1}

    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return state.apply_gradients(grads), {"loss": loss, **aux}


@jax.jit
def encode(state: State, x: jax.Array) -> jax.Array:
    """Codes ``[N, latent_dim]`` of examples ``[N, *data_shape]`` (no input noise)."""
    encoder, _ = _networks(state.config, state.data_shape)
    return encoder.apply(state.params["encoder"], x)


codes = encode  # the contract's name for an encoder's deterministic codes


@jax.jit
def decode(state: State, code: jax.Array) -> jax.Array:
    """Examples ``[N, *data_shape]`` in data space from codes ``[N, latent_dim]``."""
    _, decoder = _networks(state.config, state.data_shape)
    return losses.activate(decoder.apply(state.params["decoder"], code), state.config.output)


@jax.jit
def reconstruct(state: State, x: jax.Array) -> jax.Array:
    """``decode(encode(x))``: ``[N, *data_shape]`` in data space."""
    return decode(state, encode(state, x))


@functools.partial(jax.jit, static_argnames="n")
def interpolate(state: State, x_a: jax.Array, x_b: jax.Array, n: int) -> jax.Array:
    """Decoded straight lines between the codes of ``x_a`` and ``x_b`` (each ``[B, *data_shape]``):
    ``[B, n, *data_shape]``, from ``x_a``'s code (first) to ``x_b``'s (last)."""
    return nets.interpolate(lambda x: encode(state, x), lambda z: decode(state, z), x_a, x_b, n)
