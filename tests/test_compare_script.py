"""experiments.compare on a tiny budget: every model trained, a complete report with finite numbers."""
import json
import math

from experiments import compare
from experiments.cli import run_main


def run(argv):
    try:
        return run_main(lambda: compare.main(argv), compare.PROG)
    except SystemExit as exc:
        return exc.code


def test_tiny_comparison_writes_a_consistent_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(compare, "MODELS", {
        "autoencoder": (compare.autoencoder, compare.autoencoder.Config(hidden_dims=(32,))),
        "vae": (compare.vae, compare.vae.Config(hidden_dims=(32,))),
        "dgn": (compare.dgn, compare.dgn.Config(hidden_dims=(32,), head_dims=(16,), samples_per_head=16,
                                                batch_size=16)),
    })
    assert run(["--workdir", str(tmp_path), "--steps", "100", "--no-progress"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["models"]) == {"autoencoder", "vae", "dgn", "PCA", "PCA + Gaussian"}
    for name, row in report["models"].items():
        for key, _, _ in compare.COLUMNS:
            value = row.get(key)
            assert value is None or isinstance(value, str) or math.isfinite(value), (name, key)
    markdown = (tmp_path / "report.md").read_text()
    assert "| real data (train vs test) |" in markdown and "## Which to choose" in markdown
    best = min(("vae", "dgn", "PCA + Gaussian"), key=lambda n: report["models"][n]["frechet"])
    assert f"{best} generates best" in markdown  # the conclusion follows the table
    for line in markdown.splitlines():
        if line.startswith("!["):
            assert (tmp_path / line.split("](")[1].rstrip(")")).exists(), line
    assert (tmp_path / "codes.png").exists() and (tmp_path / "vae" / "interpolations.png").exists()
    assert run(["--workdir", str(tmp_path), "--steps", "100"]) == 2
    assert "already holds report.json" in capsys.readouterr().err


def test_unlabelled_data_is_refused(tmp_path, capsys):
    assert run(["--workdir", str(tmp_path), "--dataset", "ring"]) == 2
    assert "needs a labelled image data set" in capsys.readouterr().err
