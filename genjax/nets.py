"""Flax linen networks shared by every family.

An :class:`Encoder` maps a batch of examples ``[N, *data_shape]`` to features ``[N, out_dim]``
(an autoencoder's code, a VAE's mean and log-variance, a discriminator's score). A
:class:`Decoder` maps ``[N, in_dim]`` to ``[N, *data_shape]`` pre-activation outputs (logits for
images). ``architecture`` is ``"mlp"`` (any data) or ``"conv"`` (images ``[H, W, C]`` only).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.errors import ConfigError

ARCHITECTURES = ("mlp", "conv")
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "leaky_relu": lambda x: nn.leaky_relu(x, 0.2),
    "elu": nn.elu,
    "gelu": nn.gelu,
    "tanh": jnp.tanh,
}


class MLP(nn.Module):
    """Dense layers of ``widths``, the activation after every layer."""

    widths: Sequence[int]
    activation: str = "relu"

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        for width in self.widths:
            h = ACTIVATIONS[self.activation](nn.Dense(width)(h))
        return h


class Encoder(nn.Module):
    """``[N, *data_shape] -> [N, out_dim]``.

    mlp: flatten, ``hidden_dims`` dense layers, linear output.
    conv: one stride-2 3x3 convolution per entry of ``conv_channels``, flatten, linear output.
    """

    out_dim: int
    architecture: str = "mlp"
    hidden_dims: Sequence[int] = (256, 128)
    conv_channels: Sequence[int] = (32, 64)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        if self.architecture == "conv":
            h = x
            for channels in self.conv_channels:
                h = act(nn.Conv(channels, (3, 3), strides=(2, 2), padding="SAME")(h))
            h = h.reshape(h.shape[0], -1)
        else:
            h = MLP(tuple(self.hidden_dims), self.activation)(x.reshape(x.shape[0], -1))
        return nn.Dense(self.out_dim)(h)


class Decoder(nn.Module):
    """``[N, in_dim] -> [N, *data_shape]`` pre-activation outputs.

    mlp: ``hidden_dims`` in reverse order, linear output reshaped to ``data_shape``.
    conv: dense to a ``ceil(H / 2^L) x ceil(W / 2^L)`` map of ``conv_channels[-1]`` channels, then
    ``L = len(conv_channels)`` stride-2 transposed convolutions (the last one to ``C`` channels),
    cropped to ``H x W``.
    """

    data_shape: Sequence[int]
    architecture: str = "mlp"
    hidden_dims: Sequence[int] = (256, 128)
    conv_channels: Sequence[int] = (32, 64)
    activation: str = "relu"

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        n = z.shape[0]
        if self.architecture == "conv":
            height, width, channels_out = self.data_shape
            levels = len(self.conv_channels)
            h0, w0 = math.ceil(height / 2**levels), math.ceil(width / 2**levels)
            h = act(nn.Dense(h0 * w0 * self.conv_channels[-1])(z)).reshape(n, h0, w0, self.conv_channels[-1])
            for channels in reversed(self.conv_channels[:-1]):
                h = act(nn.ConvTranspose(channels, (3, 3), strides=(2, 2), padding="SAME")(h))
            h = nn.ConvTranspose(channels_out, (3, 3), strides=(2, 2), padding="SAME")(h)
            return h[:, :height, :width, :]
        h = MLP(tuple(reversed(self.hidden_dims)), self.activation)(z)
        return nn.Dense(math.prod(self.data_shape))(h).reshape(n, *self.data_shape)


def check_batch(architecture: str, batch: dict, data_shape: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """Validate a batch dict for ``architecture`` (and a state's ``data_shape``); return one example's shape."""
    if not isinstance(batch, dict) or "x" not in batch:
        raise ConfigError("a batch is a dict with key 'x' (and optionally 'y')")
    x = batch["x"]
    shape = tuple(x.shape[1:])
    if x.ndim not in (2, 4):
        raise ConfigError(f"batch['x'] has shape {x.shape}; expected [N, D] vectors or [N, H, W, C] images")
    if architecture == "conv" and x.ndim != 4:
        raise ConfigError(f"architecture 'conv' needs images [N, H, W, C]; got shape {x.shape} (use 'mlp')")
    if data_shape is not None and shape != data_shape:
        raise ConfigError(f"batch examples have shape {shape}, but the state was built for {data_shape}")
    return shape
