"""Shapes of every network for images of several sizes and for vectors."""
import chex
import jax
import jax.numpy as jnp
import pytest

from genjax import nets

CASES = [("mlp", (8, 8, 1)), ("conv", (8, 8, 1)), ("conv", (28, 28, 1)), ("conv", (9, 9, 3)), ("mlp", (2,)),
         ("mlp", (5, 7, 3))]


@pytest.mark.parametrize("architecture,shape", CASES)
def test_encoder_decoder_shapes(architecture, shape):
    kwargs = dict(architecture=architecture, hidden_dims=(16, 8), conv_channels=(4, 8))
    x = jnp.ones((3, *shape))
    encoder, decoder = nets.Encoder(5, **kwargs), nets.Decoder(shape, **kwargs)
    code = encoder.apply(encoder.init(jax.random.key(0), x), x)
    chex.assert_shape(code, (3, 5))
    out = decoder.apply(decoder.init(jax.random.key(1), code), code)
    chex.assert_shape(out, (3, *shape))
    chex.assert_tree_all_finite(out)


def test_mlp_widths_and_activation():
    mlp = nets.MLP((7, 3), activation="tanh")
    params = mlp.init(jax.random.key(0), jnp.ones((2, 4)))
    chex.assert_shape(params["params"]["Dense_0"]["kernel"], (4, 7))
    out = mlp.apply(params, jnp.ones((2, 4)) * 100)
    assert jnp.all(jnp.abs(out) <= 1.0)  # tanh after the last layer too
