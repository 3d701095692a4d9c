"""Pure loss functions, each written once and shared by every family that needs it.

All return float32 scalars averaged over the batch and over elements unless they say otherwise.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax.core.errors import ConfigError
from genjax.nn import draws

RECONSTRUCTION_LOSSES = ("mse", "bce")


def mse(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """Mean squared error per element: mean((prediction - target)^2)."""
    return jnp.mean(jnp.square(prediction - target))


def bce_with_logits(logits: jax.Array, target: jax.Array) -> jax.Array:
    """Binary cross-entropy per element, in nats, for targets in [0, 1]:
    mean(-t log sigmoid(l) - (1 - t) log(1 - sigmoid(l))), computed stably from the logits."""
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, target))


OUTPUTS = ("auto", "sigmoid", "linear")


def default_output(data_shape: tuple[int, ...]) -> str:
    """What ``output="auto"`` becomes: ``sigmoid`` for images ``[H, W, C]`` (in [0, 1]), ``linear`` for
    vectors ``[D]``."""
    return "sigmoid" if len(data_shape) == 3 else "linear"


def check_output_range(output: str, x: np.ndarray) -> None:
    """Raise ConfigError when sigmoid outputs cannot reach data outside [0, 1]."""
    if output == "sigmoid" and (x.min() < 0 or x.max() > 1):
        raise ConfigError(
            f"data lie in [{x.min():.3g}, {x.max():.3g}], outside the [0, 1] of sigmoid outputs; "
            "use --set output=linear"
        )


def reconstruction(loss: str, outputs: jax.Array, target: jax.Array, activation: str) -> jax.Array:
    """``mse`` between the activated outputs and the target, or ``bce`` on the logits (sigmoid outputs only)."""
    if loss == "bce":
        return bce_with_logits(outputs, target)
    return mse(activate(outputs, activation), target)


def activate(outputs: jax.Array, activation: str) -> jax.Array:
    """Network outputs to data space: ``sigmoid`` for data in [0, 1], ``linear`` (identity) otherwise."""
    return jax.nn.sigmoid(outputs) if activation == "sigmoid" else outputs


# ---------------------------------------------------------------- likelihoods and KL, in nats per example
# These sum over an example's elements and average over the batch (the VAE's ELBO terms).


def bernoulli_nll(logits: jax.Array, target: jax.Array) -> jax.Array:
    """-log p(x | logits) under independent Bernoullis, summed over elements, averaged over the batch [nats]."""
    per_element = optax.sigmoid_binary_cross_entropy(logits, target)
    return jnp.mean(jnp.sum(per_element.reshape(per_element.shape[0], -1), axis=-1))


def gaussian_nll(mean: jax.Array, target: jax.Array, std: float) -> jax.Array:
    """-log N(x; mean, std^2 I), summed over elements, averaged over the batch [nats]."""
    sq = jnp.sum(jnp.square(mean - target).reshape(mean.shape[0], -1), axis=-1)
    dims = math.prod(mean.shape[1:])
    return jnp.mean(sq / (2.0 * std**2) + 0.5 * dims * math.log(2.0 * math.pi * std**2))


def discretized_gaussian_log_prob(mean: jax.Array, target: jax.Array, std: float, levels: int = 256) -> jax.Array:
    """log P(x | mean) per example ``[N]`` [nats] for data on the grid {0, 1/(levels-1), ..., 1} (8-bit
    images for ``levels=256``): each element's probability is the mass of N(mean, std^2) over its bin of
    width 1/(levels-1), the end bins reaching to -inf and +inf, so the probabilities of the grid sum to 1
    (a proper likelihood, unlike a density or Bernoulli on grey levels). Summed over elements."""
    half = 0.5 / (levels - 1)
    upper, lower = (target + half - mean) / std, (target - half - mean) / std
    log_cdf_upper, log_survival_lower = jax.scipy.special.log_ndtr(upper), jax.scipy.special.log_ndtr(-lower)
    mass = jax.scipy.special.ndtr(upper) - jax.scipy.special.ndtr(lower)
    # far in a tail the difference underflows: use the density times the bin width there
    log_density = -0.5 * jnp.square((target - mean) / std) - math.log(std * math.sqrt(2.0 * math.pi))
    interior = jnp.where(mass > 1e-6, jnp.log(jnp.maximum(mass, 1e-30)), log_density + math.log(2.0 * half))
    per_element = jnp.where(target < half, log_cdf_upper, jnp.where(target > 1.0 - half, log_survival_lower, interior))
    return jnp.sum(per_element.reshape(per_element.shape[0], -1), axis=-1)


def gaussian_kl(mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """KL(N(mean, diag(exp(log_var))) || N(0, I)) per example ``[N]`` [nats]:
    1/2 sum(exp(log_var) + mean^2 - 1 - log_var) over the latent axis."""
    return 0.5 * jnp.sum(jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var, axis=-1)


def l1(code: jax.Array) -> jax.Array:
    """Mean absolute value per element: the sparsity penalty on a code ``[N, latent_dim]``."""
    return jnp.mean(jnp.abs(code))


# ---------------------------------------------------------------- adversarial losses
# ``d_real`` and ``d_fake`` are discriminator outputs ``[N, 1]``: logits for minimax and
# non_saturating (D = sigmoid(logit)), raw critic scores for wgan_gp, hinge and least_squares.


def minimax_d(d_real: jax.Array, d_fake: jax.Array) -> jax.Array:
    """Original GAN discriminator: -E[log D(x)] - E[log(1 - D(G(z)))] = E[softplus(-l_real)] + E[softplus(l_fake)]."""
    return jnp.mean(jax.nn.softplus(-d_real)) + jnp.mean(jax.nn.softplus(d_fake))


def minimax_g(d_fake: jax.Array) -> jax.Array:
    """Original (saturating) generator: minimise E[log(1 - D(G(z)))] = -E[softplus(l_fake)]."""
    return -jnp.mean(jax.nn.softplus(d_fake))


def non_saturating_g(d_fake: jax.Array) -> jax.Array:
    """Non-saturating generator: minimise -E[log D(G(z))] = E[softplus(-l_fake)]. (Its discriminator is minimax_d.)"""
    return jnp.mean(jax.nn.softplus(-d_fake))


def wasserstein_d(d_real: jax.Array, d_fake: jax.Array) -> jax.Array:
    """WGAN critic: E[C(G(z))] - E[C(x)] (add ``gradient_penalty`` for WGAN-GP)."""
    return jnp.mean(d_fake) - jnp.mean(d_real)


def wasserstein_g(d_fake: jax.Array) -> jax.Array:
    """WGAN generator: -E[C(G(z))]."""
    return -jnp.mean(d_fake)


def hinge_d(d_real: jax.Array, d_fake: jax.Array) -> jax.Array:
    """Hinge discriminator: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]. (Its generator is wasserstein_g.)"""
    return jnp.mean(jax.nn.relu(1.0 - d_real)) + jnp.mean(jax.nn.relu(1.0 + d_fake))


def least_squares_d(d_real: jax.Array, d_fake: jax.Array) -> jax.Array:
    """LSGAN discriminator: 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]."""
    return 0.5 * jnp.mean(jnp.square(d_real - 1.0)) + 0.5 * jnp.mean(jnp.square(d_fake))


def least_squares_g(d_fake: jax.Array) -> jax.Array:
    """LSGAN generator: 1/2 E[(D(G(z)) - 1)^2]."""
    return 0.5 * jnp.mean(jnp.square(d_fake - 1.0))


GAN_LOSSES = {
    "minimax": (minimax_d, minimax_g),
    "non_saturating": (minimax_d, non_saturating_g),
    "wgan_gp": (wasserstein_d, wasserstein_g),
    "hinge": (hinge_d, wasserstein_g),
    "least_squares": (least_squares_d, least_squares_g),
}


def _input_gradients(critic, x: jax.Array) -> jax.Array:
    """d critic(x_i) / d x_i for every example, flattened to ``[N, prod(shape)]``."""
    grads = jax.grad(lambda inputs: jnp.sum(critic(inputs)))(x)
    return grads.reshape(grads.shape[0], -1)


def gradient_penalty(critic, real: jax.Array, fake: jax.Array, key: jax.Array) -> jax.Array:
    """WGAN-GP: E[(||grad C(x_hat)||_2 - 1)^2] at x_hat = e x + (1 - e) G(z), e ~ U[0, 1] per example.

    ``critic`` maps ``[N, *shape] -> [N, 1]`` and must treat examples independently (no BatchNorm).
    """
    eps = draws.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    norms = jnp.linalg.norm(_input_gradients(critic, eps * real + (1.0 - eps) * fake) + 1e-12, axis=-1)
    return jnp.mean(jnp.square(norms - 1.0))


def r1_penalty(critic, real: jax.Array) -> jax.Array:
    """R1 (Mescheder et al. 2018): 1/2 E[||grad D(x)||_2^2] on real data (scaled by gamma in the step)."""
    return 0.5 * jnp.mean(jnp.sum(jnp.square(_input_gradients(critic, real)), axis=-1))


# ---------------------------------------------------------------- kernel moment matching


def squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """Pairwise squared Euclidean distances ``[N, M]`` between rows of ``a`` ``[N, D]`` and ``b`` ``[M, D]``."""
    d2 = jnp.sum(jnp.square(a), -1)[:, None] + jnp.sum(jnp.square(b), -1)[None, :] - 2.0 * a @ b.T
    return jnp.maximum(d2, 0.0)


def gaussian_kernels(d2: jax.Array, bandwidths) -> jax.Array:
    """Mixture of Gaussian kernels on squared distances: sum over s of exp(-d2 / (2 s^2))."""
    return sum(jnp.exp(-d2 / (2.0 * s**2)) for s in bandwidths)


def mmd2(x: jax.Array, y: jax.Array, bandwidths, y_mask: jax.Array | None = None) -> jax.Array:
    """Unbiased MMD^2 (Gretton et al. 2012) between samples ``x`` ``[M, D]`` and ``y`` ``[N, D]``
    under :func:`gaussian_kernels` with ``bandwidths`` (in data units):

        sum_{i != j} k(x_i, x_j) / (M (M - 1)) + sum_{i != j} k(y_i, y_j) / (N (N - 1)) - 2 sum k(x_i, y_j) / (M N)

    ``y_mask`` ``[N]`` (0/1) keeps only some rows of ``y`` (N becomes their count): the DGN compares each
    head with the examples of its class inside one shared batch. Needs M >= 2 and at least 2 kept rows.
    """
    m = x.shape[0]
    mask = jnp.ones(y.shape[0], x.dtype) if y_mask is None else y_mask.astype(x.dtype)
    n = jnp.sum(mask)
    k_xx = gaussian_kernels(squared_distances(x, x), bandwidths)
    k_yy = gaussian_kernels(squared_distances(y, y), bandwidths)
    k_xy = gaussian_kernels(squared_distances(x, y), bandwidths)
    xx = (jnp.sum(k_xx) - jnp.trace(k_xx)) / (m * (m - 1))
    yy = (mask @ k_yy @ mask - jnp.sum(mask * jnp.diagonal(k_yy))) / jnp.maximum(n * (n - 1), 1.0)
    xy = jnp.sum(k_xy @ mask) / (m * jnp.maximum(n, 1.0))
    return xx + yy - 2.0 * xy
