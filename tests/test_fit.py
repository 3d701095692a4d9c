"""The shared loop: files, exact resume, the divergence guard, run-directory safety, load_run."""
import dataclasses
import io
import json
import shutil
import sys
import types

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genjax
from genjax import autoencoder as ae
from genjax import gan
from genjax.core.errors import ConfigError, RunError, TrainingDiverged
from genjax.train import progress, rundir
from genjax.train.checkpoint import Checkpointer
from genjax.train.steps import CPU_COMPILER_OPTIONS, fused_steps

FAST = dict(steps_per_call=100, eval_every=200, checkpoint_every=100, progress=False)


def test_loss_falls_and_run_files_are_written(digits, tiny_config, tmp_path):
    result = genjax.fit(ae, tiny_config, digits, steps=400, workdir=tmp_path, **FAST)
    losses = [r["loss"] for r in result.history]
    assert [r["step"] for r in result.history] == [100, 200, 300, 400]
    assert losses[-1] < 0.6 * losses[0]
    assert "eval_test_mse" in result.history[1] and "eval_test_mse" not in result.history[0]
    assert result.compile_seconds > 0 and result.steps_per_second > 0 and int(result.state.step) == 400
    description = json.loads((tmp_path / "config.json").read_text())
    assert description["model"] == "autoencoder" and description["data_shape"] == [8, 8, 1]
    assert len(rundir.read_metrics(tmp_path)) == 4
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [200, 300, 400]  # keep=3


def test_load_run_round_trip(digits, tiny_config, tmp_path):
    result = genjax.fit(ae, tiny_config, digits, steps=200, workdir=tmp_path, **FAST)
    family, config, state = genjax.load_run(tmp_path)
    assert family is ae and config == tiny_config.resolved(digits.context(200))  # placeholders as the run filled them
    assert config.output == "sigmoid"
    chex.assert_trees_all_equal(jax.tree.map(np.asarray, state), jax.tree.map(np.asarray, result.state))
    x = jnp.asarray(digits.x_test[:4])
    chex.assert_trees_all_equal(ae.reconstruct(state, x), ae.reconstruct(result.state, x))
    _, _, earlier = genjax.load_run(tmp_path, step=100)
    assert int(earlier.step) == 100


@pytest.mark.parametrize("family", ["autoencoder", "gan"])
def test_resumed_run_equals_uninterrupted_run_bitwise(digits, tiny_config, tiny_gan_config, tmp_path, family):
    # The GAN case carries every kind of state: two optimizers, the EMA, BatchNorm statistics, n_critic > 1.
    gan_config = dataclasses.replace(tiny_gan_config, n_critic=2, batch_norm=True)
    family, config = (ae, tiny_config) if family == "autoencoder" else (gan, gan_config)
    straight = genjax.fit(family, config, digits, steps=400, workdir=tmp_path / "a", **FAST)
    genjax.fit(family, config, digits, steps=300, workdir=tmp_path / "b", **FAST)
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "300")  # as if killed before the step-300 save
    resumed = genjax.fit(family, config, digits, steps=400, workdir=tmp_path / "b", resume=True, **FAST)
    chex.assert_trees_all_equal(jax.tree.map(np.asarray, resumed.state), jax.tree.map(np.asarray, straight.state))
    steps_b = [r["step"] for r in rundir.read_metrics(tmp_path / "b")]
    assert steps_b == [100, 200, 300, 400]  # the record for step 300 was dropped and written again
    loss_a = [r["loss"] for r in rundir.read_metrics(tmp_path / "a")]
    assert loss_a == [r["loss"] for r in rundir.read_metrics(tmp_path / "b")]


def test_resume_before_the_first_checkpoint_starts_over_cleanly(digits, tiny_config, tmp_path):
    genjax.fit(ae, tiny_config, digits, steps=200, workdir=tmp_path, **FAST)
    shutil.rmtree(tmp_path / "checkpoints")  # as if killed before anything was saved
    result = genjax.fit(ae, tiny_config, digits, steps=100, workdir=tmp_path, resume=True, **FAST)
    assert int(result.state.step) == 100 and [r["step"] for r in rundir.read_metrics(tmp_path)] == [100]


