"""The loop's strategies timed against each other: the check of ``genjax.fit``'s ``loop_strategy="auto"`` rule.

    python -m benchmarks.strategies --json benchmarks/strategies.json      # 2 cores: about 5 minutes

For each configuration, ``genjax.train.steps.CompiledCalls`` (the object ``genjax.fit`` runs its calls through)
is built once per strategy (``scan``: the steps of a call under a rolled ``lax.scan``; ``unrolled``: every step
inlined; ``dispatch``: one compiled step per Python call, batches drawn on the device) and timed on the same
state and data: compile seconds, then the median steps/s over repeated calls of ``length`` steps after a warm-up
call (the unrolled program runs calls of at most ``UNROLLED_STEPS``: 100 inlined steps of the MLP autoencoder took
307 s to compile here, and ran at 0.38x the rolled scan). The rule passes on a configuration when auto's strategy is
the fastest or within ``--tolerance`` of it (the spread of repeated blocks on this shared machine). The MLP
configurations train on the 8x8 digits, the conv ones on random 28x28 images, as in ``benchmarks/throughput.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

from benchmarks.throughput import CONFIGS, block_rates, random_images
from genjax import data
from genjax.train.steps import LOOP_STRATEGIES, CompiledCalls, fused_steps, resolve_strategy, run_config

CHOSEN = {  # name in benchmarks.throughput.CONFIGS -> steps per timed call (every strategy)
    "autoencoder (default)": 100,
    "gan small (64, batch 64)": 100,
    "dgn (default, 10 heads)": 20,
    "conv autoencoder (28x28)": 20,
    "conv vae (28x28)": 20,
    "dcgan (batch 64, R1)": 10,
}
UNROLLED_STEPS = 10  # the unrolled program's call length: its compile time grows with every inlined step


def measure(family, cfg, ds: data.Dataset, length: int, repeats: int) -> dict:
    """Compile seconds and steps/s (median and blocks) of each strategy on one configuration."""
    cfg = run_config(family, cfg, ds, 10**6)
    rows = family.batch_rows(cfg)
    arrays = jax.device_put(ds.train_arrays())
    key = jax.random.key(1)
    rates = {}
    for strategy in LOOP_STRATEGIES:
        state = family.init(jax.random.key(0), cfg, {k: v[:rows] for k, v in arrays.items()})
        calls = CompiledCalls(lambda n, unroll: fused_steps(family.train_step, rows, n, unroll=unroll), strategy)
        steps = min(length, UNROLLED_STEPS) if strategy == "unrolled" else length
        call = calls.get(steps, state, arrays, key)
        box = [call(state, arrays, key)[0]]  # warm-up

        def run(call=call, box=box):
            box[0], metrics = call(box[0], arrays, key)
            jax.block_until_ready(metrics)

        blocks = block_rates(run, steps, repeats)
        rates[strategy] = {"steps_per_call": steps, "compile_seconds": calls.compile_seconds,
                           "steps_per_second": float(np.median(blocks)), "steps_per_second_blocks": blocks}
    return rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.strategies", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--only", nargs="+", choices=tuple(CHOSEN), metavar="CONFIG", help="a subset of configs")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per strategy (default 7)")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="auto passes within this fraction of the fastest strategy (default 0.05)")
    args = parser.parse_args(argv)
    auto = resolve_strategy("auto")
    datasets = {"digits": data.load("digits"), "images": random_images()}
    print(f"{platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, jax {jax.__version__}, "
          f"load {os.getloadavg()[0]:.2f}; auto picks {auto}", flush=True)
    results = {}
    for name in args.only or CHOSEN:
        family, cfg, _, data_name = CONFIGS[name]
        length = CHOSEN[name]
        rates = measure(family, cfg, datasets[data_name], length, args.repeats)
        fastest = max(rates, key=lambda s: rates[s]["steps_per_second"])
        share = rates[auto]["steps_per_second"] / rates[fastest]["steps_per_second"]
        results[name] = {"steps_per_call": length, "strategies": rates, "fastest": fastest,
                         "auto_share_of_fastest": share, "rule_holds": share >= 1 - args.tolerance}
        print(f"{name:28s} " + "  ".join(f"{s} {r['steps_per_second']:8.1f} steps/s ({r['compile_seconds']:5.1f} s "
                                        f"compile)" for s, r in rates.items())
              + f"  -> auto {share:.2f} of the fastest ({fastest})", flush=True)
    report = {"machine": {"processor": platform.processor() or platform.machine(),
                          "device_kind": jax.devices()[0].device_kind, "cpu_count": os.cpu_count(),
                          "jax": jax.__version__, "load_at_end": os.getloadavg()[0]},
              "auto": auto, "repeats": args.repeats, "tolerance": args.tolerance,
              "time": time.strftime("%Y-%m-%d %H:%M"), "configs": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    if not all(r["rule_holds"] for r in results.values()):
        print("the auto rule loses on: " + ", ".join(n for n, r in results.items() if not r["rule_holds"]))
        sys.exit(1)


if __name__ == "__main__":
    main()
