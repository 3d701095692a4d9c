"""Evaluation measures on cases with known answers."""
import numpy as np
import pytest

from genjax import data
from genjax.eval import measures


@pytest.mark.parametrize("name,n_modes", [("ring", 8), ("grid", 25)])
def test_mode_coverage_of_true_samples(name, n_modes):
    ds = data.load(name)
    report = measures.mode_coverage(ds.x_train, ds.modes, ds.mode_std)
    assert report["modes"] == n_modes
    assert abs(report["high_quality"] - (1 - np.exp(-4.5))) < 0.002  # P(|N(0, s^2 I_2)| <= 3s) = 98.89%
    assert report["reverse_kl"] < 0.002


def test_mode_coverage_of_a_collapsed_sampler():
    ds = data.load("ring")
    half = ds.x_train[ds.y_train < 4]
    report = measures.mode_coverage(half, ds.modes, ds.mode_std)
    assert report["modes"] == 4 and abs(report["reverse_kl"] - np.log(2)) < 0.01
    between = (ds.modes[:1] + ds.modes[1:2]) / 2 + np.zeros((100, 2))
    far = measures.mode_coverage(between, ds.modes, ds.mode_std)
    assert far["modes"] == 0 and far["high_quality"] == 0.0 and far["reverse_kl"] == float("inf")


def test_frechet_distance_known_answers():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 3))
    assert measures.frechet_distance(a, a) < 1e-6
    shifted = measures.frechet_distance(a, a + np.array([2.0, 0.0, 0.0]))
    assert abs(shifted - 4.0) < 0.05  # ||mu_a - mu_b||^2 with equal covariances
    scaled = measures.frechet_distance(a, 2.0 * rng.standard_normal((20000, 3)))
    assert abs(scaled - 3.0) < 0.1  # tr(I + 4I - 2 * 2I) = 3


def test_class_histogram():
    uniform = measures.class_histogram(np.arange(1000) % 10, 10)
    assert uniform["classes_covered"] == 10 and uniform["class_kl"] < 1e-9
    missing = measures.class_histogram(np.arange(1000) % 5, 10)
    assert missing["classes_covered"] == 5 and abs(missing["class_kl"] - np.log(2)) < 1e-9
    assert missing["largest_class_fraction"] == 0.2 and missing["smallest_class_fraction"] == 0.0
    skewed = measures.class_histogram(np.r_[np.zeros(82, int), np.arange(9) + 1, np.arange(9) + 1], 10)
    assert skewed["largest_class_fraction"] == 0.82 and skewed["smallest_class_fraction"] == 0.02


def test_psnr_and_probe(digits):
    assert measures.psnr(0.01) == pytest.approx(20.0)
    pca = measures.pca_baseline(digits, 8)
    assert pca["pca_test_mse"] == pytest.approx(0.0246, abs=2e-4) and pca["pca_probe_accuracy"] > 0.89
    assert measures.pca_scores(measures.fit_pca(digits, 8), digits) == pca  # what compare computes from its fitted PCA


def test_pca_is_reproducible_where_scikit_learn_picks_its_randomised_solver():
    x = np.random.default_rng(0).random((600, 600), dtype=np.float32)  # > 500 wide: the randomised solver
    wide = data.Dataset("wide", x[:500], None, x[500:], None)
    first, second = measures.fit_pca(wide, 8), measures.fit_pca(wide, 8)  # without a seed, these two differ
    np.testing.assert_array_equal(first.components_, second.components_)
