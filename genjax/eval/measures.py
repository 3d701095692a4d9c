"""Evaluation measures computed on the host from arrays: reconstructions, codes, samples and features.

Reconstruction: MSE per element (pixels in [0, 1]) and PSNR = 10 log10(1 / MSE) in dB.
Linear probe: standardised codes, scikit-learn ``LogisticRegression(max_iter=1000)``, test accuracy.
PCA baseline: PCA with as many components as the code, fitted on the training split, with the same
probe on its components, so every autoencoder run shows whether it beats the linear baseline.
Samples: mode coverage on mixtures, Frechet distance, KID, precision/recall, density/coverage and
class histograms.
"""
from __future__ import annotations

import numpy as np

from genjax.core.data import Dataset
from genjax.core.errors import NonFiniteError


def psnr(mse: float, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB for a mean squared error on data with range ``peak``."""
    return float(10.0 * np.log10(peak**2 / mse)) if mse > 0 else float("inf")


def linear_probe(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of a logistic regression on standardised features ``[N, K]``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probe.fit(z_train.reshape(len(z_train), -1), y_train)
    return float(probe.score(z_test.reshape(len(z_test), -1), y_test))


def fit_pca(dataset: Dataset, n_components: int):
    """scikit-learn ``PCA`` with ``n_components`` (at most the training split's rank bound) fitted on the
    flattened training split; ``random_state=0`` fixes the randomised solver scikit-learn picks for large data."""
    from sklearn.decomposition import PCA

    flat_train = dataset.x_train.reshape(len(dataset.x_train), -1)
    return PCA(min(n_components, *flat_train.shape), random_state=0).fit(flat_train)


def pca_baseline(dataset: Dataset, n_components: int) -> dict[str, float | None]:
    """:func:`pca_scores` of a PCA with ``n_components`` fitted on the training split (:func:`fit_pca`)."""
    return pca_scores(fit_pca(dataset, n_components), dataset)


def pca_scores(pca, dataset: Dataset) -> dict[str, float | None]:
    """A fitted PCA's test MSE per element (reconstruction from its components) and the linear-probe
    accuracy on its components (None when the data set is unlabelled)."""
    flat_train = dataset.x_train.reshape(len(dataset.x_train), -1)
    flat_test = dataset.x_test.reshape(len(dataset.x_test), -1)
    z_train, z_test = pca.transform(flat_train), pca.transform(flat_test)
    test_mse = float(np.mean((pca.inverse_transform(z_test) - flat_test) ** 2))
    probe = None
    if dataset.y_train is not None:
        probe = linear_probe(z_train, dataset.y_train, z_test, dataset.y_test)
    return {"pca_test_mse": test_mse, "pca_probe_accuracy": probe}


# ---------------------------------------------------------------- samples


def kl_to_uniform(counts: np.ndarray) -> float:
    """KL(p || uniform) in nats for the histogram ``counts`` ``[K]`` (empty bins contribute 0)."""
    p = counts / counts.sum()
    nonzero = p > 0
    return float(np.sum(p[nonzero] * np.log(p[nonzero] * len(counts))))


def mode_coverage(samples: np.ndarray, means: np.ndarray, std: float) -> dict[str, float]:
    """PacGAN's measures for a mixture of isotropic Gaussians with centres ``means`` ``[K, D]``.

    A sample ``[N, D]`` is high quality when it lies within 3 ``std`` of its nearest centre; a mode is
    captured when it has at least one high-quality sample; ``reverse_kl`` is KL(p_gen || uniform) over
    the histogram of the high-quality samples' nearest modes (modes with no sample contribute 0).
    Returns ``modes`` (count), ``high_quality`` (fraction in [0, 1]) and ``reverse_kl`` (nats).
    """
    check_finite(samples=samples)
    distances = np.linalg.norm(samples[:, None, :] - means[None, :, :], axis=-1)
    nearest = distances.argmin(axis=1)
    good = distances[np.arange(len(samples)), nearest] <= 3.0 * std
    counts = np.bincount(nearest[good], minlength=len(means)).astype(float)
    reverse_kl = kl_to_uniform(counts) if good.any() else float("inf")
    return {"modes": int((counts > 0).sum()), "high_quality": float(good.mean()), "reverse_kl": reverse_kl}


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to ``a`` and ``b`` ``[N, D]``:
    ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), with 1e-6 added to each covariance's diagonal."""
    from scipy import linalg

    check_finite(a=a, b=b)
    mu_a, mu_b = a.mean(0), b.mean(0)
    offset = 1e-6 * np.eye(a.shape[1])  # keeps the product non-singular (e.g. constant border pixels)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False)) + offset
    cov_b = np.atleast_2d(np.cov(b, rowvar=False)) + offset
    root = linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * root))


