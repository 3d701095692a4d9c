"""One writer per run directory: a second process (fresh, --resume or --overwrite) is refused with one line
naming the holder and touches nothing; a holder killed with SIGKILL leaves no lock behind. The feature
classifier's cache: concurrent first evaluations train it once (the others wait for it)."""
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import genjax
from genjax import autoencoder as ae
from genjax.core.errors import RunError
from genjax.eval import classifier
from genjax.train.lock import LOCK_FILE, run_lock, waiting_lock

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(steps_per_call=100, eval_every=0, checkpoint_every=100, progress=False)
HOLD = "import sys, time; from genjax.train.lock import run_lock\nwith run_lock(sys.argv[1]):\n    print('held', " \
       "flush=True); time.sleep(600)"


@pytest.fixture
def holder(tmp_path):
    """A second process holding ``tmp_path``'s lock (as a run in progress would)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def snapshot(workdir: Path) -> dict:
    return {p.relative_to(workdir): p.read_bytes() for p in sorted(workdir.rglob("*")) if p.is_file()
            and p.name != LOCK_FILE}


@pytest.fixture
def finished_run(digits, tiny_config, tmp_path):
    genjax.fit(ae, tiny_config, digits, steps=100, workdir=tmp_path, **FAST)
    return tmp_path


@pytest.mark.parametrize("mode", ["fresh", "resume", "overwrite"])
def test_a_run_in_use_is_refused_naming_its_holder(digits, tiny_config, finished_run, mode):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(finished_run)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        before = snapshot(finished_run)
        holder_named = rf"in use by another genjax run \(PID {proc.pid} on {socket.gethostname()}, since "
        with pytest.raises(RunError, match=holder_named):
            genjax.fit(ae, tiny_config, digits, steps=200, workdir=finished_run, resume=mode == "resume",
                       overwrite=mode == "overwrite", **FAST)
        assert snapshot(finished_run) == before
    finally:
        proc.kill()
        proc.wait()


def test_the_script_refuses_in_one_line_with_exit_2(tmp_path, holder):
    env = {**os.environ, "XLA_FLAGS": ""}
    done = subprocess.run([sys.executable, "-m", "experiments.train", "--workdir", str(tmp_path), "--overwrite",
                           "--steps", "10", "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and f"PID {holder.pid}" in done.stderr, done.stderr


def test_a_lock_left_by_a_killed_process_is_stale(digits, tiny_config, tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / LOCK_FILE).read_text()  # its name is still written, but the kernel dropped the lock
    genjax.fit(ae, tiny_config, digits, steps=100, workdir=tmp_path, **FAST)
    assert genjax.load_run(tmp_path)[2].step == 100
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released on exit


def test_one_process_may_nest_the_lock_and_releases_it_at_the_outermost_exit(tmp_path):
    with run_lock(tmp_path):
        with run_lock(tmp_path):
            pass
        assert (tmp_path / LOCK_FILE).read_text()  # still held by the outer block
    assert (tmp_path / LOCK_FILE).read_text() == ""
    done = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(600)", "pass"), str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_waiting_lock_makes_the_second_holder_wait_and_says_so(tmp_path, capfd):
    taken = threading.Event()

    def second():
        with waiting_lock(tmp_path / "cache.lock", "builds the cache"):
            taken.set()

    with waiting_lock(tmp_path / "cache.lock", "builds the cache"):
        thread = threading.Thread(target=second)
        thread.start()
        assert not taken.wait(0.5)  # flock: a second open file description waits, even in this process
    assert taken.wait(10)
    thread.join()
    assert "genjax: waiting for another process that builds the cache" in capfd.readouterr().err


def test_concurrent_first_evaluations_train_the_feature_classifier_once(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("GENJAX_CACHE", str(tmp_path))
    monkeypatch.setattr(classifier, "_LOADED", {})
    trainings = []
    monkeypatch.setattr(classifier, "fit", lambda *a, **k: trainings.append(1) or genjax.fit(*a, **k))
    start = threading.Barrier(2)
    nets = []

    def evaluate():
        start.wait()
        nets.append(classifier.feature_net(digits, steps=20))

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(trainings) == 1 and len(nets) == 2
    assert nets[0].test_accuracy == nets[1].test_accuracy


def test_an_unwritable_cache_only_costs_training(digits, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("GENJAX_CACHE", str(tmp_path / "file" / "cache"))  # under a file: not even root can create it
    monkeypatch.setattr(classifier, "_LOADED", {})
    assert classifier.feature_net(digits, steps=20).features(digits.x_test[:3]).shape == (3, 128)
