"""The DGN family and MMD: the estimator against NumPy, heads against their classes, clear errors."""
import dataclasses
import shutil
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genjax
from genjax import dgn
from genjax.core.errors import ConfigError, RunError
from genjax.nn import losses, nets
from genjax.train import loop, rundir, steps, sweep
from genjax.train.rundir import load_run

TINY = dgn.Config(latent_dim=4, hidden_dims=(32,), head_dims=(16,), num_heads=10, samples_per_head=16,
                  batch_size=16, schedule="constant")


def numpy_mmd2(x, y, bandwidths):
    """Unbiased MMD^2 written out with loops over the pairs (the reference)."""
    def k(a, b):
        return sum(np.exp(-np.sum((a - b) ** 2) / (2 * s**2)) for s in bandwidths)

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd_matches_the_numpy_reference():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(0.5, 1.2, size=(9, 3))
    bandwidths = (0.5, 1.0, 3.0)
    expected = numpy_mmd2(x, y, bandwidths)
    got = losses.mmd2(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), bandwidths)
    assert float(got) == pytest.approx(expected, rel=1e-4, abs=1e-6)
    keep = np.array([1, 0, 1, 1, 0, 0, 1, 1, 0], np.float32)  # the mask selects rows of y
    masked = losses.mmd2(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), bandwidths, jnp.asarray(keep))
    assert float(masked) == pytest.approx(numpy_mmd2(x, y[keep == 1], bandwidths), rel=1e-4, abs=1e-6)


def test_mmd_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(1)
    same = [float(losses.mmd2(jnp.asarray(rng.normal(size=(400, 4)), jnp.float32),
                              jnp.asarray(rng.normal(size=(400, 4)), jnp.float32), (0.5, 1.0, 2.0)))
            for _ in range(5)]
    shifted = float(losses.mmd2(jnp.asarray(rng.normal(size=(400, 4)), jnp.float32),
                                jnp.asarray(rng.normal(0.5, 1.0, size=(400, 4)), jnp.float32), (0.5, 1.0, 2.0)))
    assert abs(np.mean(same)) < 0.005 and max(abs(v) for v in same) < 0.02
    assert shifted > 0.1


@pytest.mark.parametrize("head_inputs", [False, True])
def test_headed_decoder_runs_one_head_or_all(head_inputs):
    module = nets.HeadedDecoder((3,), num_heads=4, hidden_dims=(8,), head_dims=(5,), head_inputs=head_inputs)
    params = module.init(jax.random.key(0), jnp.zeros((4, 1, 2)))
    assert params["params"]["Dense_0"]["kernel"].shape == (2 + 4 * head_inputs, 8)  # codes (and the one-hot)
    z = jax.random.normal(jax.random.key(1), (4, 6, 2))
    every = module.apply(params, z)
    chex.assert_shape(every, (4, 6, 3))
    for k in range(4):
        chex.assert_trees_all_close(module.apply(params, z[k], k), every[k], atol=1e-6)


def test_class_rows_gather_each_heads_examples():
    cfg = dataclasses.replace(TINY, num_heads=3, batch_size=4)
    x = jnp.arange(12.0)[:, None]
    y = jnp.array([0, 1, 2, 1, 1, 0, 2, 2, 2, 2, 2, 0])
    index, masks = dgn._class_index(cfg, y, 12)
    rows = dgn._class_rows(x, index)
    chex.assert_shape(rows, (3, 8, 1))
    for k in range(3):
        kept = np.asarray(rows[k, :, 0])[np.asarray(masks[k]) == 1]
        np.testing.assert_array_equal(kept, np.flatnonzero(np.asarray(y) == k))


@pytest.fixture(scope="module")
def trained(digits):
    return genjax.fit(dgn, TINY, digits, steps=200, steps_per_call=50, eval_every=0, checkpoint_every=0,
                      progress=False)


def test_training_lowers_the_mmd_and_sample_shapes_hold(trained):
    history, state = trained.history, trained.state
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    chex.assert_shape(dgn.sample(state, jax.random.key(0), 5, head=3), (5, 8, 8, 1))
    mixed = dgn.sample(state, jax.random.key(0), 25)
    chex.assert_shape(mixed, (25, 8, 8, 1))
    assert float(mixed.min()) >= 0 and float(mixed.max()) <= 1
    with pytest.raises(ConfigError, match="head 10 does not exist; valid heads: 0..9"):
        dgn.sample(state, jax.random.key(0), 5, head=10)


