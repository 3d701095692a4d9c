"""Deterministic autoencoders: plain, denoising (Gaussian or masking noise) and sparse (L1 on the code).

Contract (DESIGN.md): ``Config``, ``init``, ``train_step``, ``encode``, ``decode``, ``reconstruct``.
The default is mildly denoising (Gaussian noise, std 0.1): on the 1,437 training digits a plain
autoencoder overfits, and the noise roughly halves its test error; ``noise="none"`` turns it off.
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax import config as cfg_lib
from genjax import losses, metrics, nets, optim, plots
from genjax.data import Dataset
from genjax.errors import ConfigError
from genjax.state import State

NOISES = ("none", "gaussian", "masking")
DEFAULT_STEPS = 5000  # what experiments.train runs unless told otherwise


@dataclasses.dataclass(frozen=True)
class Config:
    """Autoencoder hyperparameters; every field has a default (``dataclasses.replace`` to change)."""

    latent_dim: int = 8  # size of the code
    architecture: str = "mlp"  # "mlp" or "conv" (images only)
    hidden_dims: tuple[int, ...] = (256, 128)  # MLP widths of the encoder; the decoder mirrors them
    conv_channels: tuple[int, ...] = (32, 64)  # conv encoder channels (stride 2 each); decoder mirrors
    activation: str = "relu"
    loss: str = "mse"  # "mse" on sigmoid outputs, or "bce" on logits (per pixel, nats)
    output: str = "auto"  # "auto" (sigmoid for images, linear for vectors), "sigmoid" or "linear"
    noise: str = "gaussian"  # input corruption: "none", "gaussian" (std noise_level), "masking" (drop prob)
    noise_level: float = 0.1
    sparsity_weight: float = 0.0  # weight of the L1 penalty on the code (sparse autoencoder when > 0)
    batch_size: int = 128
    learning_rate: float = 1e-3  # Adam peak learning rate
    schedule: str = "constant"  # "constant", "cosine", "warmup_cosine"
    decay_steps: int = 0  # cosine length; 0: the run's (genjax.fit), or DEFAULT_STEPS
    warmup_steps: int = 0
    weight_decay: float = 0.0  # AdamW decoupled weight decay when > 0

    def __post_init__(self):
        cfg_lib.require_types(self)
        cfg_lib.require_positive(self, "latent_dim", "batch_size", "learning_rate")
        cfg_lib.require_nonnegative(self, "noise_level", "sparsity_weight", "warmup_steps", "weight_decay",
                                   "decay_steps")
        cfg_lib.require_choice(self, "architecture", nets.ARCHITECTURES)
        cfg_lib.require_choice(self, "activation", nets.ACTIVATIONS)
        cfg_lib.require_choice(self, "loss", losses.RECONSTRUCTION_LOSSES)
        cfg_lib.require_choice(self, "output", losses.OUTPUTS)
        cfg_lib.require_choice(self, "noise", NOISES)
        optim.validate_schedule(self)
        cfg_lib.require_widths(self, "hidden_dims")
        cfg_lib.require_widths(self, "conv_channels")
        if self.loss == "bce" and self.output == "linear":
            raise ConfigError("loss 'bce' needs sigmoid outputs (data in [0, 1]); use loss 'mse' with output 'linear'")
        if self.noise == "masking" and self.noise_level >= 1:
            raise ConfigError(f"masking noise_level is a drop probability in [0, 1), got {self.noise_level}")


@functools.cache
def _networks(cfg: Config, data_shape: tuple[int, ...]) -> tuple[nets.Encoder, nets.Decoder]:
    shared = dict(
        architecture=cfg.architecture,
        hidden_dims=cfg.hidden_dims,
        conv_channels=cfg.conv_channels,
        activation=cfg.activation,
    )
    return nets.Encoder(cfg.latent_dim, **shared), nets.Decoder(data_shape, **shared)


def batch_rows(cfg: Config) -> int:
    """Examples per ``train_step`` batch."""
    return cfg.batch_size


def init(key: jax.Array, cfg: Config, batch: dict) -> State:
    """A fresh state; parameter shapes come from the example ``batch['x']`` ``[N, *data_shape]``."""
    return init_coder(key, cfg, batch, _networks, optim.config_adam(cfg, DEFAULT_STEPS))


def init_coder(key: jax.Array, cfg, batch: dict, networks, tx: optax.GradientTransformation) -> State:
    """A state holding an encoder and a decoder (autoencoder and VAE): checks the batch and the output
    range, then initialises ``networks(cfg, data_shape)`` and the optimizer ``tx``'s state for them."""
    data_shape = nets.check_batch(cfg.architecture, batch)
    x = np.asarray(batch["x"])
    losses.check_output_range(cfg.output, data_shape, x)
    if cfg.loss == "bce" and losses.output_activation(cfg.output, data_shape) != "sigmoid":
        raise ConfigError("loss 'bce' needs data in [0, 1] and sigmoid outputs; vectors train with loss 'mse'")
    encoder, decoder = networks(cfg, data_shape)
    k_enc, k_dec = jax.random.split(key)
    params = {"encoder": encoder.init(k_enc, jnp.asarray(x[:1])),
              "decoder": decoder.init(k_dec, jnp.zeros((1, cfg.latent_dim)))}
    return State(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), extra={},
                 config=cfg, data_shape=data_shape)


