"""The GAN family: one jitted step holding both updates, EMA, packing, conditioning, stabilisers."""
import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import genjax
from genjax import gan
from genjax.core.errors import ConfigError
from genjax.eval import measures


@pytest.fixture(scope="module")
def ring():
    return genjax.data.load("ring")


def _state(cfg, x, y=None):
    batch = {"x": x[: gan.batch_rows(cfg)]}
    if y is not None:
        batch["y"] = y[: gan.batch_rows(cfg)]
    return gan.init(jax.random.key(0), cfg, batch), batch


def _adam_count(opt_state):
    adam = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
            if isinstance(s, optax.ScaleByAdamState)]
    return int(adam[0].count)


def test_both_updates_and_n_critic_happen_in_one_compiled_call(ring, tiny_gan_config):
    cfg = dataclasses.replace(tiny_gan_config, n_critic=3)
    state, batch = _state(cfg, ring.x_train)
    chex.assert_shape(batch["x"], (48, 2))
    before = gan.train_step._cache_size()
    new, metrics_ = gan.train_step(state, batch, jax.random.key(1))
    new, _ = gan.train_step(new, batch, jax.random.key(2))
    assert gan.train_step._cache_size() == before + 1  # one executable for both calls
    assert _adam_count(new.opt_state["discriminator"]) == 6 and _adam_count(new.opt_state["generator"]) == 2
    for net in ("generator", "discriminator"):
        changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.params[net], new.params[net])
        assert all(jax.tree.leaves(changed)), net
    assert set(metrics_) == {"d_loss", "g_loss", "loss", "d_real", "d_fake"}


def test_train_step_is_pure_and_keyed(ring, tiny_gan_config):
    state, batch = _state(tiny_gan_config, ring.x_train)
    a = gan.train_step(state, batch, jax.random.key(5))
    chex.assert_trees_all_equal(a, gan.train_step(state, batch, jax.random.key(5)))
    assert gan.train_step(state, batch, jax.random.key(6))[1]["g_loss"] != a[1]["g_loss"]


def test_ema_follows_the_generator(ring, tiny_gan_config):
    state, batch = _state(dataclasses.replace(tiny_gan_config, ema_decay=0.9), ring.x_train)
    new, _ = gan.train_step(state, batch, jax.random.key(0))
    expected = jax.tree.map(lambda e, p: 0.9 * e + 0.1 * p, state.extra["g_ema"], new.params["generator"])
    chex.assert_trees_all_close(new.extra["g_ema"], expected, rtol=1e-6)
    state0, _ = _state(dataclasses.replace(tiny_gan_config, ema_decay=0.0), ring.x_train)
    new0, _ = gan.train_step(state0, batch, jax.random.key(0))
    chex.assert_trees_all_close(new0.extra["g_ema"], new0.params["generator"])
    key = jax.random.key(3)
    chex.assert_trees_all_close(gan.sample(new0, key, 8), gan.sample(new0, key, 8, use_ema=False))


def test_batch_norm_and_spectral_norm_statistics_travel_in_the_state(ring, tiny_gan_config):
    cfg = dataclasses.replace(tiny_gan_config, batch_norm=True, spectral_norm=True)
    state, batch = _state(cfg, ring.x_train)
    new, _ = gan.train_step(state, batch, jax.random.key(0))
    for stats in ("g_stats", "d_stats"):
        assert jax.tree.leaves(state.extra[stats])
        moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.extra[stats], new.extra[stats])
        assert any(jax.tree.leaves(moved)), stats