def test_train_step_is_pure(digits):
    batch = {"x": digits.x_train[:160], "y": digits.y_train[:160]}
    state = dgn.init(jax.random.key(0), TINY, batch)
    a = dgn.train_step(state, batch, jax.random.key(1))
    chex.assert_trees_all_equal(a, dgn.train_step(state, batch, jax.random.key(1)))
    assert set(a[1]) == {"loss", "mmd2_mean", "mmd2_max", "bandwidth"}


def test_head_report_scores_heads_against_their_classes(trained, digits):
    report = genjax.evaluate(dgn, trained.state, digits)
    for key in ("head_accuracy", "head_accuracy_min", "head_diversity", "head_diversity_min", "data_frechet",
                "classes_covered"):
        assert np.isfinite(report[key]), key
    assert 0 <= report["head_accuracy_min"] <= report["head_accuracy"] <= 1
    assert 0.9 <= report["head_accuracy_floor_min"] <= report["head_accuracy_floor"] <= 1
    assert report["head_accuracy_floor"] >= 0.97  # the digits classifier: 98.3% of the test images


def test_one_head_is_a_moment_matching_network_on_unlabelled_data():
    cfg = dgn.Config(latent_dim=2, hidden_dims=(16,), head_dims=(), samples_per_head=8, batch_size=8)
    x = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
    state = dgn.init(jax.random.key(0), cfg, {"x": x[:8]})  # num_heads 0 without labels: one head
    assert state.config.num_heads == 1
    state, metrics = dgn.train_step(state, {"x": x[:8]}, jax.random.key(1))
    assert np.isfinite(float(metrics["loss"]))


def test_several_heads_need_labels(digits):
    with pytest.raises(ConfigError, match="num_heads=10 needs labels"):
        dgn.init(jax.random.key(0), TINY, {"x": digits.x_train[:160]})
    unlabelled = dataclasses.replace(digits, y_train=None, y_test=None, name="unlabelled")
    with pytest.raises(ConfigError, match="needs a labelled data set .* use num_heads=1"):
        TINY.resolved(unlabelled.context(200))
    with pytest.raises(ConfigError, match="num_heads=4 but digits has 10 classes"):
        dataclasses.replace(TINY, num_heads=4).resolved(digits.context(200))
    assert dataclasses.replace(TINY, num_heads=0).resolved(digits.context(200)).num_heads == 10
    with pytest.raises(ConfigError, match="labels reach 9 but num_heads is 5"):
        dgn.init(jax.random.key(0), dataclasses.replace(TINY, num_heads=5),
                 {"x": digits.x_train[:160], "y": digits.y_train[:160]})


@pytest.mark.parametrize("changes,message", [
    ({"samples_per_head": 1}, "samples_per_head must be at least 2"),
    ({"bandwidths": ()}, "bandwidths must be a non-empty list of positive numbers"),
    ({"bandwidths": (0.5, -1.0)}, "bandwidths must be a non-empty list of positive numbers"),
    ({"bandwidth_unit": "mean"}, "unknown bandwidth_unit 'mean'; valid choices: median, absolute"),
    ({"architecture": "resnet"}, "unknown architecture 'resnet'; valid choices: auto, mlp, conv"),
    ({"num_heads": -1}, "num_heads must be >= 0"),
])
def test_bad_dgn_configs(changes, message):
    with pytest.raises(ConfigError, match=message):
        dgn.Config(**changes)


def test_conv_heads_on_16x16_images_learn_their_classes():
    """architecture=auto gives 16x16 images the conv trunk; each head learns its own class (top or bottom half
    bright) and not the other's."""
    rows = np.arange(16)[:, None] * np.ones((1, 16))
    means = np.stack([rows < 8, rows >= 8])[..., None].astype(np.float32) * 0.8 + 0.1
    y = np.arange(400) % 2
    x = np.clip(means[y] + 0.05 * np.random.default_rng(0).standard_normal((400, 16, 16, 1)), 0, 1)
    data = genjax.data.Dataset("halves", x[:320].astype(np.float32), y[:320].astype(np.int32),
                               x[320:].astype(np.float32), y[320:].astype(np.int32))
    cfg = dgn.Config(hidden_dims=(16,), conv_channels=(4, 8), samples_per_head=16, batch_size=16, learning_rate=5e-3)
    result = genjax.fit(dgn, cfg, data, steps=600, steps_per_call=200, eval_every=0, checkpoint_every=0,
                        progress=False)
    assert result.state.config.architecture == "conv"
    assert result.history[-1]["loss"] < 0.2 * result.history[0]["loss"]
    for k in range(2):
        head = np.asarray(dgn.sample(result.state, jax.random.key(k), 64, head=k)).mean(0)
        assert np.abs(head - means[k]).mean() < 0.1 < np.abs(head - means[1 - k]).mean()


