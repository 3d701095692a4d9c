"""Jit throughput of genjax's training steps, against PyTorch and the naive JAX pattern, in one run.

    python -m benchmarks.throughput --json benchmarks/results-cpu.json          # 2 cores: the conv ones took 15 min
    python -m benchmarks.throughput --quick                                    # about 1 minute

For each configuration: compile time, steps/s and examples/s of genjax's fused loop (the
``genjax.fit`` path: data on the device, ``steps_per_call`` steps under one ``lax.scan``, donated
state), FLOP per step from XLA's cost analysis of one compiled ``train_step`` (with XLA's own
convolutions: the network's FLOPs, not the extra work of the CPU's patches lowering), the achieved FLOP/s
and its fraction of this machine's float32 matmul peak, measured in the same run, and the call's
memory by XLA's memory analysis. The MLP configurations train on the 8x8 digits, the conv ones
(Fashion-MNIST's defaults: conv autoencoder and VAE, the DCGAN at batch 64 and 256 with and
without R1, and a compute-bound autoencoder with widths x4) on random 28x28 images. Peers in the
same run: the same step jitted alone and dispatched once per step (batches still drawn on the
device), PyTorch eager and ``torch.compile`` (``benchmarks/torch_reference.py``, if torch is installed),
the naive JAX GAN loop (two separately jitted updates per step, batches indexed on the host and
sent every step, keys split on the host), and S seeds in one vmapped program (on one device, and
split over every device) against S sequential runs. Every timing is the median over repeated
blocks; ratios compare numbers from this run only.

Run as a script, unless ``XLA_FLAGS`` already sets it, the host platform gets one XLA device per CPU
core (set in ``main`` before JAX starts a backend), so that the seeds benchmark can split seeds over
cores; everything else runs on the default device, as ``genjax.fit`` does. Importing this module
changes nothing.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import genjax
from genjax import autoencoder, data, dgn, gan, vae
from genjax.experiment import parameter_count
from genjax.models import presets
from genjax.nn import conv
from genjax.train.steps import compile_steps, fused_steps, run_config

HOST_DEVICES = "--xla_force_host_platform_device_count"
SMALL_GAN = presets.get("bench_gan_small").config
LARGE_GAN = presets.get("bench_gan_large").config
NAIVE_BLOCKS_PER_REPEAT = 3  # the naive loop is the noisiest figure: 3x the timed blocks of the others
DCGAN = presets.get("dcgan").config
CONV_VAE = presets.get("conv_vae").config
IMAGES = (28, 28, 1)  # the conv configurations train on random images of Fashion-MNIST's shape
CONFIGS = {  # name -> (family, config, steps per timed call, data: "digits" or "images")
    "autoencoder (default)": (autoencoder, autoencoder.Config(), 500, "digits"),
    "vae (default)": (vae, vae.Config(), 500, "digits"),
    "gan (default)": (gan, gan.Config(), 500, "digits"),
    "dgn (default, 10 heads)": (dgn, dgn.Config(), 50, "digits"),
    "gan small (64, batch 64)": (gan, SMALL_GAN, 500, "digits"),
    "gan large (1024, batch 512)": (gan, LARGE_GAN, 10, "digits"),
    "conv autoencoder (28x28)": (autoencoder, autoencoder.Config(), 100, "images"),
    "conv vae (28x28)": (vae, CONV_VAE, 100, "images"),
    "dcgan (batch 64, R1)": (gan, DCGAN, 50, "images"),
    "dcgan (batch 64, no R1)": (gan, dataclasses.replace(DCGAN, r1_weight=0.0), 50, "images"),
    "dcgan (batch 256, R1)": (gan, dataclasses.replace(DCGAN, batch_size=256), 20, "images"),
    "dcgan (batch 256, no R1)": (gan, dataclasses.replace(DCGAN, batch_size=256, r1_weight=0.0), 20, "images"),
    "conv autoencoder x4 widths": (autoencoder, autoencoder.Config(conv_channels=(128, 256),
                                                                   hidden_dims=(1024, 512)), 20, "images"),
}


def random_images(rows: int = 10_000, shape: tuple[int, ...] = IMAGES) -> data.Dataset:
    """``rows`` random 8-bit images of ``shape`` with labels 0..9: the conv configurations' data (a step's cost
    does not depend on the pixel values, and no download is needed)."""
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 256, (rows, *shape)) / 255).astype(np.float32)
    y = (np.arange(rows) % 10).astype(np.int32)
    return data.Dataset("random images", x, y, x[:1000], y[:1000])


def flops_of(compiled) -> float:
    """FLOP counted by XLA's cost analysis of a compiled function (0 when unavailable)."""
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", 0.0))


