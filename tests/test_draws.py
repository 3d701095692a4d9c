"""genjax.nn.draws draws bit for bit what jax.random and flax's initializer draw, for shapes of 1 to 5 dimensions,
inside jit as the steps and inits use them."""
import functools

import flax.linen as nn
import jax
import numpy as np
import pytest

from genjax.nn import draws


def _three_draws(normal, uniform, bernoulli, key, shape):
    return normal(key, shape), uniform(key, shape), bernoulli(key, 0.3, shape)


@pytest.mark.parametrize("shape", [(7,), (5, 3), (4, 6, 2), (2, 5, 5, 1), (3, 3, 2, 2, 2)])
def test_draws_equal_jax_random(shape):
    ours = functools.partial(_three_draws, draws.normal, draws.uniform, draws.bernoulli)
    theirs = functools.partial(_three_draws, jax.random.normal, jax.random.uniform, jax.random.bernoulli)
    key = jax.random.key(3)
    for a, b in zip(jax.jit(ours, static_argnums=1)(key, shape), jax.jit(theirs, static_argnums=1)(key, shape)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("shape", "batch_axes"), [((5, 3), 0), ((3, 3, 2, 4), 0), ((4, 6, 3), 1),
                                                   ((2, 3, 3, 2, 2), 1)])
def test_lecun_normal_equals_flax(shape, batch_axes):
    ours, theirs = draws.lecun_normal(batch_axes), nn.initializers.lecun_normal(batch_axis=tuple(range(batch_axes)))
    key = jax.random.key(4)
    np.testing.assert_array_equal(jax.jit(ours, static_argnums=1)(key, shape),
                                  jax.jit(theirs, static_argnums=1)(key, shape))
