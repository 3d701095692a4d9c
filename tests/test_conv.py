"""genjax's convolutions equal flax's to float tolerance, on both lowerings, values and gradients."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.nn import conv


def _pair(ours, theirs, x):
    """Both layers' outputs and gradients, each function jitted (one compile instead of one per op)."""
    params = jax.jit(theirs.init)(jax.random.key(0), x)
    ours_out = jax.jit(ours.apply)(params, x)  # same parameter names and shapes
    theirs_out = jax.jit(theirs.apply)(params, x)
    grad = lambda m: jax.jit(jax.grad(lambda p, v: jnp.sum(jnp.sin(m.apply(p, v))), argnums=(0, 1)))(params, x)
    return ours_out, theirs_out, grad(ours), grad(theirs)


def _close(a, b):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)


SHAPES = [((2, 28, 28, 1), (3, 3), (2, 2)), ((2, 7, 7, 5), (3, 3), (1, 1)), ((3, 8, 6, 2), (5, 5), (2, 2)),
          ((2, 9, 9, 3), (4, 4), (2, 2)), ((1, 5, 5, 2), (3, 3), (3, 3))]


LAYERS = {"conv": (conv.Conv, nn.Conv), "conv_transpose": (conv.ConvTranspose, nn.ConvTranspose)}


@pytest.mark.parametrize("layer", sorted(LAYERS))
@pytest.mark.parametrize("how", ["patches", "xla"])
@pytest.mark.parametrize(("shape", "kernel", "strides"), SHAPES)
def test_layers_equal_flax(layer, how, shape, kernel, strides):
    ours_cls, theirs_cls = LAYERS[layer]
    x = jax.random.normal(jax.random.key(1), shape)
    ours, theirs, g_ours, g_theirs = _pair(ours_cls(4, kernel, strides, how),
                                           theirs_cls(4, kernel, strides, padding="SAME"), x)
    assert ours.shape == theirs.shape
    if layer == "conv_transpose":
        assert ours.shape == (shape[0], shape[1] * strides[0], shape[2] * strides[1], 4)
    _close(ours, theirs)
    _close(g_ours, g_theirs)


def test_max_pool_equals_flax():
    x = jax.random.normal(jax.random.key(3), (2, 8, 6, 3))
    np.testing.assert_array_equal(conv.max_pool(x), nn.max_pool(x, (2, 2), (2, 2)))


def test_auto_lowering_and_bad_choice():
    assert conv.lowering("auto") == ("patches" if jax.default_backend() == "cpu" else "xla")
    with pytest.raises(ValueError, match="valid choices: auto, patches, xla"):
        conv.lowering("fast")


def test_forced_lowering_applies_to_functions_traced_inside_it():
    """A jitted layer traced inside ``forced`` uses that lowering (even if traced before), and the same values."""
    layer = conv.ConvTranspose(4)
    x = jax.random.normal(jax.random.key(0), (2, 5, 5, 3))
    params = layer.init(jax.random.key(1), x)
    apply = jax.jit(layer.apply)

    def uses_xla_conv() -> bool:
        return "conv_general_dilated" in str(apply.trace(params, x).jaxpr)

    auto = apply(params, x)
    for choice in ("xla", "patches"):
        with conv.forced(choice):
            assert conv.lowering() == choice
            assert uses_xla_conv() == (choice == "xla")
            np.testing.assert_allclose(apply(params, x), auto, atol=1e-5)
    assert conv.lowering() == ("patches" if jax.default_backend() == "cpu" else "xla")
    with pytest.raises(ValueError, match="valid choices: patches, xla"), conv.forced("auto"):
        pass