def block_rates(run, units: int, repeats: int) -> list[float]:
    """``units / seconds`` of each of ``repeats`` calls of ``run`` (which must block until done)."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        rates.append(units / (time.perf_counter() - t0))
    return rates


def median_rate(run, units: int, repeats: int) -> float:
    """Median of :func:`block_rates`."""
    return float(np.median(block_rates(run, units, repeats)))


def matmul_peak(sizes: tuple[int, ...] = (1024, 2048, 4096), repeats: int = 10) -> float:
    """float32 FLOP/s of jitted square matmuls: the best median over ``sizes``, this machine's practical peak."""
    best = 0.0
    matmul = jax.jit(jnp.matmul)
    for n in sizes:
        a = jax.random.normal(jax.random.key(0), (n, n))
        b = jax.random.normal(jax.random.key(1), (n, n))
        matmul(a, b).block_until_ready()
        best = max(best, median_rate(lambda a=a, b=b: matmul(a, b).block_until_ready(), 2 * n**3, repeats))
    return best


ARCHITECTURE_FIELDS = ("latent_dim", "hidden_dims", "d_hidden_dims", "head_dims", "num_heads", "batch_size", "n_critic",
                       "pack", "loss", "architecture", "conv_channels", "batch_norm", "r1_weight", "samples_per_head")


def architecture(cfg) -> dict:
    """The fields of ``cfg`` that set a network's shape and cost."""
    values = dataclasses.asdict(cfg)
    return {k: values[k] for k in ARCHITECTURE_FIELDS if k in values}


def memory_bytes(stats) -> int:
    """Device memory of one compiled call by XLA's memory analysis [bytes]: arguments (state, data), outputs and
    peak temporaries, less the donated state that outputs reuse."""
    return int(stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
               - stats.alias_size_in_bytes)


def measure_genjax(family, cfg, ds: data.Dataset, length: int, repeats: int, per_step: bool = True) -> dict:
    """genjax's fused loop on ``cfg``: rates, FLOPs, memory; with ``per_step``, also the same step dispatched
    once per step."""
    cfg = run_config(family, cfg, ds, 10**6)
    rows = family.batch_rows(cfg)
    arrays = jax.device_put(ds.train_arrays())
    state = family.init(jax.random.key(0), cfg, {k: v[:rows] for k, v in arrays.items()})
    key = jax.random.key(1)
    t0 = time.perf_counter()
    fused = compile_steps(fused_steps(family.train_step, rows, length), state, arrays, key)
    compile_seconds = time.perf_counter() - t0
    memory = fused.memory_analysis()
    batch = {k: v[:rows] for k, v in arrays.items()}
    step = jax.jit(family.train_step)
    with conv.forced("xla"):  # the network's FLOPs: the CPU's patches lowering adds work (zero taps)
        flops = flops_of(step.lower(state, batch, key).compile())
    executed_flops = flops_of(step.lower(state, batch, key).compile())
    box = [fused(state, arrays, key)[0]]

    def call():
        box[0], metrics = fused(box[0], arrays, key)
        jax.block_until_ready(metrics)

    call()
    blocks = block_rates(call, length, repeats)
    rate = float(np.median(blocks))
    peer = {}
    if per_step:
        single = compile_steps(fused_steps(family.train_step, rows, 1), box[0], arrays, key)

        def one_call_per_step():  # the step jitted alone, its batch drawn on the device, one dispatch per step
            metrics = []
            for _ in range(length):
                box[0], m = single(box[0], arrays, key)
                metrics.append(m)
            jax.block_until_ready(metrics)

        one_call_per_step()
        peer["per_step_jit_steps_per_second"] = median_rate(one_call_per_step, length, repeats)
        peer["ratio_vs_per_step_jit"] = rate / peer["per_step_jit_steps_per_second"]
    return {"memory_bytes": memory_bytes(memory) if memory else None, **peer,
            "architecture": architecture(cfg), "parameters": parameter_count(state.params),
            "batch_rows": rows, "compile_seconds": compile_seconds,
            "steps_per_second": rate, "steps_per_second_blocks": blocks, "examples_per_second": rate * rows,
            "flops_per_step": flops, "flops_per_second": flops * rate, "executed_flops_per_step": executed_flops}


def naive_gan_updates():
    """The two separately jitted updates of the usual JAX GAN example: ``d_step(state, x, key)`` and
    ``g_step(state, key)``, each returning (state, loss); together the same math as ``gan.train_step``."""
    empty = jnp.zeros((0,))

    @jax.jit
    def d_step(state, x, key):
        state, metrics = gan.discriminator_update(state, x, empty, key)
        return state, metrics["d_loss"]

    @jax.jit
    def g_step(state, key):
        return gan.generator_update(state, None, key)

    return d_step, g_step


