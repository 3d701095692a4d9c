"""experiments.train end to end, its exit codes, and the README's commands matching CI."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from genjax.cli import train
from genjax.cli.common import run_main
from genjax.core.errors import ConfigError, NonFiniteError, TrainingDiverged
from genjax.train import rundir

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
    written = {p.name for p in tmp_path.iterdir()}
    assert figures | {"config.json", "metrics.jsonl", "eval.json", "loss_curve.png"} <= written
    assert keys <= set(json.loads((tmp_path / "eval.json").read_text()))
    if model == "vae":
        assert "nats per example" in capsys.readouterr().out
    else:
        assert json.loads((tmp_path / "config.json").read_text())["config"]["num_heads"] == 10


def test_resume_extends_a_run(tmp_path, capsys):
    assert run(["--workdir", str(tmp_path), *TINY, "--loop-strategy", "dispatch"]) == 0
    capsys.readouterr()
    assert run(["--workdir", str(tmp_path), "--resume", *TINY[2:], "--steps", "300"]) == 0  # the run's strategy
    assert json.loads((tmp_path / "eval.json").read_text())["steps"] == 300
    assert "steps/s, loop dispatch)" in capsys.readouterr().out


@pytest.mark.parametrize("failure", [MemoryError("Unable to allocate 26.8 GiB"),
                                     NonFiniteError("fake: 3 of 2500 rows hold NaN or Inf")])
def test_a_failing_evaluation_keeps_the_training(tmp_path, capsys, monkeypatch, failure):
    """Figures and the loss curve come first; the failure is one line, exit 2; --resume evaluates again."""
    from genjax.eval import evaluate

    real = evaluate.evaluate

    def broken(family, state, dataset, full=True):
        if full:  # the final evaluation; the light ones during training still run
            raise failure
        return real(family, state, dataset, full)

    monkeypatch.setattr(evaluate, "evaluate", broken)
    assert run(["--workdir", str(tmp_path), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "evaluation failed after training" in err and str(failure) in err
    written = {p.name for p in tmp_path.iterdir()}
    assert {"loss_curve.png", "reconstructions.png", "checkpoints", "config.json"} <= written
    assert not (tmp_path / "eval.json").exists()
    monkeypatch.setattr(evaluate, "evaluate", real)
    assert run(["--workdir", str(tmp_path), "--resume", *TINY]) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["steps"] == 200 and report["eval_seconds"] >= 0
    history = rundir.read_metrics(tmp_path)  # the training time and rate are the first session's, not ~0
    assert report["train_seconds"] >= round(history[-1]["time_s"], 3) > 0
    assert report["steps_per_second"] == round(float(np.median([r["steps_per_sec"] for r in history])), 1)


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
    (["--loop-strategy", "rolled"], "invalid choice: 'rolled' (choose from 'auto', 'scan', 'unrolled', 'dispatch')"),
])
def test_bad_usage_exits_2_with_one_line(tmp_path, capsys, argv, message):
    code = run(["--workdir", str(tmp_path / "w"), "--no-progress", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "w" / "checkpoints").exists()


def test_divergence_exits_3_with_one_line(capsys):
    def diverge():
        error = TrainingDiverged(1234, float("nan"))
        error.saved, error.checkpoint = True, 1000
        raise error

    assert run_main(diverge, train.PROG) == 3
    err = capsys.readouterr().err
    assert "loss is nan at step 1234; the newest good checkpoint (step 1000) is kept" in err and err.count("\n") == 1


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    test_command = next(b for b in blocks if "pytest" in b).strip()
    assert test_command in ci.splitlines()


BAD_FILES = {
    "nan.npz": lambda p: np.savez(p, x=np.full((20, 4), np.nan, np.float32)),
    "empty.npy": lambda p: np.save(p, np.zeros((0, 4), np.float32)),
    "corrupt.npz": lambda p: p.write_bytes(b"not a zip file at all"),
    "labels.npz": lambda p: np.savez(p, x=np.zeros((20, 4), np.float32), y=np.zeros(19, np.int32)),
}


@pytest.mark.parametrize("name,message", [
    ("nan.npz", "nan or inf"),
    ("empty.npy", "empty"),
    ("corrupt.npz", "cannot read"),
    ("labels.npz", "labels"),
])
def test_bad_data_files_exit_2_and_leave_nothing(tmp_path, capsys, name, message):
    path = tmp_path / name
    BAD_FILES[name](path)
    code = run(["--workdir", str(tmp_path / "w"), "--dataset", str(path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and message in err.lower() and err.count("\n") == 1, err
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("argv,message", [
    (["--set", "latent_dim=abc"], "config field latent_dim expects an integer, got 'abc'"),
    (["--set", "learning_rate=0"], "learning_rate must be > 0"),
    (["--set", "learning_rate=-1e-3"], "learning_rate must be > 0"),
    (["--set", "batch_size=-4"], "batch_size must be > 0"),
    (["--model", "gan", "--set", "loss=wasserstein"], "unknown loss 'wasserstein'; valid choices: minimax"),
    (["--model", "dgn", "--dataset", "ring", "--set", "num_heads=3"], "num_heads=3 but ring has 8 classes"),
    (["--model", "vae", "--set", "beta=-1"], "beta must be >= 0"),
    (["--model", "dgn", "--set", "kernel_encoder=/no/such/run"], "kernel_encoder=/no/such/run: /no/such/run holds "
     "no run (config.json is missing)"),
    (["--devices", "99"], "devices must be between 1 and the 8 available, got 99"),
    (["--dataset", "spiral"], "no data set named 'spiral'"),
])
def test_more_bad_usage(tmp_path, capsys, argv, message):
    code = run(["--workdir", str(tmp_path / "w"), "--no-progress", "--steps", "10", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "w" / "checkpoints").exists()


def test_unwritable_workdir_exits_2(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert run(["--workdir", str(blocker / "run"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "cannot write to" in err and err.count("\n") == 1
    assert blocker.read_text() == "not a directory"


@given(field=st.sampled_from(["latent_dim", "batch_size", "learning_rate"]),
       value=st.one_of(st.integers(max_value=0), st.floats(max_value=0.0, allow_nan=False)))
def test_nonpositive_sizes_and_rates_are_refused(field, value):
    from genjax import autoencoder
    from genjax.core import config

    with pytest.raises(ConfigError, match=f"{field} (must be > 0|expects|must be a finite number)"):
        config.override(autoencoder.Config(), [f"{field}={value}"])


def test_fields_list_every_field_with_its_value_and_meaning(capsys):
    assert run(["--model", "gan", "--preset", "pacgan", "--fields"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert list(lines)[:2] == ["latent_dim", "architecture"] and list(lines)[-1] == "warmup_steps"  # shared last
    assert "maxout_pieces" in lines and " 5 " in lines["maxout_pieces"] and "maxout" in lines["maxout_pieces"]
    assert "400,400,400,400" in lines["hidden_dims"] and "learning-rate schedule" in lines["schedule"]


def test_print_config_resolves_placeholders_without_training(tmp_path, capsys):
    argv = ["--model", "dgn", "--workdir", str(tmp_path / "w"), "--steps", "1234", "--set", "latent_dim=3",
            "--print-config"]
    assert run(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    config = printed["config"]
    assert printed["model"] == "dgn" and printed["data_shape"] == [8, 8, 1]
    assert (config["num_heads"], config["decay_steps"], config["output"], config["latent_dim"]) == (10, 1234,
                                                                                                  "sigmoid", 3)
    assert not (tmp_path / "w").exists()


def test_preset_of_another_family_is_refused(tmp_path, capsys):
    assert run(["--model", "vae", "--preset", "wgan_gp", "--workdir", str(tmp_path)]) == 2
    assert "unknown preset 'wgan_gp' for vae; valid choices: conv_vae, none" in capsys.readouterr().err


def test_images_start_a_gan_from_the_dcgan_preset(tmp_path, capsys):
    """Defaults follow the data: 16x16 images give a GAN the dcgan preset (announced on stderr, recorded in
    config.json) and an autoencoder conv networks; --preset none keeps the family's own defaults."""
    path = tmp_path / "images.npz"
    np.savez(path, x=np.random.default_rng(0).random((40, 16, 16, 1), np.float32), y=np.arange(40) % 4)
    assert run(["--model", "gan", "--dataset", str(path), "--workdir", str(tmp_path / "w"), "--print-config"]) == 0
    captured = capsys.readouterr()
    config = json.loads(captured.out)["config"]
    assert "starting from preset dcgan" in captured.err and "--preset none" in captured.err
    assert (config["architecture"], config["conv_channels"], config["batch_norm"], config["pack"]) == (
        "conv", [64, 128], True, 1)
    assert run(["--model", "gan", "--dataset", str(path), "--workdir", str(tmp_path / "w"), "--preset", "none",
                "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["architecture"] == "mlp"
    assert run(["--model", "autoencoder", "--dataset", str(path), "--workdir", str(tmp_path / "w"),
                "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["architecture"] == "conv"
    assert run(["--model", "gan", "--print-config", "--workdir", str(tmp_path / "w")]) == 0  # digits: the MLP GAN
    assert json.loads(capsys.readouterr().out)["config"]["architecture"] == "mlp"


@pytest.mark.parametrize("steps,per_call,interval", [(5000, 100, 500), (80_000, 100, 8000), (300, 100, 100),
                                                     (150, 100, 100), (1000, 30, 90)])
def test_light_evaluations_default_to_a_tenth_of_the_run(steps, per_call, interval):
    assert train.tenth_of_run(steps, per_call) == interval