@pytest.mark.parametrize("damage", [
    '{"step": 300, "loss": 0.1, "time_s"',  # a line cut off by a kill
    "\0" * 64,  # a NUL tail (a file system that lost the last block)
    '{"loss": 0.1}\n["step", 300]\n{"step": "300"}\n',  # lines that are JSON but not records
])
def test_resume_survives_a_damaged_metrics_log(digits, tiny_config, tmp_path, capsys, damage):
    genjax.fit(ae, tiny_config, digits, steps=200, workdir=tmp_path, **FAST)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write(damage)
    result = genjax.fit(ae, tiny_config, digits, steps=300, workdir=tmp_path, resume=True, **FAST)
    assert [r["step"] for r in rundir.read_metrics(tmp_path)] == [r["step"] for r in result.history] == [100, 200, 300]
    assert "unreadable line(s); kept 2 records up to step 200" in capsys.readouterr().err
    assert (tmp_path / "metrics.jsonl").read_text().endswith("}\n")  # whole lines again


def _damage_newest(checkpoints, how):
    """Damage ``checkpoints`` as a crash, a full disk or a stray ``mkdir`` might; returns the damaged step."""
    if how == "empty":
        (checkpoints / "999").mkdir()
        return 999
    newest = checkpoints / "200"
    if how == "truncated":
        for f in (newest / "default").rglob("*"):
            if f.is_file() and f.stat().st_size > 0 and f.parent.name == "d":
                f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif how == "missing files":
        shutil.rmtree(newest / "default" / "d")
    return 200


@pytest.mark.parametrize("how", ["empty", "truncated", "missing files", "non-finite"])
def test_resume_and_load_run_skip_a_damaged_newest_checkpoint(digits, tiny_config, tmp_path, capsys, how):
    genjax.fit(ae, tiny_config, digits, steps=200, workdir=tmp_path, **FAST)
    if how == "non-finite":  # restores fine but holds NaN: damaged, not a divergence to report on every resume
        checkpointer = Checkpointer(tmp_path / "checkpoints")
        state = checkpointer.restore_newest(genjax.load_run(tmp_path)[2])
        bad = state.replace(step=jnp.asarray(300, state.step.dtype),
                            params=jax.tree.map(lambda p: p * jnp.nan, state.params))
        checkpointer.save(bad)
        checkpointer.close()
        damaged = 300
    else:
        damaged = _damage_newest(tmp_path / "checkpoints", how)
    good = 100 if damaged == 200 else 200
    _, _, loaded = genjax.load_run(tmp_path)
    assert int(loaded.step) == good
    assert f"skipping the damaged checkpoint {tmp_path / 'checkpoints' / str(damaged)}" in capsys.readouterr().err
    result = genjax.fit(ae, tiny_config, digits, steps=300, workdir=tmp_path, resume=True, **FAST)
    assert int(result.state.step) == 300
    assert [r["step"] for r in rundir.read_metrics(tmp_path)] == [100, 200, 300]
    assert f"moved to {tmp_path / 'damaged-checkpoints' / str(damaged)}" in capsys.readouterr().err
    assert (tmp_path / "damaged-checkpoints" / str(damaged)).exists()
    assert int(genjax.load_run(tmp_path)[2].step) == 300


def test_every_checkpoint_damaged_or_a_missing_step_is_one_line(digits, tiny_config, tmp_path):
    genjax.fit(ae, tiny_config, digits, steps=100, workdir=tmp_path, **FAST)
    with pytest.raises(RunError, match="holds no checkpoint at step 700; steps: 100"):
        genjax.load_run(tmp_path, step=700)
    shutil.rmtree(tmp_path / "checkpoints" / "100" / "default" / "d")
    with pytest.raises(RunError, match="every checkpoint in .* is damaged \\(steps 100\\)"):
        genjax.load_run(tmp_path)


def exploding_family(at_step: int) -> types.ModuleType:
    """The autoencoder, but its loss reads NaN from step ``at_step`` on."""
    family = types.ModuleType("tests.exploding")
    for name in ("NAME", "Config", "DEFAULT_STEPS", "CAPABILITIES", "init", "batch_rows", "codes", "reconstruct",
                 "interpolate"):
        setattr(family, name, getattr(ae, name))

    @jax.jit
    def train_step(state, batch, key):
        state, metrics = ae.train_step(state, batch, key)
        return state, {**metrics, "loss": jnp.where(state.step >= at_step, jnp.nan, metrics["loss"])}

    family.train_step = train_step
    return family