def naive_gan_blocks(cfg, ds: data.Dataset, steps: int, repeats: int) -> list[float]:
    """Steps/s of each timed block of the common GAN loop: jitted D update and jitted G update, host
    batches and keys. On 2 cores its rate swings within one process between about the one-core figure
    (Python dispatch and XLA take turns) and about 1.3x that (XLA overlaps the next dispatch), so it
    gets more blocks than the other figures and they are all kept."""
    state = gan.init(jax.random.key(0), cfg, {"x": ds.x_train[: cfg.batch_size]})
    d_step, g_step = naive_gan_updates()
    rng = np.random.default_rng(0)
    box = [state, jax.random.key(1)]

    def run():
        state, key = box
        for _ in range(steps):
            key, k_d, k_g = jax.random.split(key, 3)
            x = ds.x_train[rng.integers(0, len(ds.x_train), cfg.batch_size)]
            state, _ = d_step(state, x, k_d)
            state, _ = g_step(state, k_g)
        jax.block_until_ready(state)
        box[:] = [state, key]

    run()
    return block_rates(run, steps, repeats)


def torch_twin(cfg, ds: data.Dataset, compile: bool = False, device: str = "cpu"):
    """The PyTorch step of ``cfg`` (a GAN, autoencoder or VAE config resolved for ``ds``) on ``ds``'s training
    split (:mod:`benchmarks.torch_reference`)."""
    from benchmarks import torch_reference as ref

    shared = dict(architecture=cfg.architecture, channels=cfg.conv_channels, compile=compile, device=device)
    if isinstance(cfg, gan.Config):
        return ref.gan_step(ds.x_train, cfg.latent_dim, cfg.hidden_dims, cfg.d_hidden_dims, cfg.batch_size, cfg.pack,
                            cfg.r1_weight, cfg.g_learning_rate, (cfg.beta1, cfg.beta2), cfg.ema_decay,
                            batch_norm=cfg.batch_norm, **shared)
    if isinstance(cfg, vae.Config):
        return ref.vae_step(ds.x_train, cfg.latent_dim, cfg.hidden_dims, cfg.batch_size, cfg.output_std,
                            cfg.learning_rate, **shared)
    return ref.autoencoder_step(ds.x_train, cfg.latent_dim, cfg.hidden_dims, cfg.batch_size, cfg.noise_level,
                                cfg.learning_rate, **shared)


