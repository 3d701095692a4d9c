"""Sample-quality measures on cases with known answers, the cached feature classifier, TensorBoard events."""
import struct

import numpy as np
import pytest

import genjax
from genjax import autoencoder
from genjax.eval import classifier, measures
from genjax.eval.evaluate import sample_report


def gaussian(n, d=8, shift=0.0, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def test_identical_sets_score_perfectly():
    x = gaussian(300)
    assert measures.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-4)
    assert measures.precision_recall(x, x) == {"precision": 1.0, "recall": 1.0}
    dc = measures.density_coverage(x, x)
    assert dc["coverage"] == 1.0 and dc["density"] >= 1.0


def test_two_samples_of_one_distribution_are_close_to_real_data():
    a, b = gaussian(1000, seed=1), gaussian(1000, seed=2)
    assert abs(measures.kernel_inception_distance(a, b)) < 0.01
    pr, dc = measures.precision_recall(a, b), measures.density_coverage(a, b)
    assert pr["precision"] > 0.7 and pr["recall"] > 0.7 and 0.7 < dc["density"] < 1.3 and dc["coverage"] > 0.9


def test_shifted_gaussians():
    a, b = gaussian(2000, d=4, seed=3), gaussian(2000, d=4, shift=np.array([3.0, 0, 0, 0]), seed=4)
    # identity covariances: the Frechet distance is the squared shift
    assert measures.frechet_distance(a, b) == pytest.approx(9.0, rel=0.05)
    assert measures.kernel_inception_distance(a, b) > 1.0
    scores = []
    for shift in (0.0, 1.5, 3.0):
        b = gaussian(2000, d=4, shift=np.array([shift, 0, 0, 0]), seed=4)
        scores.append({**measures.precision_recall(a, b), **measures.density_coverage(a, b)})
    for key in ("precision", "recall", "density", "coverage"):
        values = [s[key] for s in scores]
        assert values[0] > values[1] > values[2] and values[2] < 0.6 * values[0], (key, values)


def _brute_force(real, fake, k_pr=3, k_dc=5):
    """The definitions written out with whole distance matrices (closed balls)."""
    dist = lambda u, v: np.linalg.norm(u[:, None, :] - v[None, :, :], axis=-1)
    rr, ff, rf = dist(real, real), dist(fake, fake), dist(real, fake)
    r_pr, r_dc = np.sort(rr, 1)[:, k_pr], np.sort(rr, 1)[:, k_dc]
    f_pr = np.sort(ff, 1)[:, k_pr]
    return {"precision": np.mean((rf <= r_pr[:, None]).any(0)), "recall": np.mean((rf <= f_pr[None, :]).any(1)),
            "density": (rf <= r_dc[:, None]).sum(0).mean() / k_dc, "coverage": np.mean((rf <= r_dc[:, None]).any(1))}


def test_blocked_manifold_measures_match_the_definitions(monkeypatch):
    """Distances taken a few rows at a time give what whole matrices give (uneven blocks, unequal set sizes)."""
    real, fake = gaussian(203, d=5, seed=6), gaussian(151, d=5, shift=0.3, seed=7)
    monkeypatch.setattr(measures, "BLOCK_ROWS", 16)
    blocked = measures.manifold_measures(real, fake)
    expected = _brute_force(real, fake)
    assert blocked.keys() == expected.keys()
    for key in expected:
        assert blocked[key] == pytest.approx(expected[key], abs=1e-12), key


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("measure", ["frechet_distance", "kernel_inception_distance", "manifold_measures",
                                     "feature_measures"])
def test_non_finite_samples_are_refused_in_one_line(measure, bad):
    real, fake = gaussian(50, seed=8), gaussian(50, seed=9)
    fake[7, 3] = bad
    with pytest.raises(genjax.NonFiniteError, match=r"^fake|^a|^b|^candidate") as info:
        getattr(measures, measure)(real, fake)
    assert "1 of 50 rows hold NaN or Inf" in str(info.value) and "\n" not in str(info.value)


def test_kid_is_the_unbiased_polynomial_mmd():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 1.0
    k = lambda x, y: (x @ y / 3 + 1) ** 3
    xx = sum(k(a[i], a[j]) for i in range(6) for j in range(6) if i != j) / 30
    yy = sum(k(b[i], b[j]) for i in range(6) for j in range(6) if i != j) / 30
    xy = sum(k(a[i], b[j]) for i in range(6) for j in range(6)) / 36
    # with subsets as large as the sets, every subset is the whole set (in some order)
    assert measures.kernel_inception_distance(a, b, subsets=3) == pytest.approx(xx + yy - 2 * xy)