def corrupt(x: jax.Array, noise: str, level: float, key: jax.Array) -> jax.Array:
    """Denoising input: ``x + level * N(0, 1)`` (gaussian), ``x * Bernoulli(1 - level)`` (masking), or ``x``."""
    if noise == "gaussian":
        return x + level * jax.random.normal(key, x.shape, x.dtype)
    if noise == "masking":
        return x * jax.random.bernoulli(key, 1.0 - level, x.shape).astype(x.dtype)
    return x


@jax.jit
def train_step(state: State, batch: dict, key: jax.Array) -> tuple[State, dict]:
    """One Adam step on ``batch['x']`` ``[batch_size, *data_shape]``.

    Metrics: ``loss`` (total), ``recon_loss`` (per element; MSE or BCE in nats), ``code_l1``.
    Pure; compiles once per batch shape. Does not donate ``state``: ``genjax.fit`` does.
    """
    cfg = state.config
    nets.check_batch(cfg.architecture, batch, state.data_shape)
    encoder, decoder = _networks(cfg, state.data_shape)
    x = batch["x"]
    x_in = corrupt(x, cfg.noise, cfg.noise_level, key)

    def loss_fn(params):
        code = encoder.apply(params["encoder"], x_in)
        recon = losses.reconstruction(cfg.loss, decoder.apply(params["decoder"], code), x,
                                      losses.output_activation(cfg.output, state.data_shape))
        code_l1 = losses.l1(code)
        return recon + cfg.sparsity_weight * code_l1, {"recon_loss": recon, "code_l1": code_l1}

    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return optim.gradient_step(state, optim.config_adam(cfg, DEFAULT_STEPS), grads), {"loss": loss, **aux}


@jax.jit
def encode(state: State, x: jax.Array) -> jax.Array:
    """Codes ``[N, latent_dim]`` of examples ``[N, *data_shape]`` (no input noise)."""
    encoder, _ = _networks(state.config, state.data_shape)
    return encoder.apply(state.params["encoder"], x)


@jax.jit
def decode(state: State, code: jax.Array) -> jax.Array:
    """Examples ``[N, *data_shape]`` in data space from codes ``[N, latent_dim]``."""
    _, decoder = _networks(state.config, state.data_shape)
    activation = losses.output_activation(state.config.output, state.data_shape)
    return losses.activate(decoder.apply(state.params["decoder"], code), activation)


@jax.jit
def reconstruct(state: State, x: jax.Array) -> jax.Array:
    """``decode(encode(x))``: ``[N, *data_shape]`` in data space."""
    return decode(state, encode(state, x))


@functools.partial(jax.jit, static_argnames="n")
def interpolate(state: State, x_a: jax.Array, x_b: jax.Array, n: int) -> jax.Array:
    """Decoded straight lines between the codes of ``x_a`` and ``x_b`` (each ``[B, *data_shape]``):
    ``[B, n, *data_shape]``, from ``x_a``'s code (first) to ``x_b``'s (last)."""
    return nets.interpolate(lambda x: encode(state, x), lambda z: decode(state, z), x_a, x_b, n)


def evaluate(state: State, dataset: Dataset, full: bool = True) -> dict[str, float]:
    """Test reconstruction MSE and PSNR; with ``full``, also the linear probe and the PCA baseline."""
    return metrics.reconstruction_report(
        lambda x: encode(state, x), lambda x: reconstruct(state, x), dataset, state.config.latent_dim, full
    )


def write_figures(state: State, dataset: Dataset, workdir: Path) -> list[Path]:
    """``reconstructions.png`` (test originals over their reconstructions) and, for images,
    ``interpolations.png`` (a row per pair of test examples)."""
    return write_coder_figures(reconstruct, interpolate, state, dataset, Path(workdir))


def write_coder_figures(reconstruct_fn, interpolate_fn, state: State, dataset: Dataset, workdir: Path) -> list[Path]:
    """The figures every encoder-decoder family writes: reconstructions and latent interpolations."""
    originals = dataset.x_test[:16]
    written = [plots.reconstructions(originals, np.asarray(reconstruct_fn(state, jnp.asarray(originals))),
                                     workdir / "reconstructions.png")]
    if dataset.is_image:
        lines = np.asarray(interpolate_fn(state, jnp.asarray(dataset.x_test[:8]), jnp.asarray(dataset.x_test[8:16]),
                                          10))
        written.append(plots.image_grid(lines.reshape(-1, *lines.shape[2:]), workdir / "interpolations.png", rows=8))
    return written
