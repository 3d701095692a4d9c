"""Sweeps in one program: each run equals its separate run, complete run directories, exact resume after a
signal, a kill or a save cut short, and one line for a bad sweep."""
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import chex
import jax
import numpy as np
import pytest

import genjax
from genjax import autoencoder, dgn, gan, vae
from genjax.cli import sweep as sweep_script
from genjax.cli.common import run_main
from genjax.core.errors import ConfigError, Interrupted
from genjax.train import loop, rundir, sweep
from genjax.train.checkpoint import Checkpointer
from genjax.train.writers import JsonlWriter

ROOT = Path(__file__).resolve().parents[1]
GAN = gan.Config(latent_dim=4, hidden_dims=(16,), d_hidden_dims=(16,), batch_size=16, schedule="constant")
GRID = {"g_learning_rate": [1e-3, 2e-3], "r1_weight": [0.0, 1.0]}
AE = autoencoder.Config(hidden_dims=(32,), latent_dim=4, batch_size=32)
SWEEP = dict(steps=150, sweep={"learning_rate": [1e-3, 3e-3]}, seeds=[0, 1], steps_per_call=50, checkpoint_every=50,
             progress=False)


def test_two_settings_by_two_seeds_equal_the_four_separate_runs(digits):
    result = sweep.fit_sweep(gan, GAN, digits, steps=200, sweep={"r1_weight": [0.0, 1.0]}, seeds=[0, 1],
                             steps_per_call=100, progress=False)
    assert [run.name for run in result.runs] == ["r1_weight=0/seed-0", "r1_weight=0/seed-1", "r1_weight=1/seed-0",
                                                 "r1_weight=1/seed-1"]
    assert np.shape(result.history[-1]["loss"]) == (4,)
    for i, run in enumerate(result.runs):
        alone = loop.fit(gan, run.config, digits, steps=200, seed=run.seed, steps_per_call=100, eval_every=0,
                         checkpoint_every=0, progress=False)
        assert result.state(i).config == alone.state.config
        if run.setting["r1_weight"] == 1.0:  # the program's own config, one run at a time: the same bits
            chex.assert_trees_all_equal(result.state(i).params, alone.state.params)
        else:  # R1 computed and weighted by 0, where the separate run leaves it out: float rounding
            chex.assert_trees_all_close(result.state(i).params, alone.state.params, atol=1e-6, rtol=0)


@pytest.mark.parametrize("family,config,field,values,atol", [
    (vae, vae.Config(hidden_dims=(32,), latent_dim=4, batch_size=32), "kl_warmup_steps", [0, 40], 1e-6),
    (autoencoder, AE, "noise_level", [0.05, 0.3], 1e-6),
    (autoencoder, AE, "sparsity_weight", [0.0, 0.1], 1e-6),
    (gan, dataclasses.replace(GAN, schedule="cosine"), "beta1", [0.5, 0.9], 1e-6),  # Adam rebuilt in the step
    (dgn, dgn.Config(hidden_dims=(32,), head_dims=(16,), num_heads=1, samples_per_head=16, batch_size=16),
     "bandwidth_scale",
     [0.5, 2.0], 1e-6),
    # Adam's bias correction 1 - beta2^t cancels (0.001 t for 0.999): the rounding of beta2^t computed from an array
    # rather than a folded constant grows ~1,000x there (measured 2.6e-5 after 60 steps at 0.999, 1.5e-7 at 0.99)
    (autoencoder, AE, "beta2", [0.99, 0.999], 1e-4),
])
def test_more_swept_fields_equal_their_separate_runs(digits, family, config, field, values, atol):
    result = sweep.fit_sweep(family, config, digits, steps=60, sweep={field: values}, seeds=[0], steps_per_call=30,
                             progress=False)
    for i, run in enumerate(result.runs):
        assert getattr(run.config, field) == values[i] and type(getattr(run.config, field)) is type(values[i])
        alone = loop.fit(family, run.config, digits, steps=60, seed=0, steps_per_call=30, eval_every=0,
                         checkpoint_every=0, progress=False)
        chex.assert_trees_all_close(result.state(i).params, alone.state.params, atol=atol, rtol=0)


def test_vmapped_groups_train_as_one_run_at_a_time(digits):
    """A CPU trains one run at a time by default; vmapped groups (an accelerator's default) end within 1e-6."""
    args = dict(steps=100, sweep={"r1_weight": [0.0, 1.0]}, seeds=[0, 1], steps_per_call=50, progress=False)
    one, two = (sweep.fit_sweep(gan, GAN, digits, group=group, **args) for group in (None, 2))
    assert (one.runs_per_group, two.runs_per_group) == (1, 2)
    chex.assert_trees_all_close(one.states.params, two.states.params, atol=1e-6, rtol=0)
    with pytest.raises(ConfigError, match="runs_per_group must be an integer between 1 and the 4 runs"):
        sweep.fit_sweep(gan, GAN, digits, group=5, **args)


