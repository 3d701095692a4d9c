"""The contract every family keeps, run for every registered family: the README's snippet, the declared
capabilities, and the registry refusing a family that does not keep it."""
import types

import chex
import jax
import numpy as np
import pytest

from genjax.models import registry
from genjax.models.family import Capabilities


@pytest.mark.parametrize("name", list(registry.BUILTIN))
def test_the_readme_snippet_and_every_declared_capability(name, digits):
    family = registry.get(name)
    cfg = family.Config()
    batch = {"x": digits.x_train[: cfg.batch_size]}
    state = family.init(jax.random.key(0), cfg, batch)
    new_state, metrics = family.train_step(state, batch, jax.random.key(1))
    assert int(new_state.step) == 1 and "loss" in metrics
    chex.assert_rank(list(metrics.values()), 0)
    chex.assert_trees_all_equal_structs(state, new_state)
    assert set(state.opt_state) == set(state.params) == set(state.optimizers)  # one optimizer per parameter set
    caps = family.CAPABILITIES
    x = digits.x_test[:5]
    if caps.samples:
        chex.assert_shape(family.sample(new_state, jax.random.key(2), 16), (16, *digits.data_shape))
    if caps.encodes:
        chex.assert_rank(family.codes(new_state, x), 2)
        chex.assert_shape(family.reconstruct(new_state, x), x.shape)
        chex.assert_shape(family.interpolate(new_state, x[:2], x[2:4], 3), (2, 3, *digits.data_shape))
    if caps.likelihood:
        chex.assert_shape(list(family.elbo_terms(new_state, x, jax.random.key(3)).values()), (5,))
    if caps.heads:
        assert isinstance(family.num_heads(new_state.config), int)
    if caps.labels:
        assert family.needs_labels(new_state.config) is False  # the defaults train without labels


def test_the_registry_refuses_a_family_missing_what_it_declares():
    family = types.SimpleNamespace(NAME="broken", Config=object, DEFAULT_STEPS=1, init=None, train_step=None,
                                   batch_rows=None, CAPABILITIES=Capabilities(samples=True))
    with pytest.raises(TypeError, match="family 'broken' does not keep the contract: missing sample \\(for samples\\)"):
        registry.register(family)
    with pytest.raises(TypeError, match="missing CAPABILITIES"):
        registry.register(types.SimpleNamespace(NAME="bare", Config=object, DEFAULT_STEPS=1, init=None,
                                                train_step=None, batch_rows=None))
    assert "broken" not in registry.names() and "bare" not in registry.names()


@pytest.mark.parametrize(("name", "changes"), [("vae", {}), ("gan", {}), ("dgn", {"num_heads": 10})])
def test_sampling_in_chunks_gives_the_same_samples(name, changes, monkeypatch, digits):
    """Generators decode SAMPLE_ROWS codes at a time (bounded memory for conv layers): the same samples, up to
    the last bit a dot of another batch size may round differently."""
    from genjax.models import registry
    from genjax.nn import nets

    family = registry.get(name)
    state = family.init(jax.random.key(0), family.Config(**changes),
                        {"x": digits.x_train[:256], "y": digits.y_train[:256]})
    whole = np.asarray(family.sample(state, jax.random.key(1), 53))
    monkeypatch.setattr(nets, "SAMPLE_ROWS", 10)
    jax.clear_caches()  # retrace with chunks of 10 rows
    chunked = np.asarray(family.sample(state, jax.random.key(1), 53))
    np.testing.assert_allclose(whole, chunked, rtol=1e-5, atol=1e-6)
    jax.clear_caches()
