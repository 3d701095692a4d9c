"""Faults from outside genjax and signals at any moment: one line and a documented exit code, never a
traceback, never a swallowed signal, never a lost or half-written checkpoint; --overwrite never leaves the
user with nothing; Inf refused like NaN in every float field."""
import dataclasses
import errno
import json
import os
import signal

import numpy as np
import pytest
from test_fit import exploding_family

import genjax
from genjax import autoencoder as ae
from genjax.cli import train
from genjax.cli.common import DEBUG_VARIABLE, run_main
from genjax.core import config as cfg_lib
from genjax.core import data
from genjax.core.errors import ConfigError, DataError, TrainingDiverged
from genjax.models import registry
from genjax.train import rundir
from genjax.train.checkpoint import TMP_SUFFIX, Checkpointer

TINY = ["--steps", "200", "--steps-per-call", "50", "--eval-every", "0", "--checkpoint-every", "100",
        "--set", "hidden_dims=32", "--set", "latent_dim=4", "--no-progress"]
FAST = dict(steps_per_call=50, eval_every=0, checkpoint_every=100, progress=False)


def run(argv):
    try:
        return run_main(lambda: train.main(argv), train.PROG)
    except SystemExit as exc:
        return exc.code


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def float_fields():
    for name in registry.names():
        config = registry.get(name).Config()
        for field in dataclasses.fields(config):
            if isinstance(getattr(config, field.name), float):
                yield name, field.name


@pytest.mark.parametrize("model,field", list(float_fields()))
def test_inf_and_nan_are_refused_in_every_float_field(model, field):
    family = registry.get(model)
    for text in ("inf", "-inf", "nan"):
        with pytest.raises(ConfigError, match=f"config field {field} must be a finite number"):
            cfg_lib.override(family.Config(), [f"{field}={text}"])
    with pytest.raises(ConfigError, match="must be a finite number"):  # config.json edited by hand
        family.Config(**cfg_lib.coerce(family.Config, {field: float("inf")}))


@pytest.mark.parametrize("error,line", [
    (MemoryError(), "error: out of memory; checkpoints already saved are kept"),
    (OSError(errno.ENOSPC, "No space left on device", "/runs/x/metrics.jsonl"),
     "error: no space left on the device of /runs/x/metrics.jsonl"),
    (RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 123 bytes\n  at somewhere"),
     "error: out of device memory (RESOURCE_EXHAUSTED: Out of memory allocating 123 bytes)"),
    (ZeroDivisionError("division by zero"), "error: ZeroDivisionError: division by zero"),
])
def test_errors_from_outside_genjax_are_one_line_with_exit_1(capsys, monkeypatch, error, line):
    def fail():
        raise error

    monkeypatch.delenv(DEBUG_VARIABLE, raising=False)
    assert run_main(fail, "prog") == 1
    err = one_line(capsys)
    assert err.startswith(f"prog: {line}") and "--debug" in err
    with pytest.raises(type(error)):
        run_main(fail, "prog", debug=True)
    monkeypatch.setenv(DEBUG_VARIABLE, "1")
    with pytest.raises(type(error)):
        run_main(fail, "prog")


def test_a_full_disk_during_a_save_leaves_no_partial_checkpoint(tmp_path, capsys, monkeypatch):
    real = Checkpointer.save

    def full_disk(self, state):
        if int(state.step) == 200:  # the second save: the first stays whole
            partial = self.directory / f"200{TMP_SUFFIX}-1234"
            partial.mkdir()
            (partial / "half-written").write_bytes(b"\0" * 10)
            self.manager.save = lambda *a, **k: (_ for _ in ()).throw(
                OSError(errno.ENOSPC, "No space left on device", str(partial / "half-written")))
        return real(self, state)

    monkeypatch.setattr(Checkpointer, "save", full_disk)
    monkeypatch.delenv(DEBUG_VARIABLE, raising=False)
    assert run(["--workdir", str(tmp_path), *TINY]) == 1
    assert "no space left on the device of" in one_line(capsys)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["100"]
    monkeypatch.setattr(Checkpointer, "save", real)
    assert genjax.load_run(tmp_path)[2].step == 100