# ---------------------------------------------------------------- codes of a trained encoder in the kernel


@pytest.fixture(scope="module")
def encoder_run(digits, tiny_config, tmp_path_factory):
    """A tiny autoencoder's run directory on digits (its newest checkpoint is what a DGN's kernel_encoder loads)."""
    workdir = tmp_path_factory.mktemp("encoder")
    genjax.fit("autoencoder", tiny_config, digits, steps=100, steps_per_call=50, eval_every=0, checkpoint_every=0,
               workdir=workdir, progress=False)
    return workdir


def test_the_code_term_adds_to_the_pixel_loss_and_leaves_the_encoder_frozen(encoder_run, digits):
    batch = {"x": digits.x_train[:160], "y": digits.y_train[:160]}
    encoder = rundir.load_run(encoder_run)[2]
    pixels = dgn.init(jax.random.key(0), TINY, batch)
    with_codes = dgn.init(jax.random.key(0), dataclasses.replace(TINY, kernel_encoder=str(encoder_run)), batch,
                          kernel_encoder=encoder)
    chex.assert_trees_all_equal(with_codes.params, pixels.params)
    key = jax.random.key(1)
    pixel_state, pixel_metrics = dgn.train_step(pixels, batch, key)
    silent, (state, metrics) = (dgn.train_step(with_codes.replace(hyper={"code_weight": np.float32(w)}), batch, key)
                                for w in (0.0, 1.0))  # code_weight as a sweep holds it: one compile for both
    chex.assert_trees_all_close(silent[0].params, pixel_state.params, atol=1e-6)
    chex.assert_trees_all_close(silent[1]["loss"], pixel_metrics["loss"], atol=1e-6)
    assert float(metrics["loss"]) > float(pixel_metrics["loss"]) + 0.01  # the untrained heads' codes differ too
    assert not np.allclose(state.params["generator"]["params"]["Dense_0"]["kernel"],
                           pixel_state.params["generator"]["params"]["Dense_0"]["kernel"])
    chex.assert_trees_all_equal(state.extra["kernel_encoder"].params, encoder.params)
    assert state.extra["kernel_encoder"].opt_state == {}  # the frozen encoder carries no optimizer moments


def test_fit_and_load_run_restore_a_dgn_with_a_kernel_encoder_even_once_that_run_is_gone(encoder_run, digits,
                                                                                         tmp_path, monkeypatch):
    shutil.copytree(encoder_run, tmp_path / "encoder")
    monkeypatch.chdir(tmp_path)
    cfg = dataclasses.replace(TINY, kernel_encoder="encoder")  # relative: config.json records it absolute
    result = genjax.fit(dgn, cfg, digits, steps=100, steps_per_call=50, eval_every=0, checkpoint_every=0,
                        workdir=tmp_path / "dgn", progress=False)
    assert result.state.config.kernel_encoder == str(tmp_path / "encoder")
    description = rundir.read_description(tmp_path / "dgn")
    assert description["config"]["kernel_encoder"] == str(tmp_path / "encoder")
    assert description["runs"]["kernel_encoder"] == rundir.read_description(encoder_run)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    shutil.rmtree(tmp_path / "encoder")  # the checkpoints hold the frozen encoder; config.json its structure
    restored = rundir.load_run(tmp_path / "dgn")[2]
    chex.assert_trees_all_equal(restored.params, result.state.params)
    chex.assert_trees_all_equal(restored.extra, result.state.extra)
    with pytest.raises(RunError, match=f"kernel_encoder={tmp_path / 'encoder'}: .* holds no run"):
        genjax.fit(dgn, result.state.config, digits, steps=150, steps_per_call=50, eval_every=0,
                   workdir=tmp_path / "dgn", resume=True, progress=False)


