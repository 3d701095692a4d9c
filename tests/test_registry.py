"""Adding a family is one file plus one registration: a toy family from the test tree runs through
genjax-train, genjax-compare --models and load_run end to end, with nothing else told about it."""
import json

import jax
import numpy as np
import pytest
import toy_family

import genjax
from genjax.cli import compare, train
from genjax.cli.common import run_main
from genjax.models import registry


@pytest.fixture
def toy():
    registry.register(toy_family)
    yield toy_family
    registry.unregister(toy_family.NAME)


def run(script, argv):
    try:
        return run_main(lambda: script.main(argv), script.PROG)
    except SystemExit as exc:
        return exc.code


def test_a_registered_family_trains_evaluates_and_loads_like_the_others(toy, tmp_path, capsys):
    assert toy.NAME in registry.names()
    assert run(train, ["--model", toy.NAME, "--workdir", str(tmp_path), "--steps", "200", "--steps-per-call", "50",
                       "--eval-every", "100", "--no-progress"]) == 0
    files = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "metrics.jsonl", "eval.json", "samples.png", "loss_curve.png", "checkpoints"} <= files
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["steps"] == 200 and {"frechet", "frechet_floor", "classes_covered"} <= set(report)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["loss"] < records[0]["loss"] and "eval_data_frechet" in records[1]
    family, config, state = genjax.load_run(tmp_path)
    assert family is toy and int(state.step) == 200 and config.decay_steps == 0  # constant schedule: no decay
    assert np.asarray(family.sample(state, jax.random.key(0), 3)).shape == (3, 8, 8, 1)


def test_a_registered_family_joins_a_comparison(toy, tmp_path, capsys):
    argv = ["--workdir", str(tmp_path), "--models", toy.NAME, "autoencoder", "--steps", "100", "--no-progress"]
    assert run(compare, argv) == 0
    result = json.loads((tmp_path / "report.json").read_text())
    assert {toy.NAME, "autoencoder", "PCA", "PCA + Gaussian"} == set(result["models"])
    assert result["models"][toy.NAME]["frechet"] > 0 and result["models"][toy.NAME].get("test_mse") is None
    assert (tmp_path / toy.NAME / "samples.png").exists()


def test_unregistered_families_are_unknown(tmp_path, capsys):
    assert "toy_gaussian" not in registry.names()
    assert run(train, ["--model", "toy_gaussian", "--workdir", str(tmp_path)]) == 2
    assert "invalid choice: 'toy_gaussian'" in capsys.readouterr().err
