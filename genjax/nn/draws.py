"""Random draws made as one vector and reshaped: bit for bit what ``jax.random`` draws, compiled much faster.

JAX's threefry gives element i of a draw, counted in row-major order, the same bits whatever the draw's shape, so a
``[a, b, c]`` draw equals the ``[a * b * c]`` draw reshaped (``tests/test_draws.py`` checks every function here
against ``jax.random`` and flax). XLA:CPU compiles the element counters of a draw of three or more dimensions far
more slowly than those of a vector: with jax 0.10.2 on the 2-core CPU, 4.9 s for a 3x3x8x16 truncated normal (a conv
kernel's initialisation) against 0.3 s for the same 1,152 values as a vector, and 3.1 s for a 10x128x16 normal (a
DGN step's codes). Every draw of three or more dimensions in genjax's networks and steps goes through here;
vectors and matrices (a batch of codes, a dense kernel) compile fast and stay ``jax.random``'s and flax's.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

TRUNCATED_NORMAL_STD = 0.87962566103423978  # the std of a standard normal truncated to (-2, 2)


def normal(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
    """``jax.random.normal(key, shape, dtype)``."""
    return jax.random.normal(key, (math.prod(shape),), dtype).reshape(shape)


def uniform(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
    """``jax.random.uniform(key, shape, dtype)``: U[0, 1)."""
    return jax.random.uniform(key, (math.prod(shape),), dtype).reshape(shape)


def bernoulli(key: jax.Array, p: float | jax.Array, shape: Sequence[int]) -> jax.Array:
    """``jax.random.bernoulli(key, p, shape)`` for a scalar ``p``: booleans, True with probability ``p``."""
    return jax.random.bernoulli(key, p, (math.prod(shape),)).reshape(shape)


def lecun_normal(batch_axes: int = 0) -> Callable[..., jax.Array]:
    """flax's ``lecun_normal(batch_axis=range(batch_axes))``: a normal truncated to 2 std with variance 1 / fan-in,
    the fan-in being the product of the dimensions after the batch axes but the last (the output's); same values."""

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        fan_in = math.prod(shape[batch_axes:-1])
        stddev = jnp.sqrt(jnp.array(1.0 / fan_in, dtype)) / jnp.array(TRUNCATED_NORMAL_STD, dtype)
        return jax.random.truncated_normal(key, -2, 2, (math.prod(shape),), dtype).reshape(shape) * stddev

    return init
