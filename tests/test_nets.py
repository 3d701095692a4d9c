"""Shapes of every network for images of several sizes and for vectors."""
import chex
import jax
import jax.numpy as jnp
import pytest

from genjax.nn import nets

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


def test_discriminator_options_spectral_norm_maxout_projection():
    x, y = jnp.ones((4, 2)), jnp.array([0, 1, 2, 0])
    critic = nets.Encoder(1, hidden_dims=(8,), spectral_norm=True, maxout_pieces=3, num_classes=3)
    variables = critic.init(jax.random.key(0), x, y)
    chex.assert_shape(variables["params"]["Dense_0"]["kernel"], (2, 24))  # 8 units x 3 pieces
    out, updated = critic.apply(variables, x, y, update_stats=True, mutable=["batch_stats"])
    chex.assert_shape(out, (4, 1))
    assert set(updated) == {"batch_stats"}
    assert out[0] != out[1]  # the label enters through the projection term


def test_generator_batch_norm_and_labels():
    gen = nets.Decoder((2,), hidden_dims=(8,), batch_norm=True, num_classes=3)
    z, y = jax.random.normal(jax.random.key(0), (6, 4)), jnp.arange(6) % 3
    variables = gen.init(jax.random.key(1), z, y)
    out, updated = gen.apply(variables, z, y, train=True, mutable=["batch_stats"])
    chex.assert_shape(out, (6, 2))
    assert not jnp.allclose(updated["batch_stats"]["BatchNorm_0"]["mean"], 0.0)  # running stats moved
    chex.assert_shape(gen.apply(variables, z, y), (6, 2))  # inference uses running averages
