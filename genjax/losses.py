"""Pure loss functions, each written once and shared by every family that needs it.

All return float32 scalars averaged over the batch and over elements unless they say otherwise.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

RECONSTRUCTION_LOSSES = ("mse", "bce")


def mse(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """Mean squared error per element: mean((prediction - target)^2)."""
    return jnp.mean(jnp.square(prediction - target))


def bce_with_logits(logits: jax.Array, target: jax.Array) -> jax.Array:
    """Binary cross-entropy per element, in nats, for targets in [0, 1]:
    mean(-t log sigmoid(l) - (1 - t) log(1 - sigmoid(l))), computed stably from the logits."""
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, target))


def reconstruction(loss: str, outputs: jax.Array, target: jax.Array, output_activation: str) -> jax.Array:
    """``mse`` between the activated outputs and the target, or ``bce`` on the logits (sigmoid outputs only)."""
    if loss == "bce":
        return bce_with_logits(outputs, target)
    return mse(activate(outputs, output_activation), target)


def activate(outputs: jax.Array, output_activation: str) -> jax.Array:
    """Decoder outputs to data space: ``sigmoid`` for data in [0, 1], ``linear`` otherwise."""
    return jax.nn.sigmoid(outputs) if output_activation == "sigmoid" else outputs


def l1(code: jax.Array) -> jax.Array:
    """Mean absolute value per element: the sparsity penalty on a code ``[N, latent_dim]``."""
    return jnp.mean(jnp.abs(code))
