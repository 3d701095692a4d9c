"""genjax-compare on a tiny budget: every model trained, a complete report with finite numbers."""
import json
import math

import numpy as np
import pytest

from genjax import autoencoder, dgn, vae
from genjax.cli import compare
from genjax.cli.common import run_main
from genjax.eval import report
from genjax.models import presets

TINY = (
    presets.Preset("tiny_ae", "autoencoder", autoencoder.Config(hidden_dims=(32,)), "a small autoencoder"),
    presets.Preset("tiny_vae", "vae", vae.Config(hidden_dims=(32,)), "a small VAE"),
    presets.Preset("tiny_dgn", "dgn",
                   dgn.Config(hidden_dims=(32,), head_dims=(16,), samples_per_head=16, batch_size=16), "a small DGN"),
)


def run(argv):
    try:
        return run_main(lambda: compare.main(argv), compare.PROG)
    except SystemExit as exc:
        return exc.code


@pytest.fixture
def tiny_presets(monkeypatch):
    for preset in TINY:
        monkeypatch.setitem(presets.PRESETS, preset.name, preset)


def test_tiny_comparison_writes_a_consistent_report(tmp_path, capsys, tiny_presets):
    models = ["--models", "tiny_ae", "tiny_vae", "tiny_dgn"]
    assert run(["--workdir", str(tmp_path), "--steps", "100", "--no-progress", *models]) == 0
    result = json.loads((tmp_path / "report.json").read_text())
    labels = {"autoencoder (tiny_ae)", "vae (tiny_vae)", "dgn (tiny_dgn)"}
    assert set(result["models"]) == labels | {"PCA", "PCA + Gaussian"}
    for name, row in result["models"].items():
        for key, _, _ in report.COLUMNS:
            value = row.get(key)
            assert value is None or isinstance(value, str) or math.isfinite(value), (name, key)
    markdown = (tmp_path / "report.md").read_text()
    assert "| real data (train vs test) |" in markdown and "## Which to choose" in markdown
    best = min(("vae (tiny_vae)", "dgn (tiny_dgn)", "PCA + Gaussian"), key=lambda n: result["models"][n]["frechet"])
    assert f"{best} generates best" in markdown  # the conclusion follows the table
    for line in markdown.splitlines():
        if line.startswith("!["):
            assert (tmp_path / line.split("](")[1].rstrip(")")).exists(), line
    assert (tmp_path / "codes.png").exists() and (tmp_path / "vae-tiny_vae" / "interpolations.png").exists()
    capsys.readouterr()

    # a rerun reuses finished models, continues a stopped one, refuses other settings unless --overwrite
    (tmp_path / "vae-tiny_vae" / "eval.json").unlink()  # as if stopped before its evaluation
    assert run(["--workdir", str(tmp_path), "--steps", "100", "--no-progress", *models]) == 0
    out = capsys.readouterr().out
    assert "autoencoder (tiny_ae): reusing" in out and "dgn (tiny_dgn): reusing" in out
    assert "vae (tiny_vae): reusing" not in out
    again = json.loads((tmp_path / "report.json").read_text())
    for name in labels | {"PCA", "PCA + Gaussian"}:
        for key in ("test_mse", "frechet", "recall"):
            assert again["models"][name].get(key) == result["models"][name].get(key), (name, key)
    assert run(["--workdir", str(tmp_path), "--steps", "150", "--no-progress", *models]) == 2
    assert "holds a run of dgn (tiny_dgn) with other settings (config.decay_steps)" in capsys.readouterr().err
    assert json.loads((tmp_path / "report.json").read_text())["steps"] == 100  # refused before training anything
    assert run(["--workdir", str(tmp_path), "--steps", "150", "--no-progress", "--overwrite", "--models",
                "tiny_ae"]) == 0  # one model is enough to show --overwrite retrains
    assert json.loads((tmp_path / "report.json").read_text())["steps"] == 150
    last = (tmp_path / "autoencoder-tiny_ae" / "metrics.jsonl").read_text().splitlines()[-1]
    assert json.loads(last)["step"] == 150  # trained again, to the new budget


def test_print_config_resolves_every_model_without_training(tmp_path, capsys):
    assert run(["--workdir", str(tmp_path / "w"), "--models", "dgn", "wgan_gp", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["dgn"]["config"]["num_heads"] == 10  # one head per class of digits
    assert printed["gan (wgan_gp)"]["config"]["loss"] == "wgan_gp"
    assert printed["gan (wgan_gp)"]["config"]["output"] == "sigmoid"  # "auto" resolved for images
    assert not (tmp_path / "w").exists()


def test_unlabelled_data_is_refused(tmp_path, capsys):
    assert run(["--workdir", str(tmp_path), "--dataset", "ring"]) == 2
    assert "needs a labelled image data set" in capsys.readouterr().err


def test_unknown_model_lists_families_and_presets(tmp_path, capsys):
    assert run(["--workdir", str(tmp_path), "--models", "gann"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'gann'" in err and "'dgn'" in err and "'wgan_gp'" in err


def test_conv_sized_images_get_the_image_comparison(tmp_path, capsys):
    """On images that get conv networks the default models and budget are the image ones (no MLP wgan_gp)."""
    path = tmp_path / "images.npz"
    np.savez(path, x=np.random.default_rng(0).random((40, 16, 16, 1), np.float32), y=np.arange(40) % 4)
    assert run(["--workdir", str(tmp_path / "w"), "--dataset", str(path), "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"autoencoder", "vae (conv_vae)", "gan (dcgan)", "dgn"}
    assert printed["vae (conv_vae)"]["config"]["latent_dim"] == 32
    assert printed["vae (conv_vae)"]["config"]["architecture"] == "conv"
    assert printed["dgn"]["config"]["decay_steps"] == compare.IMAGE_STEPS  # the cosine schedule spans the budget
