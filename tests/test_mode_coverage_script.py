"""experiments.mode_coverage on a tiny budget: files, figures and the comparison table."""
import json

import numpy as np

from genjax.cli import mode_coverage
from genjax.cli.common import run_main

SMALL = ["--set", "hidden_dims=32,32", "--set", "d_hidden_dims=32", "--set", "batch_size=64"]


def run(argv):
    try:
        return run_main(lambda: mode_coverage.main(argv), mode_coverage.PROG)
    except SystemExit as exc:
        return exc.code


def test_two_tiny_trials_write_every_file(tmp_path, capsys):
    assert run(["--dataset", "ring", "--trials", "2", "--steps", "300", "--workdir", str(tmp_path), *SMALL]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert [t["trial"] for t in results["trials"]] == [0, 1] and results["steps"] == 300
    assert set(results["mean"]) == {"modes", "high_quality", "reverse_kl"}
    assert results["pacgan_table1"]["PacGAN4"]["modes"] == 7.8 and results["true_data"]["modes"] == 8
    assert results["config"]["hidden_dims"] == [32, 32] and results["config"]["decay_steps"] == 300
    assert np.load(tmp_path / "samples_trial1.npy").shape == (2500, 2)
    assert (tmp_path / "samples.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "PacGAN paper: PacGAN2" in out and "true data" in out
    # a second run refuses to overwrite the results
    assert run(["--dataset", "ring", "--trials", "1", "--workdir", str(tmp_path)]) == 2
    assert "already holds results.json" in capsys.readouterr().err


def test_the_moment_matching_network_runs_with_one_head(tmp_path, capsys):
    argv = ["--model", "dgn", "--preset", "mixture2d", "--dataset", "grid", "--trials", "1", "--steps", "200",
            "--workdir", str(tmp_path), "--set", "hidden_dims=32", "--set", "head_dims=16", "--set", "batch_size=64"]
    assert run(argv) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["model"] == "dgn" and results["config"]["num_heads"] == 1 and results["config"]["latent_dim"] == 2
    assert 0 <= results["trials"][0]["modes"] <= 25


def test_bad_arguments(tmp_path, capsys):
    assert run(["--dataset", "spiral", "--workdir", str(tmp_path)]) == 2
    assert "invalid choice: 'spiral'" in capsys.readouterr().err
    assert run(["--preset", "biggan", "--workdir", str(tmp_path)]) == 2
    assert "unknown preset 'biggan'; valid choices: pacgan, wgan_gp, mixture2d" in capsys.readouterr().err
    assert run(["--model", "dgn", "--preset", "pacgan", "--workdir", str(tmp_path)]) == 2
    assert "unknown preset 'pacgan' for dgn; valid choices: mixture2d" in capsys.readouterr().err
    assert run(["--trials", "0", "--workdir", str(tmp_path)]) == 2


def test_make_mixture_round_trips_through_the_loader(tmp_path):
    from genjax import data
    from genjax.cli import make_mixture
    from genjax.eval import measures

    assert run_main(lambda: make_mixture.main(["--modes", "5", "--n", "2000", "--out", str(tmp_path / "m.npz")]),
                    make_mixture.PROG) == 0
    ds = data.load(tmp_path / "m.npz")
    assert ds.modes.shape == (5, 2) and ds.mode_std == np.float32(0.05) and len(ds.x_train) == 1600
    true = measures.mode_coverage(ds.x_test, ds.modes, ds.mode_std)
    assert true["modes"] == 5 and true["high_quality"] > 0.97
    assert run_main(lambda: make_mixture.main(["--modes", "500", "--extent", "0.1", "--out", str(tmp_path / "x.npz")]),
                    make_mixture.PROG) == 2


def test_print_config_trains_an_unconditional_model(tmp_path, capsys):
    assert run(["--model", "dgn", "--dataset", "grid", "--workdir", str(tmp_path / "w"), "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["config"]["num_heads"] == 1 and printed["steps"] == 3000  # the modes' labels are not used
    assert not (tmp_path / "w").exists()
