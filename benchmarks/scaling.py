"""How a conv step's cost grows with batch size and width, genjax against PyTorch eager, in one run.

    python -m benchmarks.scaling --json benchmarks/scaling.json --plot benchmarks/scaling.png   # 10 min on 2 cores

Two workloads of the Fashion-MNIST defaults on random 28x28 images: the conv autoencoder and the DCGAN
with R1. Each is measured at batch 32 to 1,024 (widths x1) and at widths x1, x2, x4 (every conv channel
count and dense width multiplied; the default batch): genjax's fused loop (``genjax.fit``'s path, as in
``benchmarks/throughput.py``) and the PyTorch twin (``benchmarks/torch_reference.py``) in eager mode,
steps/s and examples/s, medians of timed blocks of about a second each. The figure puts both on the same
log-log axes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
from pathlib import Path

import jax
import numpy as np

from benchmarks import throughput
from genjax.train.steps import run_config

BATCHES = (32, 64, 128, 256, 512, 1024)
WIDTHS = (1, 2, 4)
WORKLOADS = {  # name -> (family, config, steps a block runs at batch 128 and width x1)
    "conv autoencoder": (*throughput.CONFIGS["conv autoencoder (28x28)"][:2], 48),
    "dcgan with R1": (*throughput.CONFIGS["dcgan (batch 64, R1)"][:2], 12),
}


def widened(cfg, factor: int):
    """``cfg`` with every conv channel count and dense width times ``factor``."""
    scale = lambda widths: tuple(factor * w for w in widths)
    changes = {"conv_channels": scale(cfg.conv_channels), "hidden_dims": scale(cfg.hidden_dims)}
    if hasattr(cfg, "d_hidden_dims"):
        changes["d_hidden_dims"] = scale(cfg.d_hidden_dims)
    return dataclasses.replace(cfg, **changes)


def point(family, cfg, ds, length: int, repeats: int, torch: bool) -> dict:
    """genjax's (and the twin's) steps/s and examples/s for one config."""
    row = throughput.measure_genjax(family, cfg, ds, length, repeats, per_step=False)
    out = {"batch_rows": row["batch_rows"], "genjax_steps_per_second": row["steps_per_second"],
           "genjax_examples_per_second": row["examples_per_second"], "flops_per_step": row["flops_per_step"]}
    if torch:
        peer = throughput.torch_peers(run_config(family, cfg, ds, 10**6), ds, length, repeats, compile=False)
        rate = peer.get("torch_eager_steps_per_second")
        out.update(torch_steps_per_second=rate, torch_examples_per_second=rate * row["batch_rows"] if rate else None)
    return out


def measure(repeats: int, torch: bool) -> dict:
    ds = throughput.random_images()
    results = {}
    for name, (family, cfg, base) in WORKLOADS.items():
        curves = {"batch": {}, "width": {}}
        for batch in BATCHES:
            length = max(2, base * 128 // batch)
            curves["batch"][batch] = point(family, dataclasses.replace(cfg, batch_size=batch), ds, length, repeats,
                                           torch)
            print(f"{name:18s} batch {batch:5d}: {curves['batch'][batch]}", flush=True)
        for factor in WIDTHS:
            length = max(2, base // factor**2)
            curves["width"][factor] = point(family, widened(cfg, factor), ds, length, repeats, torch)
            print(f"{name:18s} width x{factor}: {curves['width'][factor]}", flush=True)
        results[name] = curves
    return results


def plot(results: dict, path: Path, machine: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 2, figsize=(10, 4 * len(results)), squeeze=False)
    for row, (name, curves) in zip(axes, results.items()):
        for ax, (axis, unit, label) in zip(row, (("batch", "examples", "batch size"),
                                                 ("width", "steps", "width multiplier"))):
            xs = sorted(curves[axis], key=float)
            for peer, style in (("genjax", "o-"), ("torch", "s--")):
                ys = [curves[axis][x].get(f"{peer}_{unit}_per_second") for x in xs]
                if any(y is not None for y in ys):
                    ax.plot([float(x) for x in xs], [np.nan if y is None else y for y in ys], style,
                            label="genjax (fused loop)" if peer == "genjax" else "PyTorch eager")
            ax.set(xscale="log", yscale="log", xlabel=label, ylabel=f"{unit}/s", title=f"{name}: {unit}/s vs {label}")
            ax.set_xticks([float(x) for x in xs], [str(x) for x in xs])
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
    fig.suptitle(f"Cost of a conv training step ({machine})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--plot", type=Path, help="draw the curves into this PNG file")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks per point (median)")
    parser.add_argument("--no-torch", action="store_true", help="genjax only")
    args = parser.parse_args(argv)
    machine = f"{platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, jax {jax.__version__}"
    results = measure(args.repeats, torch=not args.no_torch)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "repeats": args.repeats, "workloads": results},
                                        indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        plot(results, args.plot, machine)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    sys.exit(main())
