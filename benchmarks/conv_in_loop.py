"""Why XLA:CPU's own convolutions slow down inside a rolled loop: one layer's gradient step, alone and in loops.

    python -m benchmarks.conv_in_loop --json benchmarks/conv_in_loop.json      # 2 cores: about 2 minutes

One "step" is the gradient of ``sum(sin(layer(x)))`` with respect to input and kernel, for a layer of the
Fashion-MNIST conv defaults at batch 128, with XLA's own lowering (``genjax.nn.conv``'s ``how="xla"``) and with
genjax's patches lowering. Each is timed as one jitted step per call, as ``steps`` steps under a rolled
``lax.scan`` (a while loop) and under an unrolled one; the step's input changes every iteration (it is carried),
so nothing is hoisted. For each compiled program the script also counts, in XLA's optimised HLO, the
convolutions that stay ``convolution`` instructions (which XLA:CPU hands to its Eigen/oneDNN runtime kernels)
and those fused into loop fusions (which it emits as plain nested loops), which is where the time goes.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from genjax.nn import conv

LAYERS = {  # name -> (op, input shape, kernel shape, strides)
    "conv 28x28x1 -> 14x14x32": (conv.conv, (128, 28, 28, 1), (3, 3, 1, 32), (2, 2)),
    "conv 14x14x32 -> 7x7x64": (conv.conv, (128, 14, 14, 32), (3, 3, 32, 64), (2, 2)),
    "transposed 7x7x64 -> 14x14x32": (conv.conv_transpose, (128, 7, 7, 64), (3, 3, 64, 32), (2, 2)),
    "transposed 14x14x32 -> 28x28x1": (conv.conv_transpose, (128, 14, 14, 32), (3, 3, 32, 1), (2, 2)),
}


def step_of(op, strides, how):
    """``(x, kernel) -> (x', kernel')``: one gradient of ``sum(sin(op(x, kernel)))``, added back scaled so that the
    next iteration's inputs depend on this one's result."""
    def step(x, kernel):
        gx, gk = jax.grad(lambda a, b: jnp.sum(jnp.sin(op(a, b, strides, how))), argnums=(0, 1))(x, kernel)
        return x + 1e-6 * gx, kernel + 1e-6 * gk
    return step


def programs(step, steps: int) -> dict:
    """The three ways of running ``steps`` steps, as functions of ``(x, kernel)``."""
    def rolled(x, kernel):
        return jax.lax.fori_loop(0, steps, lambda _, c: step(*c), (x, kernel))

    def unrolled(x, kernel):
        return jax.lax.fori_loop(0, steps, lambda _, c: step(*c), (x, kernel), unroll=True)

    return {"one step per call": (jax.jit(step), 1), "rolled loop": (jax.jit(rolled), steps),
            "unrolled loop": (jax.jit(unrolled), steps)}


def convolution_counts(compiled) -> dict:
    """Convolutions in the optimised HLO: standalone instructions, and ones inside fusions."""
    text = compiled.as_text()
    fused = 0
    for block in re.split(r"\n(?=\S)", text):  # computations are separated by unindented lines
        if block.startswith("%fused") or block.lstrip().startswith("fused_computation"):
            fused += len(re.findall(r"= \S+ convolution\(", block))
    total = len(re.findall(r"= \S+ convolution\(", text))
    return {"convolutions": total, "in_fusions": fused}


def time_per_step(fn, steps_per_call: int, args, repeats: int) -> float:
    """Median seconds per step over ``repeats`` calls after a warm-up."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append((time.perf_counter() - t0) / steps_per_call)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.conv_in_loop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--steps", type=int, default=10, help="steps per loop (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per program (default 5)")
    args = parser.parse_args(argv)
    results = {}
    for name, (op, x_shape, k_shape, strides) in LAYERS.items():
        x = jax.random.normal(jax.random.key(0), x_shape)
        kernel = 0.1 * jax.random.normal(jax.random.key(1), k_shape)
        for how in ("xla", "patches"):
            row = {}
            for label, (fn, per_call) in programs(step_of(op, strides, how), args.steps).items():
                counts = convolution_counts(fn.lower(x, kernel).compile())
                row[label] = {"ms_per_step": 1e3 * time_per_step(fn, per_call, (x, kernel), args.repeats), **counts}
            results[f"{name}, {how}"] = row
            print(f"{name:32s} {how:8s} " + "  ".join(
                f"{label} {r['ms_per_step']:7.2f} ms ({r['convolutions']} conv, {r['in_fusions']} fused)"
                for label, r in row.items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"jax": jax.__version__, "steps": args.steps, "repeats": args.repeats,
                                         "layers": results}, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    sys.exit(main())