def test_kernel_encoders_that_cannot_serve_are_refused(encoder_run, digits, tmp_path, tiny_gan_config):
    batch = {"x": digits.x_train[:160], "y": digits.y_train[:160]}
    cfg = dataclasses.replace(TINY, kernel_encoder=str(encoder_run))
    with pytest.raises(ConfigError, match="pass that run's state as init's kernel_encoder"):
        dgn.init(jax.random.key(0), cfg, batch)
    a_gan = genjax.gan.init(jax.random.key(0), tiny_gan_config, batch)
    with pytest.raises(ConfigError, match="holds a gan, which has no encoder; valid: a run of autoencoder, vae"):
        dgn.init(jax.random.key(0), cfg, batch, kernel_encoder=a_gan)
    other_shape = rundir.load_run(encoder_run)[2].replace(data_shape=(4, 4, 1))
    with pytest.raises(ConfigError, match=r"encodes examples of shape \(4, 4, 1\), the data's are \(8, 8, 1\)"):
        dgn.init(jax.random.key(0), cfg, batch, kernel_encoder=other_shape)
    empty = dataclasses.replace(TINY, kernel_encoder=str(tmp_path))
    with pytest.raises(RunError, match=f"kernel_encoder={tmp_path}: {tmp_path} holds no run"):
        genjax.fit(dgn, empty, digits, steps=100, steps_per_call=50, eval_every=0, progress=False)
    with pytest.raises(ConfigError, match="kernel_encoder=auto names no run yet: genjax.fit trains and caches it"):
        dgn.init(jax.random.key(0), dataclasses.replace(TINY, kernel_encoder="auto"), batch)
    with pytest.raises(ConfigError, match="code_weight must be >= 0"):
        dgn.Config(code_weight=-1.0)


def test_a_sweep_of_code_weight_equals_its_separate_runs(encoder_run, digits, monkeypatch):
    cfg = dataclasses.replace(TINY, kernel_encoder=str(encoder_run))
    loaded = []
    monkeypatch.setattr(rundir, "load_run", lambda workdir: loaded.append(workdir) or load_run(workdir))
    result = sweep.fit_sweep(dgn, cfg, digits, steps=60, sweep={"code_weight": [0.5, 2.0]}, seeds=[0],
                             steps_per_call=30, progress=False)
    assert loaded == [str(encoder_run)]  # the runs share one loaded encoder
    monkeypatch.undo()
    run = result.runs[0]  # the run whose weight is not the program's (the largest)
    alone = genjax.fit(dgn, run.config, digits, steps=60, steps_per_call=30, eval_every=0, checkpoint_every=0,
                       progress=False)
    chex.assert_trees_all_close(result.state(0).params, alone.state.params, atol=1e-6, rtol=0)
    assert not np.allclose(result.state(0).params["generator"]["params"]["Dense_0"]["kernel"],
                           result.state(1).params["generator"]["params"]["Dense_0"]["kernel"])


def test_kernel_encoder_auto_trains_one_autoencoder_and_reuses_it(digits, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENJAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(dgn, "KERNEL_ENCODER_STEPS", 100)
    cfg = dataclasses.replace(TINY, kernel_encoder="auto")
    args = dict(steps=50, steps_per_call=50, eval_every=0, checkpoint_every=0, progress=False)
    first = genjax.fit(dgn, cfg, digits, **args)
    encoder_dir = Path(first.state.config.kernel_encoder)
    assert encoder_dir.parent == tmp_path / "cache" and encoder_dir.name.startswith("run-digits-autoencoder-")
    trained = rundir.read_description(encoder_dir)
    assert trained["model"] == "autoencoder" and trained["config"]["latent_dim"] == dgn.KERNEL_CODE_DIM
    assert "genjax: kernel_encoder=auto: training its autoencoder on digits (100 steps, once; cached in" in \
        capsys.readouterr().err
    chex.assert_trees_all_equal(first.state.extra["kernel_encoder"].params, rundir.load_run(encoder_dir)[2].params)
    again = loop.with_trained_runs(dgn, steps.run_config(dgn, cfg, digits, 50), digits, progress=False)
    assert capsys.readouterr().err == ""  # found in the cache: nothing trained, nothing said
    assert again.kernel_encoder == str(encoder_dir)
