"""Training across processes: pairs of processes on localhost (``jax.distributed``, gloo collectives, each
process started from tests/cluster_worker.py) against one process on the same global device count; the training
split sharded; a signalled, a killed and a diverging process (one sequence of pairs, to keep CI time short)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import genjax
from genjax import autoencoder, data
from genjax.cli import train
from genjax.cli.common import run_main
from genjax.core.errors import ConfigError
from genjax.train import cluster, loop

sys.path.insert(0, str(Path(__file__).parent))
from cluster_worker import CONFIGS, DIVERGE_AT

WORKER = Path(__file__).with_name("cluster_worker.py")
STEPS = 200
PEER_LOST = "another process of the run stopped or cannot be reached"
pytestmark = pytest.mark.alone  # pairs of processes: no other test shares the cores with them (tests/conftest.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def compilation_cache(tmp_path_factory) -> Path:
    """A persistent compilation cache that the workers share, so that a pair started again skips compiling."""
    return tmp_path_factory.mktemp("compilation-cache")


def start_pair(workdir: Path, cache: Path, local_devices: int = 1, *options: str) -> list[subprocess.Popen]:
    """Two worker processes training into ``workdir`` (their stderr in ``workdir/stderr-<process>.txt``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    address = f"localhost:{free_port()}"
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={local_devices}",
           "JAX_COMPILATION_CACHE_DIR": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    return [subprocess.Popen(
        [sys.executable, str(WORKER), "--coordinator", address, "--num-processes", "2", "--process-id", str(i),
         "--workdir", str(workdir), "--steps", str(STEPS), *options],
        stdout=subprocess.DEVNULL, stderr=open(workdir / f"stderr-{i}.txt", "w"), env=env) for i in range(2)]


def finish(processes: list[subprocess.Popen], timeout: float = 120) -> list[int]:
    return [p.wait(timeout) for p in processes]


def our_lines(workdir: Path, process: int) -> list[str]:
    """What genjax wrote to a worker's stderr (JAX's and gloo's own log lines left out)."""
    text = (workdir / f"stderr-{process}.txt").read_text()
    return [line for line in text.splitlines() if line.startswith("cluster_worker")]


def wait_for_checkpoint(run: Path, after: int = 0, timeout: float = 90) -> int:
    """The first checkpoint step above ``after`` to appear in ``run/checkpoints`` (polled every 10 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = saved_steps(run)
        if any(s > after for s in steps):
            return min(s for s in steps if s > after)
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint after step {after} in {run} within {timeout} s")


def saved_steps(run: Path) -> list[int]:
    """The steps of the complete checkpoints in ``run`` (orbax renames a save into place when it is whole)."""
    folder = run / "checkpoints"
    return [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []


def params(path: Path) -> dict:
    return dict(np.load(path))


def interrupted_runs(workdir: Path, cache: Path) -> dict:
    """Runs by four pairs in turn (1 device each), and what each pair did: the autoencoder, SIGTERM to one process
    after the first checkpoint; resumed, SIGKILL to process 1 after the next checkpoint; resumed, SIGKILL to process 0
    after the next; resumed to the end, then the GAN, then a model that diverges at step DIVERGE_AT."""
    run, seen = workdir / "autoencoder", {}
    pair = start_pair(workdir, cache, 1, "--models", "autoencoder")
    wait_for_checkpoint(run)
    pair[1].send_signal(signal.SIGTERM)  # to one process only
    seen["sigterm"] = finish(pair), [our_lines(workdir, i) for i in range(2)]
    for victim in (1, 0):  # process 0 hosts JAX's coordination service: its death aborts the others in JAX
        saved, survivor = max(saved_steps(run)), 1 - victim
        pair = start_pair(workdir, cache, 1, "--models", "autoencoder", "--resume")
        wait_for_checkpoint(run, after=saved)
        pair[victim].kill()
        killed = time.monotonic()
        code = pair[survivor].wait(90)
        seen["kill", victim] = code, time.monotonic() - killed, our_lines(workdir, survivor)
        pair[victim].wait()
    pair = start_pair(workdir, cache, 1, "--models", "autoencoder,gan,diverging", "--resume")
    seen["resume"] = finish(pair), [our_lines(workdir, i) for i in range(2)]
    return seen


@pytest.fixture(scope="module")
def runs(digits, compilation_cache, tmp_path_factory):
    """Everything the tests below check: a pair with 2 devices each trains both models while this process trains
    them on 2 and on 4 of its forced devices (it compiles while the pair's processes wait for each other); then the
    interrupted runs, one pair (1 device each) after the other. Returns the workdirs by devices per process, the
    parameters by (devices, model), and what the interrupted runs saw."""
    workdirs = {local: tmp_path_factory.mktemp(f"pair-{local}-devices") for local in (1, 2)}
    pair = start_pair(workdirs[2], compilation_cache, 2)
    one_process = {}
    for devices in (2, 4):
        for name, (family, config) in CONFIGS.items():
            result = loop.fit(family, config, digits, steps=STEPS, steps_per_call=50, eval_every=0,
                              checkpoint_every=0, progress=False, devices=devices)
            leaves = jax.tree_util.tree_leaves_with_path(result.state.params)
            one_process[devices, name] = {jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves}
    assert finish(pair) == [0, 0], [our_lines(workdirs[2], i) for i in (0, 1)]
    return workdirs, one_process, interrupted_runs(workdirs[1], compilation_cache)


@pytest.mark.parametrize("local_devices", [1, 2])
def test_two_processes_train_as_one_process_on_as_many_devices(runs, local_devices):
    """With 1 device each, the autoencoder's run was stopped by SIGTERM, then killed twice, and resumed three times."""
    workdirs, one_process, _ = runs
    workdir, devices = workdirs[local_devices], 2 * local_devices
    split = len(data.load("digits").x_train)
    for name in CONFIGS:
        rows = [int((workdir / f"{name}-rows-{i}.txt").read_text()) for i in range(2)]
        assert rows == [-(-split // devices) * local_devices] * 2  # half the split each (padded to whole devices)
        got, expected = params(workdir / f"{name}.npz"), one_process[devices, name]
        if local_devices == 1:  # a sum of two gradients is the same bits in either order
            assert all(np.array_equal(got[k], expected[k]) for k in expected), name
        else:  # gloo's all-reduce of four adds in another order than the in-process one
            for k in expected:
                np.testing.assert_allclose(got[k], expected[k], atol=1e-6, rtol=0)


def test_sigterm_to_one_process_stops_both_after_a_checkpoint(runs):
    codes, lines = runs[2]["sigterm"]
    assert codes == [143, 143]
    assert all(len(mine) == 1 and "stopped by SIGTERM at step" in mine[0] for mine in lines), lines


@pytest.mark.parametrize("victim", [1, 0])
def test_a_killed_process_stops_the_other_within_60_s_with_one_line(runs, victim):
    """Process 0's death also ends process 1 through JAX's own abort, which genjax turns into its line and exit 1."""
    code, seconds, lines = runs[2]["kill", victim]
    assert code == 1 and seconds < 60
    assert len(lines) == 1 and PEER_LOST in lines[0], lines


def test_an_abort_by_jax_ends_a_process_of_a_cluster_with_one_line_and_exit_1():
    """What JAX's distributed client does when process 0 is gone (a fatal log, then abort()), in isolation."""
    program = ("import os; from genjax.train import cluster; cluster.name_aborts('prog'); "
               "cluster.end_aborts_with_one_line(); os.abort()")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"prog: error: {PEER_LOST}")


def test_divergence_stops_both_processes_with_exit_3(runs):
    codes, lines = runs[2]["resume"]
    assert codes == [3, 3]  # the autoencoder and the GAN finished; the model trained after them diverged on both
    assert lines == [[f"cluster_worker[{i}]: training diverged: loss is nan at step {DIVERGE_AT}; the newest good "
                      "checkpoint (step 100) is kept"] for i in range(2)], lines


def test_a_run_of_two_processes_resumes_in_one_process_on_one_device(runs, digits, tmp_path):
    """Another process and device count than the run's: the state is replicated and batches do not depend on the
    layout, so only the all-reduce order changes."""
    run = tmp_path / "autoencoder"
    shutil.copytree(runs[0][2] / "autoencoder", run)
    family, config = CONFIGS["autoencoder"]
    options = dict(steps=STEPS + 100, steps_per_call=50, eval_every=0, checkpoint_every=0, progress=False)
    resumed = loop.fit(family, config, digits, workdir=run, resume=True, **options)
    assert [r["step"] for r in resumed.history] == list(range(50, STEPS + 101, 50))
    alone = loop.fit(family, config, digits, **options)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6, rtol=0),
                 resumed.state.params, alone.state.params)


@pytest.mark.parametrize("arguments,message", [
    (("localhost:1234", None, None), "--coordinator, --num-processes and --process-id go together"),
    (("localhost", 2, 0), "--coordinator must be HOST:PORT"),
    (("localhost:1234", 0, 0), "--num-processes must be a positive integer, got 0"),
    (("localhost:1234", 2, 2), r"--process-id must be in 0..1, got 2"),
])
def test_bad_cluster_arguments_are_refused_before_jax_starts_one(arguments, message):
    with pytest.raises(ConfigError, match=message):
        cluster.join(*arguments)
    assert not jax.distributed.is_initialized()


def test_one_process_needs_no_cluster(monkeypatch):
    cluster.join("localhost:1234", 1, 0)  # a cluster of one is no cluster
    monkeypatch.setenv("SLURM_NTASKS", "1")
    assert cluster.detected() is None
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert cluster.detected() == "SLURM"
    assert not jax.distributed.is_initialized() and cluster.processes() == 1 and cluster.is_primary()


def test_the_scripts_refuse_partial_cluster_flags_with_one_line(capsys):
    assert run_main(lambda: train.main(["--coordinator", "localhost:1234"]), train.PROG) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--coordinator, --num-processes and --process-id go together" in err


def test_fit_seeds_refuses_a_cluster(digits, tiny_config, monkeypatch):
    monkeypatch.setattr(cluster, "processes", lambda: 2)
    with pytest.raises(ConfigError, match=r"a sweep \(or fit_seeds\) trains in one process, and this one is one of 2"):
        genjax.fit_seeds(autoencoder, tiny_config, digits, steps=10, seeds=[0])
