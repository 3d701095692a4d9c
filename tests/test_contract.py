"""DESIGN.md's contract, run verbatim for every family: default config, init from a batch, one step, sample."""
import chex
import jax
import pytest

from genjax import families


@pytest.mark.parametrize("name", families.NAMES)
def test_the_design_snippet_runs_for_every_family(name, digits):
    family = families.get(name)
    cfg = family.Config()
    batch = {"x": digits.x_train[: cfg.batch_size]}
    state = family.init(jax.random.key(0), cfg, batch)
    new_state, metrics = family.train_step(state, batch, jax.random.key(1))
    assert int(new_state.step) == 1 and "loss" in metrics
    chex.assert_rank(list(metrics.values()), 0)
    chex.assert_trees_all_equal_structs(state, new_state)
    if hasattr(family, "sample"):
        chex.assert_shape(family.sample(new_state, jax.random.key(2), 16), (16, *digits.data_shape))
    for attr in ("Config", "init", "train_step", "batch_rows", "evaluate", "write_figures", "DEFAULT_STEPS"):
        assert hasattr(family, attr), attr