def test_kid_from_whole_kernel_matrices_equals_kid_from_each_subset(monkeypatch):
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(40, 4)) + 0.3
    whole = measures.kernel_inception_distance(a, b, subsets=20, subset_size=15)
    monkeypatch.setattr(measures, "KID_FULL_KERNEL_ENTRIES", 0)  # kernels of each subset's rows
    assert measures.kernel_inception_distance(a, b, subsets=20, subset_size=15) == pytest.approx(whole, rel=1e-12)


@pytest.fixture(scope="module")
def net(digits, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("GENJAX_CACHE", str(tmp_path_factory.mktemp("cache")))
    classifier._LOADED.clear()
    return classifier.feature_net(digits)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_feature_classifier_reaches_97_percent_and_is_cached(net, digits):
    assert net.test_accuracy >= 0.97
    assert net.features(digits.x_test[:5]).shape == (5, 128)
    cached = list(genjax.data.cache_dir().glob("classifier-digits-*/params.msgpack"))
    assert len(cached) == 1
    classifier._LOADED.clear()
    again = classifier.feature_net(digits)  # from disk: the same weights, no training
    np.testing.assert_array_equal(again.features(digits.x_test[:5]), net.features(digits.x_test[:5]))


def test_a_sample_missing_a_class_is_caught(net, digits):
    without_3 = digits.x_train[digits.y_train != 3]
    report = sample_report(without_3, digits)
    assert report["classes_covered"] == 9
    assert report["recall"] < report["recall_floor"] and report["coverage"] < report["coverage_floor"]
    assert report["frechet"] > report["frechet_floor"]
    for key in measures.FEATURE_MEASURES:
        assert np.isfinite(report[key]) and np.isfinite(report[f"{key}_floor"])


def test_conv_feature_classifier_on_real_fashion_mnist(monkeypatch, tmp_path):
    """28x28 images get the conv classifier without input noise; 100 steps on a slice of the real files already
    separate the classes (0.81 here; the full one, 3,000 steps on all 60,000 images, reaches 92.2%)."""
    from test_data import _require_fashion_mnist

    _require_fashion_mnist()
    monkeypatch.setenv("GENJAX_CACHE", str(tmp_path))
    full = genjax.data.load("fashion_mnist")
    part = genjax.data.Dataset("fashion_slice", full.x_train[:2000], full.y_train[:2000], full.x_test[:1000],
                               full.y_test[:1000])
    small = classifier.feature_net(part, steps=100)
    assert small.state.config.architecture == "conv" and small.state.config.noise_level == 0.0
    assert small.test_accuracy > 0.7
    assert small.features(part.x_test[:3]).shape == (3, 128)


def test_architecture_auto_follows_the_data():
    from genjax.core.config import Context

    def resolved(shape):
        return autoencoder.Config().resolved(Context("d", shape, False, None, 10)).architecture

    assert resolved((28, 28, 1)) == "conv" and resolved((32, 32, 3)) == "conv"
    assert resolved((8, 8, 1)) == "mlp" and resolved((30, 30, 1)) == "mlp" and resolved((784,)) == "mlp"
    assert autoencoder.Config(architecture="mlp").resolved(Context("d", (28, 28, 1), False, None, 10)).architecture \
        == "mlp"


def read_scalars(directory):
    """Tags and steps of the scalar summaries in TensorBoard event files (TFRecord framing)."""
    from tensorboardX.proto import event_pb2

    found = []
    for path in directory.glob("events.out.tfevents.*"):
        raw = path.read_bytes()
        offset = 0
        while offset < len(raw):
            (length,) = struct.unpack("<Q", raw[offset:offset + 8])
            event = event_pb2.Event.FromString(raw[offset + 12:offset + 12 + length])
            offset += 12 + length + 4
            found += [(value.tag, event.step) for value in event.summary.value]
    return found


def test_fit_writes_tensorboard_events_beside_metrics(digits, tiny_config, tmp_path):
    genjax.fit(autoencoder, tiny_config, digits, steps=100, steps_per_call=50, eval_every=100, checkpoint_every=0,
               workdir=tmp_path, progress=False)
    scalars = read_scalars(tmp_path / "tensorboard")
    assert ("train/loss", 50) in scalars and ("train/loss", 100) in scalars and ("eval/test_mse", 100) in scalars
