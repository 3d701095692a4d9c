"""How genjax's convolutions are lowered on XLA:CPU, measured: XLA's own convolution against patches and one
dot, and for transposed convolutions also the spread-out input (zeros between pixels, then a patches dot)
that the sub-pixel lowering replaced. Shapes are those of the Fashion-MNIST conv defaults (batch 128 for
training, 512 for evaluation).

    python -m benchmarks.conv_lowering [--repeats 20] [--out benchmarks/conv_lowering.json]

Prints, per layer and shape, the median milliseconds of the forward pass and of the gradient (with respect
to input and kernel) of each lowering, each compiled once with ``jax.jit`` and timed after a warm-up call.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from genjax.nn import conv

CASES = [  # (layer, input shape, kernel shape, strides)
    ("conv", (128, 28, 28, 1), (3, 3, 1, 32), (2, 2)),
    ("conv", (128, 14, 14, 32), (3, 3, 32, 64), (2, 2)),
    ("conv_transpose", (128, 7, 7, 64), (3, 3, 64, 32), (2, 2)),
    ("conv_transpose", (128, 14, 14, 32), (3, 3, 32, 1), (2, 2)),
    ("conv_transpose", (512, 7, 7, 64), (3, 3, 64, 32), (2, 2)),
    ("conv_transpose", (512, 14, 14, 32), (3, 3, 32, 1), (2, 2)),
]


def spread_transpose(x: jax.Array, kernel: jax.Array, strides: tuple[int, int]) -> jax.Array:
    """The former CPU lowering of a SAME transposed convolution: the input spread out by its stride (zeros
    between pixels, ``lax.pad``'s interior padding), then a VALID patches dot over every output pixel."""
    kh, kw = kernel.shape[:2]
    pads = [conv._transpose_padding(k, s) for k, s in zip((kh, kw), strides, strict=True)]
    spread = jax.lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (*pads[0], strides[0] - 1),
                                                     (*pads[1], strides[1] - 1), (0, 0, 0)))
    return conv._patch_dot(spread, kernel, (1, 1))


def lowerings(layer: str) -> dict:
    if layer == "conv":
        return {"xla": lambda x, k, s: conv.conv(x, k, s, "xla"),
                "patches": lambda x, k, s: conv.conv(x, k, s, "patches")}
    return {"xla": lambda x, k, s: conv.conv_transpose(x, k, s, "xla"), "spread": spread_transpose,
            "sub-pixel": lambda x, k, s: conv.conv_transpose(x, k, s, "patches")}


def median_ms(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("conv_lowering.json"))
    args = parser.parse_args(argv)
    rows = []
    for layer, shape, kernel_shape, strides in CASES:
        x = jax.random.normal(jax.random.key(0), shape)
        kernel = 0.1 * jax.random.normal(jax.random.key(1), kernel_shape)
        for name, op in lowerings(layer).items():
            forward = jax.jit(lambda x, k, op=op, s=strides: op(x, k, s))
            grad = jax.jit(jax.grad(lambda x, k, op=op, s=strides: jnp.sum(jnp.sin(op(x, k, s))), argnums=(0, 1)))
            row = {"layer": layer, "input": list(shape), "kernel": list(kernel_shape), "lowering": name,
                   "forward_ms": round(median_ms(forward, x, kernel, repeats=args.repeats), 2),
                   "gradient_ms": round(median_ms(grad, x, kernel, repeats=args.repeats), 2)}
            rows.append(row)
            print(f"{layer:15s} {shape!s:20s} {name:10s} forward {row['forward_ms']:8.2f} ms  "
                  f"gradient {row['gradient_ms']:8.2f} ms", flush=True)
    args.out.write_text(json.dumps({"backend": jax.default_backend(), "devices": str(jax.devices()),
                                    "repeats": args.repeats, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
