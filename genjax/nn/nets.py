"""Flax linen networks shared by every family.

An :class:`Encoder` maps a batch of examples ``[N, *data_shape]`` to features ``[N, out_dim]``
(an autoencoder's code, a VAE's mean and log-variance, a discriminator's score). A
:class:`Decoder` maps ``[N, in_dim]`` to ``[N, *data_shape]`` pre-activation outputs (logits for
images). ``architecture`` is ``"mlp"`` (any data) or ``"conv"`` (images ``[H, W, C]`` only; the
convolutions of :mod:`genjax.nn.conv`, fast on the CPU).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.core.errors import ConfigError
from genjax.nn import conv, draws

ARCHITECTURES = ("mlp", "conv")
CONV_MIN_SIZE = 16  # images at least this high and wide get convolutional networks by default


def default_architecture(data_shape: Sequence[int], halvings: int) -> str:
    """What ``architecture="auto"`` becomes: ``conv`` for images ``[H, W, C]`` of at least
    :data:`CONV_MIN_SIZE` pixels a side that ``halvings`` stride-2 steps halve exactly (H and W divisible by
    ``2**halvings``, such as 28x28 with two), ``mlp`` otherwise (8x8 digits, vectors)."""
    images = len(data_shape) == 3 and min(data_shape[:2]) >= CONV_MIN_SIZE
    return "conv" if images and all(side % 2**halvings == 0 for side in data_shape[:2]) else "mlp"
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "leaky_relu": lambda x: nn.leaky_relu(x, 0.2),
    "elu": nn.elu,
    "gelu": nn.gelu,
    "tanh": jnp.tanh,
}


@functools.partial(jax.jit, static_argnums=0)
def init_variables(module: nn.Module, key: jax.Array, *inputs: Any) -> dict[str, Any]:
    """``module.init(key, *inputs)`` as one compiled program, cached per module and input shapes: the same values
    as eager initialisation, which compiles each initialiser's ops one by one (seconds at every process start)."""
    return module.init(key, *inputs)


class Encoder(nn.Module):
    """``[N, *data_shape] -> [N, out_dim]``: an autoencoder's encoder, or a GAN's discriminator.

    mlp: flatten, ``hidden_dims`` dense layers (maxout over ``maxout_pieces`` linear pieces when > 1),
    linear output. conv: one stride-2 3x3 convolution per entry of ``conv_channels``, flatten, the
    ``hidden_dims`` dense layers (none when empty), linear output. ``spectral_norm`` wraps every layer
    in spectral normalisation (its power-iteration state lives in the ``batch_stats`` collection; pass
    ``update_stats=True`` to advance it). With ``num_classes`` > 0, labels ``y`` ``[N]`` add a
    projection term ``<embed(y), features>``.
    """

    out_dim: int
    architecture: str = "mlp"
    hidden_dims: Sequence[int] = (256, 128)
    conv_channels: Sequence[int] = (32, 64)
    activation: str = "relu"
    spectral_norm: bool = False
    maxout_pieces: int = 1
    num_classes: int = 0

    def _layer(self, layer: nn.Module, h: jax.Array, update_stats: bool) -> jax.Array:
        return nn.SpectralNorm(layer)(h, update_stats=update_stats) if self.spectral_norm else layer(h)

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, update_stats: bool = False) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        if self.architecture == "conv":
            h = x
            for channels in self.conv_channels:
                h = act(self._layer(conv.Conv(channels, (3, 3), strides=(2, 2)), h, update_stats))
            h = h.reshape(h.shape[0], -1)
            for width in self.hidden_dims:
                h = act(self._layer(nn.Dense(width), h, update_stats))
        else:
            h = x.reshape(x.shape[0], -1)
            for width in self.hidden_dims:
                if self.maxout_pieces > 1:
                    h = self._layer(nn.Dense(width * self.maxout_pieces), h, update_stats)
                    h = h.reshape(*h.shape[:-1], width, self.maxout_pieces).max(axis=-1)
                else:
                    h = act(self._layer(nn.Dense(width), h, update_stats))
        out = self._layer(nn.Dense(self.out_dim), h, update_stats)
        if self.num_classes:
            out = out + jnp.sum(nn.Embed(self.num_classes, h.shape[-1])(y) * h, axis=-1, keepdims=True)
        return out


