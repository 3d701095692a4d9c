"""experiments.train end to end, its exit codes, and the README's commands matching CI."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import train
from experiments.cli import run_main
from genjax.errors import TrainingDiverged

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--steps", "200", "--steps-per-call", "50", "--eval-every", "100", "--checkpoint-every", "100",
        "--set", "hidden_dims=32", "--set", "latent_dim=4", "--no-progress"]


def run(argv):
    """The script's exit code, in this process (argparse's errors raise SystemExit)."""
    try:
        return run_main(lambda: train.main(argv), train.PROG)
    except SystemExit as exc:
        return exc.code


def test_end_to_end_in_a_fresh_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "experiments.train", "--model", "autoencoder", "--dataset", "digits",
                           "--workdir", str(tmp_path / "run"), *TINY], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "metrics.jsonl", "eval.json", "reconstructions.png", "loss_curve.png",
            "checkpoints"} <= files
    report = json.loads((tmp_path / "run" / "eval.json").read_text())
    for key in ("test_mse", "test_psnr", "probe_accuracy", "pca_test_mse", "pca_probe_accuracy", "steps",
                "train_seconds"):
        assert key in report
    assert report["steps"] == 200 and 0 < report["test_mse"] < 0.1
    assert "test_mse" in proc.stdout


@pytest.mark.parametrize("model,extra,figures,keys", [
    ("vae", [], {"reconstructions.png", "samples.png", "interpolations.png"},
     {"test_elbo_nats", "test_mse", "probe_accuracy", "classes_covered"}),
    ("dgn", ["--set", "head_dims=16", "--set", "samples_per_head=16", "--set", "batch_size=16"], {"samples.png"},
     {"head_accuracy", "head_diversity", "data_frechet", "classes_covered"}),
])
def test_each_family_writes_its_run_files(tmp_path, capsys, model, extra, figures, keys):
    argv = ["--model", model, "--workdir", str(tmp_path), *TINY, *extra]
    assert run(argv) == 0
    assert figures | {"config.json", "metrics.jsonl", "eval.json", "loss_curve.png"} <= {p.name for p in tmp_path.iterdir()}
    assert keys <= set(json.loads((tmp_path / "eval.json").read_text()))
    if model == "vae":
        assert "nats per example" in capsys.readouterr().out
    else:
        assert json.loads((tmp_path / "config.json").read_text())["config"]["num_heads"] == 10


def test_resume_extends_a_run(tmp_path, capsys):
    assert run(["--workdir", str(tmp_path), *TINY]) == 0
    assert run(["--workdir", str(tmp_path), "--resume", *TINY[2:], "--steps", "300"]) == 0
    assert json.loads((tmp_path / "eval.json").read_text())["steps"] == 300


@pytest.mark.parametrize("argv,message", [
    (["--model", "gann"], "invalid choice: 'gann' (choose from"),
    (["--set", "latnet_dim=3"], "unknown config field 'latnet_dim'; valid fields:"),
    (["--set", "latent_dim=0"], "latent_dim must be > 0"),
    (["--set", "latent_dim"], "--set expects field=value"),
    (["--set", "loss=huber"], "unknown loss 'huber'; valid choices: mse, bce"),
    (["--steps", "0"], "must be positive"),
    (["--steps", "ten"], "invalid int value: 'ten'"),
    (["--dataset", "/no/such.npz"], "no data set named '/no/such.npz'"),
    (["--set", "batch_size=100000"], "is larger than the 1437 training examples"),
    (["--resume"], "holds no run"),
    (["--resume", "--overwrite"], "exclude each other"),
])
def test_bad_usage_exits_2_with_one_line(tmp_path, capsys, argv, message):
    code = run(["--workdir", str(tmp_path / "w"), "--no-progress", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "w" / "checkpoints").exists()


def test_divergence_exits_3_with_one_line(capsys):
    def diverge():
        raise TrainingDiverged(1234, float("nan"))

    assert run_main(diverge, train.PROG) == 3
    err = capsys.readouterr().err
    assert "loss is nan at step 1234" in err and "last good checkpoint is kept" in err and err.count("\n") == 1


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    test_command = next(b for b in blocks if "pytest" in b).strip()
    assert test_command in ci.splitlines()