def send_at(monkeypatch, target, name, *signums, after=False):
    """Patch ``target.name`` to deliver ``signums`` to this process when called (before or after the call)."""
    real = getattr(target, name)

    def patched(*args, **kwargs):
        if after:
            result = real(*args, **kwargs)
        for signum in signums:
            os.kill(os.getpid(), signum)
        return result if after else real(*args, **kwargs)

    monkeypatch.setattr(target, name, patched)


def test_a_signal_before_the_loop_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    from genjax.core import data

    send_at(monkeypatch, data, "load", signal.SIGTERM)
    assert run(["--workdir", str(tmp_path / "run"), *TINY]) == 143
    assert "stopped by SIGTERM" in one_line(capsys)
    assert not (tmp_path / "run").exists()


def test_a_signal_during_the_final_evaluation_keeps_the_run_and_resume_finishes_it(tmp_path, capsys, monkeypatch):
    from genjax.eval import evaluate

    send_at(monkeypatch, evaluate, "evaluate", signal.SIGINT)
    assert run(["--workdir", str(tmp_path), *TINY]) == 130
    assert "stopped by SIGINT; checkpoints already saved are kept" in one_line(capsys)
    assert not (tmp_path / "eval.json").exists() and genjax.load_run(tmp_path)[2].step == 200
    monkeypatch.undo()
    assert run(["--workdir", str(tmp_path), "--resume", *TINY]) == 0
    assert json.loads((tmp_path / "eval.json").read_text())["steps"] == 200


@pytest.mark.parametrize("signums,code", [((signal.SIGTERM,), 143), ((signal.SIGINT, signal.SIGTERM), 143)])
def test_signals_during_the_last_save_are_never_swallowed(tmp_path, capsys, monkeypatch, signums, code):
    """One signal during the final save: the run is complete but the stop is reported (not exit 0); a second
    signal during a save waits until the checkpoint is whole."""
    send_at(monkeypatch, Checkpointer, "save", *signums)
    assert run(["--workdir", str(tmp_path), *TINY[2:], "--steps", "100", "--checkpoint-every", "0"]) == code
    assert "stopped by" in one_line(capsys)
    assert not list((tmp_path / "checkpoints").glob(f"*{TMP_SUFFIX}*"))
    monkeypatch.undo()
    assert genjax.load_run(tmp_path)[2].step == 100


def test_overwrite_keeps_the_old_run_until_the_new_one_has_a_checkpoint(digits, tiny_config, tmp_path):
    genjax.fit(ae, tiny_config, digits, steps=100, workdir=tmp_path, **FAST)
    old = (tmp_path / "metrics.jsonl").read_text()
    for _ in range(2):  # a second failed overwrite keeps the same complete run aside
        with pytest.raises(TrainingDiverged, match="no checkpoint was saved before it"):
            genjax.fit(exploding_family(20), tiny_config, digits, steps=100, workdir=tmp_path, overwrite=True,
                       **FAST)
        previous = tmp_path / rundir.PREVIOUS_RUN
        assert (previous / "metrics.jsonl").read_text() == old
        assert genjax.load_run(previous)[2].step == 100
    genjax.fit(ae, tiny_config, digits, steps=100, workdir=tmp_path, overwrite=True, seed=3, **FAST)
    assert not (tmp_path / rundir.PREVIOUS_RUN).exists()
    assert (tmp_path / "metrics.jsonl").read_text() != old and genjax.load_run(tmp_path)[2].step == 100


def subset(digits, classes, train_rows, test_rows):
    """Digits of ``classes`` only, ``train_rows`` and ``test_rows`` of them, relabelled 0..K-1."""
    def take(x, y, rows):
        keep = np.isin(y, classes)
        return x[keep][:rows], np.searchsorted(classes, y[keep][:rows])
    return data.Dataset("subset", *take(digits.x_train, digits.y_train, train_rows),
                        *take(digits.x_test, digits.y_test, test_rows))