def test_packing_groups_samples():
    x = jnp.arange(12.0).reshape(6, 2)
    chex.assert_trees_all_equal(gan.pack(x, 2), jnp.array([[0.0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]))
    images = jnp.arange(2 * 3 * 3 * 1.0).reshape(2, 3, 3, 1)
    packed = gan.pack(images, 2)
    chex.assert_shape(packed, (1, 3, 3, 2))
    chex.assert_trees_all_equal(packed[0, ..., 1], images[1, ..., 0])


@pytest.mark.parametrize("loss", ["minimax", "non_saturating", "wgan_gp", "hinge", "least_squares"])
def test_every_loss_trains_a_finite_step(ring, loss, tiny_gan_config):
    cfg = dataclasses.replace(tiny_gan_config, loss=loss, pack=2, r1_weight=0.5 if loss == "hinge" else 0.0)
    state, batch = _state(cfg, ring.x_train)
    for i in range(3):
        state, metrics_ = gan.train_step(state, batch, jax.random.key(i))
    chex.assert_tree_all_finite(metrics_)


def test_conditional_samples_and_conv_on_digits(digits, tiny_gan_config):
    cfg = dataclasses.replace(tiny_gan_config, architecture="conv", conv_channels=(8, 16), num_classes=10,
                              spectral_norm=True, pack=1)
    state, batch = _state(cfg, digits.x_train, digits.y_train)
    state, _ = gan.train_step(state, batch, jax.random.key(0))
    images = gan.sample(state, jax.random.key(1), 20, y=jnp.arange(20) % 10)
    chex.assert_shape(images, (20, 8, 8, 1))
    assert jnp.all((images >= 0) & (images <= 1))  # "auto" output is a sigmoid for images
    with pytest.raises(ConfigError, match="needs labels"):
        gan.init(jax.random.key(0), cfg, {"x": digits.x_train[:16]})
    # a conditional GAN's classes are its heads: head=k samples class k
    chex.assert_trees_all_equal(gan.sample(state, jax.random.key(2), 4, head=3),
                                gan.sample(state, jax.random.key(2), 4, y=jnp.full((4,), 3)))
    assert gan.num_heads(state.config) == 10 and gan.needs_labels(state.config)
    with pytest.raises(ConfigError, match="class 10 does not exist; valid classes: 0..9"):
        gan.sample(state, jax.random.key(2), 4, head=10)


def test_gan_learns_the_ring_quickly(ring, tiny_gan_config):
    cfg = dataclasses.replace(tiny_gan_config, hidden_dims=(64, 64), d_hidden_dims=(64, 64), g_learning_rate=1e-3,
                              d_learning_rate=1e-3, ema_decay=0.9, batch_size=64)
    start = gan.init(jax.random.key(0), cfg, {"x": ring.x_train[:64]})
    before = measures.frechet_distance(np.asarray(gan.sample(start, jax.random.key(1), 2000)), ring.x_test)
    result = genjax.fit(gan, cfg, ring, steps=1500, progress=False, steps_per_call=500, eval_every=0,
                        checkpoint_every=0)
    after = measures.frechet_distance(np.asarray(gan.sample(result.state, jax.random.key(1), 2000)), ring.x_test)
    assert after < 0.1 * before, (before, after)


@pytest.mark.parametrize("changes,message", [
    ({"loss": "wgan"}, "unknown loss 'wgan'; valid choices: minimax, non_saturating, wgan_gp, hinge, least_squares"),
    ({"pack": 3}, "batch_size 256 must be a multiple of pack 3"),
    ({"pack": 2, "num_classes": 10}, "set pack=1 for a class-conditional GAN"),
    ({"beta1": 1.0}, "beta1 must lie in [0, 1)"),
    ({"n_critic": 0}, "n_critic must be > 0"),
    ({"schedule": "warmup_cosine", "warmup_steps": 10, "decay_steps": 10}, "warmup_steps (10) must be below"),
    ({"schedule": "step"}, "unknown schedule 'step'; valid choices: constant, cosine, warmup_cosine"),
    ({"architecture": "conv", "maxout_pieces": 5}, "maxout_pieces > 1 needs architecture 'mlp'"),
])
def test_bad_gan_configs(changes, message):
    with pytest.raises(ConfigError) as info:
        gan.Config(**changes)
    assert message in str(info.value)


def test_cosine_schedule_spans_the_run(ring, tmp_path, tiny_gan_config):
    cfg = dataclasses.replace(tiny_gan_config, schedule="cosine", ema_decay=0.0)
    result = genjax.fit(gan, cfg, ring, steps=200, workdir=tmp_path, progress=False, steps_per_call=100,
                        eval_every=0, checkpoint_every=0)
    _, saved, state = genjax.load_run(tmp_path)
    assert saved.decay_steps == 200 and int(state.step) == 200
    lr_at = optax.cosine_decay_schedule(cfg.g_learning_rate, 200)
    assert float(lr_at(200)) == 0.0 and float(lr_at(100)) == pytest.approx(cfg.g_learning_rate / 2)
    chex.assert_trees_all_equal(state.params, result.state.params)


def test_wrong_batch_size_is_refused(ring, tiny_gan_config):
    state, _ = _state(dataclasses.replace(tiny_gan_config, n_critic=2), ring.x_train)
    with pytest.raises(ConfigError, match="n_critic \\* batch_size = 32 examples, got 16"):
        gan.train_step(state, {"x": ring.x_train[:16]}, jax.random.key(0))


def test_adam_count_helper_sees_optax_state():
    tx = optax.adam(1e-3)
    assert _adam_count(tx.init({"w": jnp.zeros(2)})) == 0