class Decoder(nn.Module):
    """``[N, in_dim] -> [N, *data_shape]`` pre-activation outputs: an autoencoder's decoder, or a generator.

    mlp: ``hidden_dims`` in reverse order, linear output reshaped to ``data_shape``.
    conv (DCGAN-style): ``hidden_dims`` in reverse order (none when empty), dense to a
    ``ceil(H / 2^L) x ceil(W / 2^L)`` map of ``conv_channels[-1]``
    channels, then ``L = len(conv_channels)`` stride-2 transposed convolutions (the last one to ``C``
    channels), cropped to ``H x W``. ``batch_norm`` normalises every hidden layer (running statistics
    in ``batch_stats``; ``train=True`` uses and updates batch statistics). With ``num_classes`` > 0, an
    embedding of the labels ``y`` ``[N]`` is concatenated to the input.
    """

    data_shape: Sequence[int]
    architecture: str = "mlp"
    hidden_dims: Sequence[int] = (256, 128)
    conv_channels: Sequence[int] = (32, 64)
    activation: str = "relu"
    batch_norm: bool = False
    num_classes: int = 0

    @nn.compact
    def __call__(self, z: jax.Array, y: jax.Array | None = None, train: bool = False) -> jax.Array:
        act = ACTIVATIONS[self.activation]

        def hidden(h: jax.Array) -> jax.Array:
            if self.batch_norm:
                h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
            return act(h)

        n = z.shape[0]
        if self.num_classes:
            z = jnp.concatenate([z, nn.Embed(self.num_classes, z.shape[-1])(y)], axis=-1)
        if self.architecture == "conv":
            height, width, channels_out = self.data_shape
            levels = len(self.conv_channels)
            h0, w0 = math.ceil(height / 2**levels), math.ceil(width / 2**levels)
            h = z
            for units in reversed(self.hidden_dims):
                h = hidden(nn.Dense(units)(h))
            h = hidden(nn.Dense(h0 * w0 * self.conv_channels[-1])(h)).reshape(n, h0, w0, self.conv_channels[-1])
            for channels in reversed(self.conv_channels[:-1]):
                h = hidden(conv.ConvTranspose(channels, (3, 3), strides=(2, 2))(h))
            h = conv.ConvTranspose(channels_out, (3, 3), strides=(2, 2))(h)
            return h[:, :height, :width, :]
        h = z
        for width in reversed(self.hidden_dims):
            h = hidden(nn.Dense(width)(h))
        return nn.Dense(math.prod(self.data_shape))(h).reshape(n, *self.data_shape)


SAMPLE_ROWS = 500  # rows a generator decodes at once when sampling: bounds the memory of conv layers' patches


def in_chunks(fn: Callable, *arrays: jax.Array, rows: int | None = None) -> jax.Array:
    """``fn(*arrays)`` computed ``rows`` (default :data:`SAMPLE_ROWS`) rows of the leading axis at a time
    (``lax.map``; the last chunk padded), for row-wise functions such as a generator in inference mode: the
    same values, bounded memory."""
    rows = rows or SAMPLE_ROWS
    n = arrays[0].shape[0]
    if n <= rows:
        return fn(*arrays)
    pad = -n % rows
    chunks = [jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)).reshape(-1, rows, *a.shape[1:]) for a in arrays]
    out = jax.lax.map(lambda parts: fn(*parts), tuple(chunks))
    return out.reshape(-1, *out.shape[2:])[:n]


def interpolate(encode: Callable, decode: Callable, x_a: jax.Array, x_b: jax.Array, n: int) -> jax.Array:
    """Decoded straight lines in code space: ``[B, n, *data_shape]`` from ``encode(x_a)`` to ``encode(x_b)``.

    ``encode`` maps ``[B, *data_shape] -> [B, L]``, ``decode`` maps ``[B * n, L] -> [B * n, *data_shape]``.
    """
    z_a, z_b = encode(x_a), encode(x_b)
    t = jnp.linspace(0.0, 1.0, n)[None, :, None]
    z = z_a[:, None, :] + t * (z_b - z_a)[:, None, :]
    out = decode(z.reshape(-1, z.shape[-1]))
    return out.reshape(z.shape[0], n, *out.shape[1:])


