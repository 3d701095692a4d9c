"""A hyperparameter sweep in one program against the same runs as separate processes, in one session.

    python -m benchmarks.sweep --json benchmarks/sweep.json   # about 17 min on 2 cores
    python -m benchmarks.sweep --devices 1 --runs-per-group 27 ...   # one device, all 27 runs vmapped together

The GAN on the digits (its default preset), 3 generator learning rates x 3 R1 weights x 3 seeds = 27 runs of
``--steps`` steps: once as ``experiments.sweep`` (one process, one compiled program, then each run's full
evaluation), and once as 27 ``experiments.train`` processes one after the other (``--eval-every 0``, so that both
evaluate each run once, at its end). The sweep runs as a user runs it: its own choice of devices and groups unless
``--devices`` / ``--runs-per-group`` force them. Wall time counts from each process's start to its exit. Also reports
how far each run's final generator parameters are from its separate run's (float rounding, grown over the steps).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

import genjax

LEARNING_RATES = (5e-4, 1e-3, 2e-3)
R1_WEIGHTS = (0.1, 1.0, 10.0)
SEEDS = 3
COMMON = ["--model", "gan", "--dataset", "digits", "--no-progress"]


def timed(command: list[str], devices: int | None = None) -> float:
    """Seconds from the start of ``command`` (a ``python -m`` module and its arguments) to its exit, with ``devices``
    forced CPU devices (None: no XLA_FLAGS, the command's own choice); it must succeed."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if devices is not None:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip().splitlines()[-1]}")
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--devices", type=int, help="split the sweep's runs over this many forced CPU devices (default: "
                                               "the script's choice)")
    p.add_argument("--runs-per-group", type=int, help="the sweep's --runs-per-group (default: the script's choice)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="genjax-sweep-bench-"))
    steps = ["--steps", str(args.steps)]
    sweep_seconds = timed(["experiments.sweep", *COMMON, *steps, "--workdir", str(root / "sweep"), "--seeds",
                           str(SEEDS), "--sweep", "g_learning_rate=" + ",".join(map(str, LEARNING_RATES)),
                           "--sweep", "r1_weight=" + ",".join(map(str, R1_WEIGHTS)),
                           *([] if args.devices is None else ["--devices", str(args.devices)]),
                           *([] if args.runs_per_group is None else ["--runs-per-group", str(args.runs_per_group)])],
                          args.devices)
    print(f"sweep in one program: {sweep_seconds:.1f} s", flush=True)
    separate, distances = [], []
    for lr, r1, seed in itertools.product(LEARNING_RATES, R1_WEIGHTS, range(SEEDS)):
        workdir = root / "separate" / f"{lr}-{r1}-{seed}"
        separate.append(timed(["experiments.train", *COMMON, *steps, "--workdir", str(workdir), "--seed", str(seed),
                               "--eval-every", "0", "--set", f"g_learning_rate={lr}", "--set", f"r1_weight={r1}"]))
        print(f"separate run {len(separate)}/27: {separate[-1]:.1f} s", flush=True)
        _, _, alone = genjax.load_run(workdir)
        _, _, swept = genjax.load_run(root / "sweep" / f"g_learning_rate={lr:g}_r1_weight={r1:g}" / f"seed-{seed}")
        pairs = zip(jax.tree.leaves(alone.params["generator"]), jax.tree.leaves(swept.params["generator"]))
        distances.append(max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in pairs))
    summary = json.loads((root / "sweep" / "sweep.json").read_text())
    result = {
        "machine": f"{platform.machine()}, {jax.device_count()} {jax.devices()[0].platform} device(s), "
                   f"jax {jax.__version__}",
        "steps": args.steps, "runs": len(separate), "sweep_devices": summary["devices"],
        "sweep_runs_per_group": summary["runs_per_group"],
        "sweep_seconds": round(sweep_seconds, 1),
        "sweep_parts_seconds": {k: round(v, 1) for k, v in summary["seconds"].items()},
        "separate_seconds_total": round(sum(separate), 1),
        "separate_seconds_median": round(float(np.median(separate)), 1),
        "speedup": round(sum(separate) / sweep_seconds, 2),
        "max_generator_parameter_distance": float(np.max(distances)),
        "median_generator_parameter_distance": float(np.median(distances)),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
