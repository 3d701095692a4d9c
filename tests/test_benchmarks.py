"""The benchmark's pieces do what they claim (no timings are asserted: speed is measured by the benchmark)."""
import chex
import jax
import pytest

import genjax.experiment
from benchmarks import throughput
from genjax import autoencoder, gan
from genjax.nn import conv
from genjax.train.steps import run_config


def test_the_naive_peer_does_the_same_math_as_the_fused_step(digits, tiny_gan_config):
    batch = {"x": digits.x_train[:16]}
    state = gan.init(jax.random.key(0), tiny_gan_config, batch)
    key = jax.random.key(1)
    fused, _ = gan.train_step(state, batch, key)
    d_step, g_step = throughput.naive_gan_updates()
    naive, _ = d_step(state, batch["x"], jax.random.fold_in(key, 0))
    naive, _ = g_step(naive, jax.random.fold_in(key, 1))
    chex.assert_trees_all_close(naive, fused, atol=1e-6)


def test_measurement_reports_flops_and_rates(digits, tiny_config):
    row = throughput.measure_genjax(autoencoder, tiny_config, digits, length=5, repeats=1)
    assert row["flops_per_step"] > 0 and row["steps_per_second"] > 0 and row["compile_seconds"] > 0
    assert row["architecture"]["hidden_dims"] == (32,) and row["batch_rows"] == 32
    assert len(row["steps_per_second_blocks"]) == 1 and row["steps_per_second"] == row["steps_per_second_blocks"][0]


def test_naive_peer_keeps_every_timed_block(digits, tiny_gan_config):
    blocks = throughput.naive_gan_blocks(tiny_gan_config, digits, steps=2, repeats=3)
    assert len(blocks) == 3 and all(rate > 0 for rate in blocks)


def test_seeds_benchmark_runs_sequential_vmapped_and_split(digits, tiny_gan_config):
    report = throughput.seeds_benchmark(tiny_gan_config, digits, seeds=2, steps=4)
    assert list(report["runs"]) == ["sequential", "vmapped, 1 device", "vmapped, 2 devices"]
    for run in report["runs"].values():
        assert run["seconds"] > 0 and run["seed_steps_per_second"] > 0
    assert report["runs"]["vmapped, 2 devices"]["speedup"] > 0


def test_torch_peers_run_where_genjax_runs(digits, tiny_config, tiny_gan_config):
    pytest.importorskip("torch", reason="the bench extra (PyTorch) is not installed")
    for cfg in (tiny_gan_config, tiny_config):
        row = throughput.torch_peers(cfg, digits, steps=2, repeats=1, compile=False)
        assert row["torch_device"] == ("cuda" if jax.default_backend() == "gpu" else "cpu")
        assert row["torch_eager_steps_per_second"] > 0, row


@pytest.mark.parametrize("layer", ["conv", "conv_transpose"])
def test_every_conv_lowering_of_the_benchmark_computes_the_same_layer(layer):
    """benchmarks/conv_lowering.py times the same layer each way (the former spread lowering included)."""
    from benchmarks import conv_lowering

    x = jax.random.normal(jax.random.key(0), (2, 7, 7, 3))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
    outputs = {name: op(x, kernel, (2, 2)) for name, op in conv_lowering.lowerings(layer).items()}
    assert set(outputs) == ({"xla", "patches"} if layer == "conv" else {"xla", "spread", "sub-pixel"})
    for out in outputs.values():
        chex.assert_trees_all_close(out, outputs["xla"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", [n for n, c in throughput.CONFIGS.items() if c[3] == "images"])
def test_torch_twins_of_the_conv_configs_have_genjax_parameter_counts(name):
    """Each conv configuration's PyTorch twin holds as many parameters as genjax's networks, and steps."""
    pytest.importorskip("torch", reason="the bench extra (PyTorch) is not installed")
    family, cfg, _, _ = throughput.CONFIGS[name]
    images = throughput.random_images(rows=300)
    cfg = run_config(family, cfg, images, 100)
    assert cfg.architecture == "conv"
    state = family.init(jax.random.key(0), cfg, {"x": images.x_train[:2], "y": images.y_train[:2]})
    step = throughput.torch_twin(cfg, images)
    assert step.parameters == genjax.experiment.parameter_count(state.params)
    step()


def test_scaling_widens_every_layer_and_plots_both_peers(tmp_path):
    from benchmarks import scaling

    _family, cfg, _ = scaling.WORKLOADS["dcgan with R1"]
    wide = scaling.widened(cfg, 2)
    assert wide.conv_channels == tuple(2 * c for c in cfg.conv_channels) and wide.batch_size == cfg.batch_size
    curve = {x: {"genjax_examples_per_second": 100.0 * x, "genjax_steps_per_second": 10.0 / x,
                 "torch_examples_per_second": 50.0 * x, "torch_steps_per_second": None} for x in (1, 2, 4)}
    path = tmp_path / "scaling.png"
    scaling.plot({"w": {"batch": curve, "width": curve}}, path, "test machine")
    assert path.stat().st_size > 10_000


def test_strategies_benchmark_times_every_strategy(digits, tiny_config):
    from benchmarks import strategies
    rates = strategies.measure(autoencoder, tiny_config, digits, length=3, repeats=2)
    assert set(rates) == {"scan", "unrolled", "dispatch"}
    assert all(r["steps_per_second"] > 0 and len(r["steps_per_second_blocks"]) == 2 for r in rates.values())
    assert set(strategies.CHOSEN) <= set(throughput.CONFIGS)


def test_conv_in_loop_runs_each_program_and_counts_convolutions():
    from benchmarks import conv_in_loop
    x, kernel = jax.numpy.ones((2, 4, 4, 1)), jax.numpy.ones((3, 3, 1, 2))
    for label, (fn, per_call) in conv_in_loop.programs(conv_in_loop.step_of(conv.conv, (2, 2), "xla"), 2).items():
        inlined_steps = per_call if label == "unrolled loop" else 1  # a forward and two gradient convolutions each
        assert conv_in_loop.convolution_counts(fn.lower(x, kernel).compile())["convolutions"] == 3 * inlined_steps
        assert conv_in_loop.time_per_step(fn, per_call, (x, kernel), repeats=1) > 0
