"""Every loss against a hand computation of its textbook formula."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.nn import losses

D_REAL = np.array([[2.0], [0.5], [-0.3]], np.float32)
D_FAKE = np.array([[-1.0], [0.25], [1.5]], np.float32)


def sigmoid(logit):
    return 1.0 / (1.0 + np.exp(-logit))


def test_minimax_discriminator_is_binary_cross_entropy():
    expected = -np.mean(np.log(sigmoid(D_REAL))) - np.mean(np.log(1.0 - sigmoid(D_FAKE)))
    np.testing.assert_allclose(losses.minimax_d(D_REAL, D_FAKE), expected, rtol=1e-6)


def test_minimax_generator_is_the_saturating_one():
    np.testing.assert_allclose(losses.minimax_g(D_FAKE), np.mean(np.log(1.0 - sigmoid(D_FAKE))), rtol=1e-6)
    np.testing.assert_allclose(losses.non_saturating_g(D_FAKE), -np.mean(np.log(sigmoid(D_FAKE))), rtol=1e-6)
    # where D confidently rejects the fakes (logit -10), minimax's gradient vanishes, non_saturating's does not
    confident = jnp.full((4, 1), -10.0)
    assert abs(float(jnp.sum(jax.grad(losses.minimax_g)(confident)))) < 1e-3
    assert float(jnp.sum(jax.grad(losses.non_saturating_g)(confident))) < -0.99


def test_wasserstein_hinge_least_squares():
    np.testing.assert_allclose(losses.wasserstein_d(D_REAL, D_FAKE), D_FAKE.mean() - D_REAL.mean(), rtol=1e-6)
    np.testing.assert_allclose(losses.wasserstein_g(D_FAKE), -D_FAKE.mean(), rtol=1e-6)
    hinge = np.mean(np.maximum(0, 1 - D_REAL)) + np.mean(np.maximum(0, 1 + D_FAKE))
    np.testing.assert_allclose(losses.hinge_d(D_REAL, D_FAKE), hinge, rtol=1e-6)
    ls_d = 0.5 * np.mean((D_REAL - 1) ** 2) + 0.5 * np.mean(D_FAKE**2)
    np.testing.assert_allclose(losses.least_squares_d(D_REAL, D_FAKE), ls_d, rtol=1e-6)
    np.testing.assert_allclose(losses.least_squares_g(D_FAKE), 0.5 * np.mean((D_FAKE - 1) ** 2), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(losses.GAN_LOSSES))
def test_every_named_loss_is_registered_with_both_players(name):
    d_loss, g_loss = losses.GAN_LOSSES[name]
    assert np.isfinite(float(d_loss(D_REAL, D_FAKE))) and np.isfinite(float(g_loss(D_FAKE)))


def test_penalties_on_a_linear_critic():
    w = jnp.array([3.0, 4.0])  # grad of x -> w.x is w everywhere: ||grad|| = 5

    def critic(x):
        return (x @ w)[:, None]

    real, fake = jnp.ones((6, 2)), jnp.zeros((6, 2))
    np.testing.assert_allclose(losses.gradient_penalty(critic, real, fake, jax.random.key(0)), (5 - 1) ** 2, rtol=1e-5)
    np.testing.assert_allclose(losses.r1_penalty(critic, real), 0.5 * 25, rtol=1e-6)


def test_gradient_penalty_is_taken_at_interpolates():
    def critic(x):  # C(x) = ||x||^2 / 2: grad = x, so the penalty depends on where it is evaluated
        return 0.5 * jnp.sum(x**2, axis=1, keepdims=True)

    real, fake = jnp.full((4000, 1), 2.0), jnp.zeros((4000, 1))
    # x_hat = 2e, e ~ U[0, 1]: E[(2e - 1)^2] = 1/3
    np.testing.assert_allclose(losses.gradient_penalty(critic, real, fake, jax.random.key(1)), 1 / 3, atol=0.02)


def test_reconstruction_losses():
    x = np.array([[0.0, 1.0, 0.5]], np.float32)
    logits = np.array([[0.3, -0.2, 1.0]], np.float32)
    p = sigmoid(logits)
    np.testing.assert_allclose(losses.reconstruction("mse", logits, x, "sigmoid"), np.mean((p - x) ** 2), rtol=1e-6)
    bce = -np.mean(x * np.log(p) + (1 - x) * np.log(1 - p))
    np.testing.assert_allclose(losses.reconstruction("bce", logits, x, "sigmoid"), bce, rtol=1e-5)
    np.testing.assert_allclose(losses.l1(np.array([[-1.0, 3.0]])), 2.0)


@pytest.mark.parametrize("std", [0.3, 0.05, 0.002])
def test_discretized_gaussian_is_a_probability_over_the_256_levels(std):
    """Summed over the 256 grey levels, each element's probability is 1, wherever the mean lies."""
    grid = jnp.arange(256, dtype=jnp.float32) / 255.0
    for mean in (0.0, 0.37, 0.5, 1.0, 1.2):
        log_p = jax.vmap(lambda v, m=mean: losses.discretized_gaussian_log_prob(jnp.full((1, 1), m),
                                                                                jnp.full((1, 1), v), std))(grid)
        assert float(jnp.sum(jnp.exp(log_p))) == pytest.approx(1.0, abs=1e-4), (std, mean)