def mean_pairwise_distance(x: np.ndarray) -> float:
    """Mean Euclidean distance between distinct rows of ``x`` ``[N, ...]`` (flattened, float64)."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    d2 = np.maximum(np.sum(flat**2, 1)[:, None] + np.sum(flat**2, 1)[None, :] - 2 * flat @ flat.T, 0.0)
    return float(np.sqrt(d2)[np.triu_indices(len(flat), k=1)].mean())


def class_histogram(predicted: np.ndarray, num_classes: int) -> dict[str, float]:
    """``classes_covered`` (classes predicted for at least 1% of samples), ``class_kl`` = KL(p || uniform)
    in nats, and the shares of the most and the least predicted class (``largest_class_fraction``,
    ``smallest_class_fraction``; a class never predicted counts as 0)."""
    counts = np.bincount(predicted, minlength=num_classes)
    return {"classes_covered": int((counts >= 0.01 * len(predicted)).sum()), "class_kl": kl_to_uniform(counts),
            "largest_class_fraction": float(counts.max() / len(predicted)),
            "smallest_class_fraction": float(counts.min() / len(predicted))}


def kernel_inception_distance(a: np.ndarray, b: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> float:
    """KID (Binkowski et al. 2018): the unbiased MMD^2 between features ``a`` ``[N, D]`` and ``b`` ``[M, D]``
    under the polynomial kernel k(x, y) = (x.y / D + 1)^3, averaged over ``subsets`` random subsets of
    ``min(subset_size, N, M)`` rows of each (drawn without replacement, ``seed``). When the three kernel matrices of
    all rows fit in :data:`KID_FULL_KERNEL_ENTRIES` entries they are computed once and every subset's block sums
    come from them by one product with the subsets' 0/1 row indicators (the same estimates, to float rounding)."""
    check_finite(a=a, b=b)
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(a), len(b))
    dim = a.shape[1]
    a, b = a.astype(np.float64), b.astype(np.float64)

    def kernel(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        base = u @ v.T / dim + 1.0
        return base * base * base  # 4x faster than ** 3, which numpy computes with pow

    def off_diagonal_sum(k: np.ndarray) -> float:
        return float(k.sum() - np.trace(k))

    off = size * (size - 1)
    draws = [(rng.choice(len(a), size, replace=False), rng.choice(len(b), size, replace=False))
             for _ in range(subsets)]
    if (len(a) + len(b)) ** 2 <= KID_FULL_KERNEL_ENTRIES:
        in_a, in_b = np.zeros((subsets, len(a))), np.zeros((subsets, len(b)))  # [S, N], [S, M] 0/1 indicators
        for s, (i, j) in enumerate(draws):
            in_a[s, i], in_b[s, j] = 1.0, 1.0
        k_aa, k_bb = kernel(a, a), kernel(b, b)
        xx = np.sum((in_a @ k_aa) * in_a, 1) - in_a @ np.diag(k_aa)
        yy = np.sum((in_b @ k_bb) * in_b, 1) - in_b @ np.diag(k_bb)
        xy = np.sum((in_a @ kernel(a, b)) * in_b, 1)
        return float(np.mean(xx / off + yy / off - 2.0 * xy / size**2))
    estimates = [off_diagonal_sum(kernel(a[i], a[i])) / off + off_diagonal_sum(kernel(b[j], b[j])) / off
                 - 2.0 * kernel(a[i], b[j]).mean() for i, j in draws]
    return float(np.mean(estimates))


KID_FULL_KERNEL_ENTRIES = 9_000_000  # (N + M)^2 float64 kernel entries, at most 72 MB: 3,000 rows in all


BLOCK_ROWS = 2048  # rows per block of a distance matrix: 2048 x 10,000 float64 distances are 164 MB


def _blocks(n: int):
    """Slices of ``range(n)`` of at most :data:`BLOCK_ROWS` rows."""
    return (slice(i, min(i + BLOCK_ROWS, n)) for i in range(0, n, BLOCK_ROWS))


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[len(a), len(b)]`` in float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    d2 = np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


def _knn_radii(x: np.ndarray, ks: tuple[int, ...]) -> np.ndarray:
    """Distance from each row of ``x`` ``[N, D]`` to its k-th nearest other row, for each k in ``ks``:
    ``[N, len(ks)]``."""
    if not all(0 < k < len(x) for k in ks):
        raise ValueError(f"k-nearest-neighbour radii need 0 < k < {len(x)} rows, got k={ks}")
    radii = np.empty((len(x), len(ks)))
    for rows in _blocks(len(x)):
        radii[rows] = np.partition(_distances(x[rows], x), ks, axis=1)[:, ks]  # column 0 is the row itself
    return radii


def manifold_measures(real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019, ``k_pr`` nearest neighbours) and density and
    coverage (Naeem et al. 2020, ``k_dc``) of ``fake`` ``[M, D]`` against ``real`` ``[N, D]``.

    A row's k-NN ball is centred on it with radius the distance to its k-th nearest other row of its own set.
    precision: the fraction of fake rows inside some real ball; recall: the fraction of real rows inside some
    fake ball; density: mean over fake rows of (number of real balls holding it) / ``k_dc`` (about 1 when the
    sets match, above 1 where samples crowd dense regions); coverage: the fraction of real rows whose ball
    holds at least one fake row. Balls are closed: a row exactly on a boundary counts as inside (``<=``, as in
    the precision/recall paper; the density/coverage authors' code uses ``<``, which differs only on exact ties
    such as duplicated rows). Distances are float64 and taken :data:`BLOCK_ROWS` rows at a time, so memory
    grows with the rows, not their square.
    """
    check_finite(real=real, fake=fake)
    real_radii = _knn_radii(real, (k_pr, k_dc))
    fake_radii = _knn_radii(fake, (k_pr,))[:, 0]
    in_real_ball = np.empty(len(fake), bool)
    real_balls_holding = np.empty(len(fake), np.int64)
    in_fake_ball = np.zeros(len(real), bool)
    nearest_fake = np.full(len(real), np.inf)
    for rows in _blocks(len(fake)):
        d = _distances(fake[rows], real)  # [rows, N]
        in_real_ball[rows] = (d <= real_radii[None, :, 0]).any(axis=1)
        real_balls_holding[rows] = (d <= real_radii[None, :, 1]).sum(axis=1)
        in_fake_ball |= (d <= fake_radii[rows, None]).any(axis=0)
        nearest_fake = np.minimum(nearest_fake, d.min(axis=0))
    return {"precision": float(in_real_ball.mean()), "recall": float(in_fake_ball.mean()),
            "density": float(real_balls_holding.mean() / k_dc),
            "coverage": float(np.mean(nearest_fake <= real_radii[:, 1]))}


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict[str, float]:
    """``precision`` and ``recall`` (both in [0, 1]) of :func:`manifold_measures` with ``k`` nearest neighbours."""
    scores = manifold_measures(real, fake, k_pr=k, k_dc=k)
    return {"precision": scores["precision"], "recall": scores["recall"]}


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """``density`` and ``coverage`` (in [0, 1]) of :func:`manifold_measures` with ``k`` nearest neighbours."""
    scores = manifold_measures(real, fake, k_pr=k, k_dc=k)
    return {"density": scores["density"], "coverage": scores["coverage"]}


def check_finite(**arrays: np.ndarray) -> None:
    """Refuse NaN or Inf with one line naming the array (a diverged generator's samples, say)."""
    for name, array in arrays.items():
        if not np.isfinite(array).all():
            bad = int((~np.isfinite(np.reshape(array, (len(array), -1)))).any(axis=1).sum())
            raise NonFiniteError(f"{name}: {bad} of {len(array)} rows hold NaN or Inf; sample measures need finite "
                                 "values (did training diverge?)")


FEATURE_MEASURES = ("frechet", "kid", "precision", "recall", "density", "coverage")


def feature_measures(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Every distribution measure between reference features and candidate features ``[N, D]``."""
    return {"frechet": frechet_distance(candidate, reference), "kid": kernel_inception_distance(candidate, reference),
            **manifold_measures(reference, candidate)}