def test_divergence_names_the_step_and_keeps_good_checkpoints(digits, tiny_config, tmp_path):
    with pytest.raises(TrainingDiverged) as info:
        genjax.fit(exploding_family(250), tiny_config, digits, steps=500, workdir=tmp_path, **FAST)
    assert info.value.step == 250 and np.isnan(info.value.loss)
    assert str(info.value).endswith("loss is nan at step 250; the newest good checkpoint (step 200) is kept")
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [100, 200]
    assert [r["step"] for r in rundir.read_metrics(tmp_path)] == [100, 200]
    with pytest.raises(TrainingDiverged) as info:  # before the first checkpoint
        genjax.fit(exploding_family(50), tiny_config, digits, steps=500, workdir=tmp_path / "early", **FAST)
    assert str(info.value).endswith("step 50; no checkpoint was saved before it")
    with pytest.raises(TrainingDiverged) as info:  # no workdir: nothing to say about files
        genjax.fit(exploding_family(50), tiny_config, digits, steps=500, **FAST)
    assert str(info.value) == "training diverged: loss is nan at step 50"


def test_existing_run_is_never_overwritten_silently(digits, tiny_config, tmp_path):
    genjax.fit(ae, tiny_config, digits, steps=100, workdir=tmp_path, **FAST)
    before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(RunError, match="already holds a run; pass --resume .* or --overwrite"):
        genjax.fit(ae, tiny_config, digits, steps=100, workdir=tmp_path, **FAST)
    assert (tmp_path / "metrics.jsonl").read_text() == before
    genjax.fit(ae, tiny_config, digits, steps=100, workdir=tmp_path, overwrite=True, seed=5, **FAST)
    assert (tmp_path / "metrics.jsonl").read_text() != before


def test_resume_with_another_config_is_refused(digits, tiny_config, tmp_path):
    genjax.fit(ae, tiny_config, digits, steps=100, workdir=tmp_path, **FAST)
    other = tiny_config.__class__(**{**tiny_config.__dict__, "latent_dim": 6})
    with pytest.raises(RunError, match="differs .* in config.latent_dim"):
        genjax.fit(ae, other, digits, steps=200, workdir=tmp_path, resume=True, **FAST)


