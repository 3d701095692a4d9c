"""Data parallelism over 8 forced CPU devices and many seeds in one program, against the plain runs."""
import chex
import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

import genjax
from genjax import autoencoder, gan
from genjax.core.errors import ConfigError
from genjax.train import mesh

GAN = gan.Config(latent_dim=4, hidden_dims=(16,), d_hidden_dims=(16,), batch_size=32, schedule="constant")


def test_eight_devices_are_there():
    assert jax.device_count() == 8  # tests/conftest.py forces them before JAX starts


@pytest.mark.parametrize("family,cfg", [(autoencoder, autoencoder.Config(hidden_dims=(32,), latent_dim=4,
                                                                           batch_size=32)), (gan, GAN)])
def test_one_sharded_step_equals_the_single_device_step(digits, family, cfg):
    batch = {"x": digits.x_train[:32]}
    state = family.init(jax.random.key(0), cfg, batch)
    single, single_metrics = family.train_step(state, batch, jax.random.key(1))
    data_mesh = mesh.data_mesh(8, 32)
    sharded_batch = jax.device_put(batch, NamedSharding(data_mesh, PartitionSpec("data")))
    assert len(sharded_batch["x"].sharding.device_set) == 8
    sharded, sharded_metrics = family.train_step(mesh.replicate(state, data_mesh), sharded_batch, jax.random.key(1))
    chex.assert_trees_all_close(sharded.params, single.params, atol=1e-6, rtol=1e-5)
    chex.assert_trees_all_close(sharded_metrics, single_metrics, atol=1e-6, rtol=1e-5)


def test_fit_on_eight_devices_matches_one(digits, tiny_config):
    kwargs = dict(steps=60, steps_per_call=30, eval_every=0, checkpoint_every=0, progress=False)
    one = genjax.fit(autoencoder, tiny_config, digits, **kwargs)
    eight = genjax.fit(autoencoder, tiny_config, digits, devices=8, **kwargs)
    assert len(jax.tree.leaves(eight.state.params)[0].sharding.device_set) == 8
    chex.assert_trees_all_close(eight.state.params, one.state.params, atol=1e-5, rtol=1e-4)


def test_bad_device_counts(digits, tiny_config):
    with pytest.raises(ConfigError, match="devices must be between 1 and the 8 available, got 9"):
        mesh.data_mesh(9, 32)
    with pytest.raises(ConfigError, match="a batch of 30 rows does not split evenly over 8 devices"):
        mesh.data_mesh(8, 30)


def test_seeds_in_one_program_equal_separate_runs(digits, tiny_config):
    many = genjax.fit_seeds(autoencoder, tiny_config, digits, steps=60, seeds=[3, 4, 5], steps_per_call=30)
    assert np.shape(many.history[-1]["loss"]) == (3,)
    for i, seed in enumerate(many.seeds):
        alone = genjax.fit(autoencoder, tiny_config, digits, steps=60, seed=seed, steps_per_call=30, eval_every=0,
                           checkpoint_every=0, progress=False)
        chex.assert_trees_all_close(many.state(i).params, alone.state.params, atol=1e-6, rtol=1e-5)
        assert np.isclose(many.history[-1]["loss"][i], alone.history[-1]["loss"], rtol=1e-5)
    a, b = many.state(0).params, many.state(1).params
    assert not np.allclose(jax.tree.leaves(a)[0], jax.tree.leaves(b)[0])  # the seeds differ


def test_seeds_split_over_devices_equal_separate_runs(digits, tiny_config):
    many = genjax.fit_seeds(autoencoder, tiny_config, digits, steps=60, seeds=[3, 4, 5, 6], steps_per_call=30,
                              devices=4)
    leaf = jax.tree.leaves(many.states.params)[0]
    assert leaf.sharding.is_equivalent_to(NamedSharding(mesh.seed_mesh(4, 4), PartitionSpec("seeds")), leaf.ndim)
    alone = genjax.fit(autoencoder, tiny_config, digits, steps=60, seed=5, steps_per_call=30, eval_every=0,
                       checkpoint_every=0, progress=False)
    chex.assert_trees_all_close(many.state(2).params, alone.state.params, atol=1e-6, rtol=1e-5)


def test_gan_seeds_in_one_program(digits):
    many = genjax.fit_seeds(gan, GAN, digits, steps=20, seeds=[0, 1], steps_per_call=20)
    alone = genjax.fit(gan, GAN, digits, steps=20, seed=1, steps_per_call=20, eval_every=0, checkpoint_every=0,
                       progress=False)
    chex.assert_trees_all_close(many.state(1).params, alone.state.params, atol=1e-5, rtol=1e-4)


def test_bad_seed_lists(digits, tiny_config):
    with pytest.raises(ConfigError, match="seeds must be a non-empty list of distinct integers"):
        genjax.fit_seeds(autoencoder, tiny_config, digits, steps=10, seeds=[1, 1])
    with pytest.raises(ConfigError, match="3 seeds do not split evenly over 2 devices"):
        genjax.fit_seeds(autoencoder, tiny_config, digits, steps=10, seeds=[1, 2, 3], devices=2)
    with pytest.raises(ConfigError, match="devices must be between 1 and the 8 available, got 0"):
        mesh.seed_mesh(0, 4)