@pytest.mark.parametrize("classes,train_rows,test_rows,class_measures", [
    ([3, 5], 300, 60, True),  # two classes: the classifier's batch (128) fits
    ([3, 5], 40, 25, True),  # fewer rows than the classifier's batch: it follows the data
    ([7], 100, 30, False),  # one class: no classifier, the other measures
    ([0, 1, 2], 30, 10, False),  # too few test rows for nearest-neighbour measures
])
def test_the_final_evaluation_fits_any_labelled_data(digits, tiny_gan_config, tmp_path, classes, train_rows, test_rows,
                                                      class_measures):
    from genjax import experiment

    dataset = subset(digits, np.array(classes), train_rows, test_rows)
    outcome = experiment.train_and_evaluate("gan", tiny_gan_config, dataset, workdir=tmp_path, steps=20,
                                            steps_per_call=10, eval_every=0, checkpoint_every=0, progress=False)
    report = json.loads((tmp_path / "eval.json").read_text())
    assert np.isfinite(report["data_frechet"]) and outcome.report == report
    assert ("classes_covered" in report) == class_measures


def test_a_dgn_class_without_training_data_is_refused_before_training(digits, tmp_path):
    from genjax import dgn

    gap = subset(digits, np.array([0, 1, 2]), 300, 60)
    gap = data.Dataset("gap", gap.x_train, np.where(gap.y_train == 1, 2, gap.y_train), gap.x_test, gap.y_test)
    with pytest.raises(DataError, match=r"classes 1 of 0..2 have no training examples in gap"):
        genjax.fit(dgn, dgn.Config(head_dims=(8,), samples_per_head=4, batch_size=8), gap, steps=10, workdir=tmp_path,
                   steps_per_call=10, eval_every=0, progress=False)
    assert not (tmp_path / "config.json").exists()


def test_api_misuse_gets_a_typed_error_naming_the_problem(digits, tiny_config, tiny_gan_config):
    import jax

    from genjax import gan, vae

    batch = {"x": digits.x_train[:32], "y": digits.y_train[:32]}
    ae_state = ae.init(jax.random.key(0), tiny_config, batch)
    with pytest.raises(ConfigError, match=r"genjax.gan got a genjax.models.autoencoder.Config; pass a genjax.gan"):
        gan.train_step(ae_state, batch, jax.random.key(1))
    with pytest.raises(ConfigError, match="genjax.vae got a genjax.models.autoencoder.Config"):
        vae.sample(ae_state, jax.random.key(1), 4)
    with pytest.raises(ConfigError, match="genjax.autoencoder got a genjax.models.gan.Config"):
        ae.init(jax.random.key(0), tiny_gan_config, batch)
    with pytest.raises(ConfigError, match="batch\\['x'\\] must hold floats"):
        ae.train_step(ae_state, {"x": (batch["x"] * 255).astype(np.uint8)}, jax.random.key(1))
    with pytest.raises(ConfigError, match="batch\\['y'\\] must hold integer class indices"):
        ae.train_step(ae_state, {"x": batch["x"], "y": batch["y"].astype(np.float32)}, jax.random.key(1))
    gan_state = gan.init(jax.random.key(0), tiny_gan_config, {"x": digits.x_train[:16]})
    for n in (0, -3, 2.5):
        with pytest.raises(ConfigError, match="number of samples n must be a positive integer"):
            gan.sample(gan_state, jax.random.key(1), n)
    for seed in (-1, 2**32, 1.5):
        with pytest.raises(ConfigError, match="a seed must be an integer in 0..4294967295"):
            genjax.fit(ae, tiny_config, digits, steps=10, seed=seed, **{**FAST, "steps_per_call": 10})


@pytest.mark.parametrize("edit,message", [
    (lambda d: {**d, "config": {**d["config"], "latent_dim": 6}}, "hold another model than the config describes"),
    (lambda d: [d], "is malformed: expected an object with model"),
    (lambda d: {**d, "data_shape": "8x8"}, "is malformed"),
    (lambda d: {**d, "runs": {"kernel_encoder": {"model": "autoencoder"}}}, "optionally runs"),
])
def test_a_config_json_edited_into_another_shape_is_one_line_and_moves_nothing(tmp_path, capsys, edit, message):
    assert run(["--workdir", str(tmp_path), *TINY[2:], "--steps", "100"]) == 0
    capsys.readouterr()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    assert run(["--workdir", str(tmp_path), "--resume", "--steps", "200", *TINY[2:8], "--no-progress"]) == 2
    assert message in one_line(capsys)
    with pytest.raises(genjax.RunError, match=message):
        genjax.load_run(tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["100"]
    assert not (tmp_path / rundir.DAMAGED_CHECKPOINTS).exists()