def torch_peers(cfg, ds: data.Dataset, steps: int, repeats: int, compile: bool) -> dict:
    """PyTorch eager (and compiled) steps/s of the GAN, autoencoder and VAE configs (``cfg`` resolved for ``ds``),
    or the reason there are none."""
    try:
        import torch

        from benchmarks import torch_reference as ref
    except ImportError:
        return {"torch": "not installed (pip install -e '.[bench]')"}
    torch.manual_seed(0)
    # the peers run on the chip genjax runs on: CUDA when JAX uses a GPU and this torch build has CUDA
    device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
    out = {"torch_version": torch.__version__, "torch_threads": torch.get_num_threads(), "torch_device": device}
    for mode in ("eager", "compile") if compile else ("eager",):
        try:
            step = torch_twin(cfg, ds, compile=mode == "compile", device=device)
            out["torch_parameters"] = step.parameters
            rate, warmup = ref.steps_per_second(step, steps, repeats, device=device)
            out[f"torch_{mode}_steps_per_second"] = rate
            out[f"torch_{mode}_warmup_seconds"] = warmup
        except Exception as exc:  # torch.compile fails in several ways (e.g. double backward for R1)
            out[f"torch_{mode}_steps_per_second"] = None
            out[f"torch_{mode}_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return out


def seeds_benchmark(cfg, ds: data.Dataset, seeds: int, steps: int) -> dict:
    """``seeds`` runs of ``steps`` steps: one after another (``genjax.fit``), in one vmapped program on one
    device, and in one program split over the most devices that divide ``seeds`` (``fit_seeds(devices=)``).
    Wall seconds include compilation (one compile per ``fit``, one per program); seed-steps/s do not."""
    t0 = time.perf_counter()
    rates = [genjax.fit(gan, cfg, ds, steps=steps, seed=seed, steps_per_call=steps, eval_every=0, checkpoint_every=0,
                 progress=False).steps_per_second for seed in range(seeds)]
    apart = time.perf_counter() - t0
    runs = {"sequential": {"devices": 1, "seconds": apart, "seed_steps_per_second": float(np.median(rates))}}
    split = max(d for d in range(1, jax.device_count() + 1) if seeds % d == 0)
    for devices in sorted({1, split}):
        t0 = time.perf_counter()
        result = genjax.fit_seeds(gan, cfg, ds, steps=steps, seeds=range(seeds), steps_per_call=steps,
                                    devices=devices)
        seconds = time.perf_counter() - t0
        runs[f"vmapped, {devices} device{'s' * (devices > 1)}"] = {
            "devices": devices, "seconds": seconds, "compile_seconds": result.compile_seconds,
            "seed_steps_per_second": seeds * result.steps_per_second, "speedup": apart / seconds}
    return {"seeds": seeds, "steps": steps, "device_kind": jax.devices()[0].device_kind,
            "config": architecture(cfg), "runs": runs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no torch.compile")
    parser.add_argument("--only", nargs="+", choices=tuple(CONFIGS), metavar="CONFIG", help="a subset of configs")
    args = parser.parse_args(argv)
    if HOST_DEVICES not in os.environ.get("XLA_FLAGS", ""):  # before JAX starts its CPU backend
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {HOST_DEVICES}={os.cpu_count()}".strip()
    repeats = 3 if args.quick else 7
    datasets = {"digits": data.load("digits"), "images": random_images()}
    peak = matmul_peak(repeats=5 if args.quick else 10)
    print(f"{platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, jax {jax.__version__}: "
          f"float32 matmul peak {peak / 1e9:.1f} GFLOP/s (best median of 1024/2048/4096 squares)")
    results = {}
    for name in args.only or CONFIGS:
        family, cfg, length, data_name = CONFIGS[name]
        ds = datasets[data_name]
        length = max(5, length // 5) if args.quick else length
        row = measure_genjax(family, cfg, ds, length, repeats)
        row["peak_fraction"] = row["flops_per_second"] / peak
        if family in (gan, autoencoder, vae):
            row.update(torch_peers(run_config(family, cfg, ds, 10**6), ds,
                                   max(5, length // 5), repeats, compile=not args.quick))
            eager = row.get("torch_eager_steps_per_second")
            row["ratio_vs_torch_eager"] = row["steps_per_second"] / eager if eager else None
            compiled = row.get("torch_compile_steps_per_second")
            row["ratio_vs_torch_compile"] = row["steps_per_second"] / compiled if compiled else None
        if family is gan and data_name == "digits" and cfg.hidden_dims[0] <= 128:
            blocks = naive_gan_blocks(cfg, ds, max(10, length // 5), NAIVE_BLOCKS_PER_REPEAT * repeats)
            row["naive_jax_steps_per_second"] = float(np.median(blocks))
            row["naive_jax_steps_per_second_blocks"] = blocks
            row["ratio_vs_naive_jax"] = row["steps_per_second"] / row["naive_jax_steps_per_second"]
        results[name] = row
        print(f"{name:28s} compile {row['compile_seconds']:5.1f} s  {row['steps_per_second']:8.1f} steps/s  "
              f"{row['examples_per_second']:9.0f} ex/s  {row['flops_per_second'] / 1e9:6.1f} GFLOP/s "
              f"({100 * row['peak_fraction']:4.1f}% of peak)"
              + "".join(f"  {label} {row[key]:.2f}x" for key, label in (
                  ("ratio_vs_torch_eager", "vs torch eager"), ("ratio_vs_torch_compile", "vs torch.compile"),
                  ("ratio_vs_naive_jax", "vs naive JAX"), ("ratio_vs_per_step_jit", "vs per-step jit"))
                  if row.get(key))
              + "".join(f" (naive blocks {min(b):,.0f} to {max(b):,.0f} steps/s)"
                        for b in [row.get("naive_jax_steps_per_second_blocks")] if b), flush=True)
    seeds = seeds_benchmark(SMALL_GAN, datasets["digits"], 8, 500 if args.quick else 2000)
    print(f"8 seeds of the small GAN, {seeds['steps']} steps each (wall s with compilation; seed-steps/s without):")
    for label, run in seeds["runs"].items():
        print(f"  {label:22s} {run['seconds']:6.1f} s  {run['seed_steps_per_second']:7.0f} seed-steps/s"
              + (f"  {run['speedup']:.2f}x faster than sequential" if "speedup" in run else ""))
    report = {"machine": {"processor": platform.processor() or platform.machine(), "device": str(jax.devices()[0]),
                          "device_kind": jax.devices()[0].device_kind, "device_count": jax.device_count(),
                          "cpu_count": os.cpu_count(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
                          "jax": jax.__version__, "python": platform.python_version()},
              "matmul_peak_flops_per_second": peak, "quick": args.quick, "repeats": repeats, "configs": results,
              "seeds": seeds}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    sys.exit(main())