@pytest.mark.parametrize("kwargs,message", [
    ({"steps": 0}, "steps must be a positive integer"),
    ({"steps": 100, "checkpoint_every": 150}, "multiple of steps_per_call=100"),
    ({"steps": 100, "eval_every": -100}, "eval_every must be 0"),
])
def test_bad_loop_arguments(digits, tiny_config, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        genjax.fit(ae, tiny_config, digits, **{**FAST, **kwargs})


def test_batch_larger_than_dataset_is_refused(digits):
    with pytest.raises(ConfigError, match="batch of 5000 examples .* is larger than the 1437 training examples"):
        genjax.fit("autoencoder", ae.Config(batch_size=5000), digits, steps=10, progress=False, steps_per_call=10,
                   eval_every=0, checkpoint_every=0)


def test_unknown_model_and_missing_run(tmp_path):
    with pytest.raises(ConfigError, match="unknown model 'gann'; valid choices: autoencoder, vae, gan, dgn"):
        genjax.fit("gann", None, None, steps=1)
    with pytest.raises(RunError, match="config.json is missing"):
        genjax.load_run(tmp_path)


@pytest.mark.parametrize("strategy", ["dispatch", "unrolled"])
def test_loop_strategies_train_the_same_run(digits, tiny_gan_config, tmp_path, strategy):
    """One dispatch per step gives the scan's bits (measured); an unrolled scan lets XLA fuse across steps, so its
    rounding may differ (measured 6e-8 after 120 steps): within 1e-6. config.json records the strategy."""
    args = dict(steps=20, steps_per_call=5, eval_every=0, checkpoint_every=0, progress=False)
    scan = genjax.fit(gan, tiny_gan_config, digits, **args)
    other = genjax.fit(gan, tiny_gan_config, digits, workdir=tmp_path, loop_strategy=strategy, **args)
    assert (scan.loop_strategy, other.loop_strategy) == ("scan", strategy)
    assert [r["step"] for r in other.history] == [5, 10, 15, 20]
    if strategy == "dispatch":
        chex.assert_trees_all_equal(scan.state.params, other.state.params)
        assert [r["loss"] for r in scan.history] == [r["loss"] for r in other.history]
    else:
        chex.assert_trees_all_close(scan.state.params, other.state.params, atol=1e-6, rtol=0)
    assert json.loads((tmp_path / "config.json").read_text())["loop_strategy"] == strategy
    with pytest.raises(RunError, match="differs .* in loop_strategy"):  # a resume keeps the run's strategy
        genjax.fit(gan, tiny_gan_config, digits, workdir=tmp_path, resume=True, **{**args, "steps": 25})


def test_unknown_loop_strategy_is_one_line(digits, tiny_config, tmp_path):
    with pytest.raises(ConfigError, match="unknown loop strategy 'rolled'; choose auto, scan, unrolled, dispatch"):
        genjax.fit(ae, tiny_config, digits, steps=10, steps_per_call=10, workdir=tmp_path, loop_strategy="rolled")
    assert not any(tmp_path.iterdir())  # refused before anything is written


def test_a_run_written_before_loop_strategies_resumes_as_a_scan(digits, tiny_config, tmp_path):
    args = dict(steps_per_call=10, eval_every=0, checkpoint_every=10, progress=False)
    genjax.fit(ae, tiny_config, digits, steps=10, workdir=tmp_path, **args)
    description = json.loads((tmp_path / "config.json").read_text())
    del description["loop_strategy"]
    (tmp_path / "config.json").write_text(json.dumps(description))
    assert int(genjax.fit(ae, tiny_config, digits, steps=20, workdir=tmp_path, resume=True, **args).state.step) == 20


def test_cpu_compiler_options_change_no_bit(digits, tiny_gan_config):
    """fit compiles with CPU_COMPILER_OPTIONS on the CPU; the steps must equal the default compile's, bitwise."""
    cfg = dataclasses.replace(tiny_gan_config, schedule="cosine", decay_steps=100)  # the default schedule's ops too
    data = jax.device_put(digits.train_arrays())
    results = []
    for options in ({}, CPU_COMPILER_OPTIONS):
        state = gan.init(jax.random.key(0), cfg, {"x": digits.x_train[:16]})
        run = fused_steps(gan.train_step, 16, 20).lower(state, data, jax.random.key(1))
        state, metrics = run.compile(compiler_options=options)(state, data, jax.random.key(1))
        results.append((state.params, state.opt_state, state.extra, metrics))
    chex.assert_trees_all_equal(*results)


def test_fit_compiles_with_the_cpu_options(digits, tiny_gan_config, monkeypatch):
    seen = []
    lowered_compile = jax.stages.Lowered.compile

    def spy(self, compiler_options=None, **kwargs):
        seen.append(compiler_options)
        return lowered_compile(self, compiler_options=compiler_options, **kwargs)

    monkeypatch.setattr(jax.stages.Lowered, "compile", spy)
    genjax.fit(gan, tiny_gan_config, digits, steps=2, steps_per_call=2, eval_every=0, checkpoint_every=0,
               progress=False)
    assert seen == [CPU_COMPILER_OPTIONS]


def test_progress_into_a_log_refreshes_at_start_and_end_only(digits, tiny_config, capsys):
    genjax.fit(ae, tiny_config, digits, steps=40, steps_per_call=2, eval_every=0, checkpoint_every=0)
    log = capsys.readouterr().err  # pytest's capture is not a terminal, like a batch job's stderr
    renders = [line for line in log.split("\r") if "autoencoder" in line]
    assert len(renders) == 2 and "0/40" in renders[0] and "40/40" in renders[-1] and "loss=" in renders[-1]


def test_progress_in_a_terminal_refreshes_as_tqdm_does(monkeypatch):

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    bar = progress.progress_bar(10, 0, "gan", disable=False)
    assert bar.mininterval == 0.1 < progress.LOG_REFRESH_SECONDS
    bar.close()