def check_batch(architecture: str, batch: dict, data_shape: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """Validate a batch dict for ``architecture`` (and a state's ``data_shape``); return one example's shape."""
    if not isinstance(batch, dict) or "x" not in batch:
        raise ConfigError("a batch is a dict with key 'x' (and optionally 'y')")
    x = batch["x"]
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ConfigError(f"batch['x'] must hold floats (pixels in [0, 1]), got dtype {x.dtype}; genjax.data.load "
                          "converts uint8 images")
    if "y" in batch and not jnp.issubdtype(jnp.asarray(batch["y"]).dtype, jnp.integer):
        raise ConfigError(f"batch['y'] must hold integer class indices, got dtype {jnp.asarray(batch['y']).dtype}")
    shape = tuple(x.shape[1:])
    if x.ndim not in (2, 4):
        raise ConfigError(f"batch['x'] has shape {x.shape}; expected [N, D] vectors or [N, H, W, C] images")
    if architecture == "conv" and x.ndim != 4:
        raise ConfigError(f"architecture 'conv' needs images [N, H, W, C]; got shape {x.shape} (use 'mlp')")
    if data_shape is not None and shape != data_shape:
        raise ConfigError(f"batch examples have shape {shape}, but the state was built for {data_shape}")
    return shape


class HeadedDecoder(nn.Module):
    """A generator with a shared trunk and ``num_heads`` heads (the DGN's networks).

    ``z`` ``[K, M, in_dim]`` (one batch of codes per head) maps to ``[K, M, *data_shape]``
    pre-activation outputs; with ``head`` (an int or an int32 scalar), ``z`` ``[M, in_dim]`` goes through
    that head alone: ``[M, *data_shape]``. Head layers hold stacked parameters, one slice per head.
    mlp: the trunk (``hidden_dims``) runs on every code, then head ``k`` (``head_dims``, then a linear
    layer to the data) on the codes of batch ``k``. conv (images): the trunk is the conv :class:`Decoder`'s
    without its last layer (``hidden_dims``, dense to a small map, transposed convolutions up to
    ``conv_channels[0]`` channels at half the size); each head is its own last stride-2 transposed
    convolution to the image (kernels ``[K, 3, 3, conv_channels[0], C]``). With ``head_inputs`` the
    trunk takes ``[z, one_hot(head)]`` (``in_dim + num_heads`` inputs) instead of ``z``.
    """

    data_shape: Sequence[int]
    num_heads: int = 1
    hidden_dims: Sequence[int] = (256, 256)
    head_dims: Sequence[int] = (128,)
    activation: str = "relu"
    architecture: str = "mlp"
    conv_channels: Sequence[int] = (32, 64)
    head_inputs: bool = False

    @nn.compact
    def __call__(self, z: jax.Array, head: jax.Array | int | None = None) -> jax.Array:
        if self.head_inputs:
            z = jnp.concatenate([z, self._head_one_hot(z, head)], axis=-1)
        if self.architecture == "conv":
            return self._conv(z, head)
        act = ACTIVATIONS[self.activation]
        h = z
        for width in self.hidden_dims:
            h = act(nn.Dense(width)(h))
        widths = (*self.head_dims, math.prod(self.data_shape))
        for i, width in enumerate(widths):
            kernel, bias = self._head_params(i, (h.shape[-1], width))
            if head is None:
                h = jnp.einsum("kmi,kio->kmo", h, kernel) + bias[:, None, :]
            else:
                h = h @ kernel[head] + bias[head][None, :]
            if i < len(widths) - 1:
                h = act(h)
        return h.reshape(*h.shape[:-1], *self.data_shape)

    def _head_one_hot(self, z: jax.Array, head: jax.Array | int | None) -> jax.Array:
        """The one-hot of each code's head, ``[..., num_heads]`` beside ``z``."""
        if head is None:
            one_hot = jnp.eye(self.num_heads, dtype=z.dtype)[:, None, :]
        else:
            one_hot = jax.nn.one_hot(head, self.num_heads, dtype=z.dtype)
        return jnp.broadcast_to(one_hot, (*z.shape[:-1], self.num_heads))

    def _head_params(self, i: int, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
        kernel = self.param(f"head_kernel_{i}", draws.lecun_normal(batch_axes=1),
                            (self.num_heads, *shape))
        return kernel, self.param(f"head_bias_{i}", nn.initializers.zeros, (self.num_heads, shape[-1]))

    def _conv(self, z: jax.Array, head: jax.Array | int | None) -> jax.Array:
        height, width, channels_out = self.data_shape
        codes = z.reshape(-1, z.shape[-1])
        trunk = Decoder((-(-height // 2), -(-width // 2), self.conv_channels[0]), "conv", self.hidden_dims,
                        self.conv_channels[1:] or self.conv_channels, self.activation, name="trunk")
        act = ACTIVATIONS[self.activation]
        h = act(trunk(codes))  # [K * M, H / 2, W / 2, conv_channels[0]]
        kernel, bias = self._head_params(0, (3, 3, h.shape[-1], channels_out))
        if head is None:
            h = h.reshape(self.num_heads, -1, *h.shape[1:])
            out = jax.vmap(conv.conv_transpose)(h, kernel) + bias[:, None, None, None, :]
        else:
            out = conv.conv_transpose(h, kernel[head]) + bias[head][None, None, None, :]
        return out[..., :height, :width, :]
