"""Runs that survive SIGTERM and SIGKILL (SIGINT: tests/test_faults.py): a clean stop saves, a resume ends bitwise
where an uninterrupted run ends, and a killed save is never taken for a complete checkpoint."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import chex
import pytest

import genjax
from genjax.train.checkpoint import Checkpointer

ROOT = Path(__file__).resolve().parents[1]
STEPS = 300
ARGS = ["--model", "autoencoder", "--dataset", "digits", "--set", "hidden_dims=32", "--set", "latent_dim=4",
        "--set", "batch_size=32", "--steps-per-call", "10", "--checkpoint-every", "10", "--eval-every", "0",
        "--keep", "2", "--no-progress"]


def start(workdir, *extra):
    env = {**os.environ, "XLA_FLAGS": ""}  # one CPU device in the child, as a user's run
    return subprocess.Popen([sys.executable, "-m", "experiments.train", "--workdir", str(workdir), *ARGS, *extra,
                             "--steps", str(STEPS)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_checkpoints(workdir, proc, count=2, timeout=120):
    """Block until ``count`` metric records exist (training is under way, saves are happening)."""
    deadline = time.time() + timeout
    metrics = Path(workdir) / "metrics.jsonl"
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= count:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise TimeoutError("training did not start")


def final_params(workdir):
    _, _, state = genjax.load_run(workdir)
    assert int(state.step) == STEPS
    return state.params


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run's final parameters."""
    workdir = tmp_path_factory.mktemp("straight")
    proc = start(workdir)
    assert proc.wait(timeout=300) == 0, proc.communicate()
    return final_params(workdir)


def resume_to_the_end(workdir):
    proc = start(workdir, "--resume")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return final_params(workdir)


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143)])  # SIGINT (130): tests/test_faults.py, in-process
def test_a_signal_finishes_the_call_saves_and_exits_cleanly(tmp_path, straight, signum, code):
    proc = start(tmp_path)
    wait_for_checkpoints(tmp_path, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.count("\n") == 1 and f"stopped by {signal.Signals(signum).name} at step" in err
    stopped_at = int(err.split("at step ")[1].split(";")[0])
    assert 0 < stopped_at < STEPS and stopped_at % 10 == 0
    assert Checkpointer(tmp_path / "checkpoints").latest_step() == stopped_at  # saved where it stopped
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == stopped_at
    chex.assert_trees_all_equal(resume_to_the_end(tmp_path), straight)


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_kill_9_at_any_moment_then_resume_ends_bitwise_equal(tmp_path, straight, delay):
    """Saves every 10 steps (about as long as the steps between them), so the kills land in steps and in saves."""
    proc = start(tmp_path)
    wait_for_checkpoints(tmp_path, proc)
    time.sleep(delay)
    proc.kill()
    proc.wait(timeout=60)
    latest = Checkpointer(tmp_path / "checkpoints").latest_step()
    assert latest is not None and latest < STEPS
    _, _, state = genjax.load_run(tmp_path)  # the newest complete checkpoint restores
    assert int(state.step) == latest
    chex.assert_trees_all_equal(resume_to_the_end(tmp_path), straight)
