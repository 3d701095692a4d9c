"""Shapes of every network for images of several sizes and for vectors."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.nn import nets

CASES = [("mlp", (8, 8, 1)), ("conv", (8, 8, 1)), ("conv", (28, 28, 1)), ("conv", (9, 9, 3)), ("mlp", (2,)),
         ("mlp", (5, 7, 3))]


@pytest.mark.parametrize("architecture,shape", CASES)
def test_encoder_decoder_shapes(architecture, shape):
    kwargs = dict(architecture=architecture, hidden_dims=(16, 8), conv_channels=(4, 8))
    x = jnp.ones((3, *shape))
    encoder, decoder = nets.Encoder(5, **kwargs), nets.Decoder(shape, **kwargs)
    code = jax.jit(encoder.apply)(nets.init_variables(encoder, jax.random.key(0), x), x)
    chex.assert_shape(code, (3, 5))
    out = jax.jit(decoder.apply)(nets.init_variables(decoder, jax.random.key(1), code), code)
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


@pytest.mark.parametrize("shape, head_inputs", [((28, 28, 1), False), ((16, 20, 3), False), ((18, 18, 1), True)])
def test_conv_headed_decoder_heads_share_a_trunk(shape, head_inputs):
    """Every head maps [K, M, L] codes to images; one head alone gives what it gives in the batch of all."""
    net = nets.HeadedDecoder(shape, num_heads=3, hidden_dims=(8,), activation="relu", architecture="conv",
                             conv_channels=(4, 8), head_inputs=head_inputs)
    z = jax.random.normal(jax.random.key(0), (3, 5, 6))
    params = nets.init_variables(net, jax.random.key(1), z)
    apply = jax.jit(net.apply)
    out = apply(params, z)
    chex.assert_shape(out, (3, 5, *shape))
    assert params["params"]["head_kernel_0"].shape == (3, 3, 3, 4, shape[-1])
    for k in range(3):
        np.testing.assert_allclose(apply(params, z[k], jnp.asarray(k, jnp.int32)), out[k], atol=1e-6)
    assert float(jnp.abs(out[0] - out[1]).max()) > 0  # the heads differ