def test_a_sweep_dispatched_step_by_step_trains_as_its_scan(digits):
    args = dict(steps=20, sweep={"learning_rate": [1e-3, 3e-3]}, seeds=[0], steps_per_call=10, progress=False)
    scan, dispatch = (sweep.fit_sweep(autoencoder, AE, digits, loop_strategy=s, **args) for s in ("auto", "dispatch"))
    chex.assert_trees_all_equal(scan.states.params, dispatch.states.params)
    assert [np.shape(r["loss"]) for r in dispatch.history] == [(2,), (2,)]


def test_learning_rates_and_weights_reach_the_step_as_arrays(digits):
    base, runs = sweep.plan(gan, GAN, digits, 100, GRID, [0])
    assert base.g_learning_rate == 2e-3 and base.r1_weight == 1.0  # the largest: R1 runs for every setting
    assert [r.config.g_learning_rate for r in runs] == [1e-3, 1e-3, 2e-3, 2e-3]
    hyper = sweep.hyper(gan, base, runs[0].setting)
    assert hyper["r1_weight"] == 0.0 and hyper["update_scale"] == {"generator": np.float32(0.5)}


@pytest.fixture(scope="module")
def straight(digits, tmp_path_factory):
    """An uninterrupted sweep of the tiny autoencoder's learning rate, 2 seeds, with run directories."""
    workdir = tmp_path_factory.mktemp("straight")
    return sweep.fit_sweep(autoencoder, AE, digits, workdir=workdir, **SWEEP), workdir



def test_each_run_directory_is_a_run_that_load_run_reads(straight):
    result, workdir = straight
    for i, run in enumerate(result.runs):
        family, config, state = genjax.load_run(workdir / run.name)
        assert family is autoencoder and config.learning_rate == run.setting["learning_rate"]
        assert int(state.step) == 150 and state.hyper == {}
        chex.assert_trees_all_equal(state.params, result.state(i).params)
        records = [json.loads(line) for line in (workdir / run.name / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in records] == [50, 100, 150]
        assert records[-1]["loss"] == pytest.approx(result.history[-1]["loss"][i])


def test_a_save_cut_short_resumes_from_the_newest_step_every_run_has(straight, digits, tmp_path):
    result, workdir = straight
    shutil.copytree(workdir, tmp_path / "w")
    for run in result.runs[:3]:  # a kill during the final save: the last run has no checkpoint 150
        shutil.rmtree(tmp_path / "w" / run.name / "checkpoints" / "150")
    shutil.rmtree(tmp_path / "w" / result.runs[3].name / "checkpoints" / "100")
    resumed = sweep.fit_sweep(autoencoder, AE, digits, workdir=tmp_path / "w", resume=True, **SWEEP)
    assert [r["step"] for r in resumed.history] == [50, 100, 150]  # from step 50, the newest all four have
    chex.assert_trees_all_equal(resumed.states.params, result.states.params)


def test_sigterm_saves_every_run_and_resume_ends_where_the_straight_sweep_ends(straight, digits, tmp_path,
                                                                              monkeypatch):
    result, _ = straight
    write, sent = JsonlWriter.write, []

    def signal_at_100(self, record):  # once, while the first run's record of step 100 is written
        write(self, record)
        if record["step"] == 100 and not sent:
            sent.append(os.kill(os.getpid(), signal.SIGTERM))

    monkeypatch.setattr(JsonlWriter, "write", signal_at_100)
    with pytest.raises(Interrupted, match="stopped by SIGTERM at step 100"):
        sweep.fit_sweep(autoencoder, AE, digits, workdir=tmp_path, **SWEEP)
    monkeypatch.setattr(JsonlWriter, "write", write)
    assert all(sorted(int(p.name) for p in (tmp_path / r.name / "checkpoints").iterdir()) == [50, 100]
               for r in result.runs)
    resumed = sweep.fit_sweep(autoencoder, AE, digits, workdir=tmp_path, resume=True, **SWEEP)
    chex.assert_trees_all_equal(resumed.states.params, result.states.params)


def test_the_script_writes_the_table_the_plots_and_every_run(tmp_path, capsys):
    """Trained with the dispatch strategy to step 50, then resumed to step 100 with none named: it keeps its own."""
    workdir = tmp_path / "s"
    argv = ["--model", "autoencoder", "--dataset", "digits", "--steps-per-call", "50",
            "--set", "hidden_dims=32", "--set", "latent_dim=4", "--set", "batch_size=32",
            "--sweep", "learning_rate=1e-3,3e-3", "--seeds", "2", "--workdir", str(workdir), "--no-progress"]
    first = [*argv, "--steps", "50", "--loop-strategy", "dispatch"]
    assert run_main(lambda: sweep_script.main(first), sweep_script.PROG) == 0
    capsys.readouterr()
    resumed = [*argv, "--steps", "100", "--resume"]
    assert run_main(lambda: sweep_script.main(resumed), sweep_script.PROG) == 0
    out = capsys.readouterr().out
    summary = json.loads((workdir / "sweep.json").read_text())
    assert summary["measure"] == "test_mse" and len(summary["table"]) == 2
    assert [row["best"] for row in summary["table"]].count(True) == 1
    best = min(summary["table"], key=lambda row: row["measures"]["test_mse"]["mean"])
    assert best["best"] and best["measures"]["test_mse"]["se"] > 0
    assert "| learning_rate | test_mse |" in out and "**" in out
    assert (workdir / "sweep_learning_rate.png").stat().st_size > 0
    for run in summary["runs"]:
        files = {p.name for p in (workdir / run).iterdir()}
        assert {"config.json", "metrics.jsonl", "eval.json", "loss_curve.png", "checkpoints"} <= files, files
        assert json.loads((workdir / run / "eval.json").read_text())["runs_in_program"] == 4
        assert json.loads((workdir / run / "config.json").read_text())["loop_strategy"] == "dispatch"
        assert [r["step"] for r in rundir.read_metrics(workdir / run)] == [50, 100]


@pytest.mark.parametrize("sweep_args,message", [
    (["--sweep", "learning_rat=1e-3,2e-3"], "autoencoder has no config field 'learning_rat'; sweepable in one "
                                             "program: learning_rate"),
    (["--sweep", "hidden_dims=32,64"], "hidden_dims changes shapes or code"),
    (["--sweep", "batch_size=16,32"], "batch_size changes shapes or code"),
    (["--sweep", "learning_rate="], "needs a comma-separated list of numbers"),
    (["--sweep", "learning_rate=1e-3,,2e-3"], "needs a comma-separated list of numbers"),
    (["--sweep", "learning_rate=fast,slow"], "every value must be a number"),
    (["--sweep", "learning_rate=1e-3,1e-3"], "the values repeat"),
    (["--sweep", "learning_rate=1e-3", "--sweep", "learning_rate=2e-3"], "is given twice"),
    (["--sweep", "learning_rate=-1,1e-3"], "learning_rate"),
    ([], "needs at least one --sweep"),
    (["--sweep", "learning_rate=1e-3", "--seeds", "0"], "--seeds must be a positive integer"),
    (["--sweep", "learning_rate=1e-3,2e-3", "--devices", "0"], "devices must be between 1 and the 8 available, got 0"),
    (["--sweep", "learning_rate=1e-3,2e-3", "--devices", "1", "--runs-per-group", "3"],
     "runs_per_group must be an integer between 1 and the 2 runs of each device, got 3"),
])
def test_bad_sweeps_exit_2_with_one_line(sweep_args, message, tmp_path, capsys):
    argv = ["--model", "autoencoder", "--dataset", "digits", "--workdir", str(tmp_path / "s"), *sweep_args]
    assert run_main(lambda: sweep_script.main(argv), sweep_script.PROG) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "s").exists()


def test_the_library_refuses_what_the_script_refuses(digits):
    with pytest.raises(ConfigError, match="latent_dim changes shapes or code"):
        sweep.fit_sweep(autoencoder, AE, digits, steps=10, sweep={"latent_dim": [2, 4]})
    with pytest.raises(ConfigError, match="the list of values is empty"):
        sweep.fit_sweep(autoencoder, AE, digits, steps=10, sweep={"learning_rate": []})
    with pytest.raises(ConfigError, match="seeds must be a non-empty list of distinct integers"):
        sweep.fit_sweep(autoencoder, AE, digits, steps=10, sweep={}, seeds=[])
    assert jax.device_count() == 8


def test_the_runs_split_over_devices_train_as_in_one_device(straight, digits):
    result, _ = straight
    split = sweep.fit_sweep(autoencoder, AE, digits, devices=4, **{**SWEEP, "checkpoint_every": 0})
    leaf = jax.tree.leaves(split.states.params)[0]
    assert len(leaf.sharding.device_set) == 4
    chex.assert_trees_all_close(split.states.params, result.states.params, atol=1e-6, rtol=0)


def test_kill_9_mid_sweep_then_resume_ends_where_the_straight_sweep_ends(digits, tmp_path):
    """The script killed while it trains and saves (every 10 steps); the library resumes it to the end."""
    args = dict(steps=300, sweep={"learning_rate": [1e-3, 3e-3]}, seeds=[0, 1], steps_per_call=10, progress=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "experiments.sweep", "--model", "autoencoder", "--preset", "none", "--dataset",
         "digits", "--set", "hidden_dims=32", "--set", "latent_dim=4", "--set", "batch_size=32", "--steps", "300",
         "--steps-per-call", "10", "--checkpoint-every", "10", "--sweep", "learning_rate=1e-3,3e-3", "--seeds", "2",
         "--workdir", str(tmp_path), "--no-progress"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = tmp_path / "learning_rate=0.003" / "seed-1" / "checkpoints"
    deadline = time.time() + 120
    while not (last.exists() and len(list(last.iterdir())) >= 2):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=60)
    saved = [Checkpointer(tmp_path / name / "checkpoints").latest_step() for name in
             ("learning_rate=0.001/seed-0", "learning_rate=0.003/seed-1")]
    assert all(step is not None and step < 300 for step in saved), saved  # killed mid-sweep
    resumed = sweep.fit_sweep(autoencoder, AE, digits, workdir=tmp_path, resume=True, checkpoint_every=10, **args)
    straight = sweep.fit_sweep(autoencoder, AE, digits, **args)
    chex.assert_trees_all_equal(resumed.states.params, straight.states.params)
