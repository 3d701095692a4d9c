"""Write a random 2-D Gaussian mixture as ``.npz`` (``x``, ``y``, ``modes``, ``mode_std``), for testing
that a generative model's defaults capture modes it was never tuned on.

    genjax-make-mixture --modes 12 --std 0.05 --seed 7 --out mixture.npz

Centres are drawn uniformly in ``[-extent, extent]^2``, at least ``6 * std`` apart (so the
high-quality discs of mode coverage do not overlap); components have equal weight.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from genjax.cli import common
from genjax.core.errors import ConfigError

PROG = "genjax-make-mixture"


def mixture(n_modes: int, std: float, extent: float, n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` points from ``n_modes`` equal-weight isotropic Gaussians; labels are mode indices."""
    rng = np.random.default_rng(seed)
    modes: list[np.ndarray] = []
    for _ in range(100_000):
        if len(modes) == n_modes:
            break
        c = rng.uniform(-extent, extent, 2)
        if all(np.linalg.norm(c - m) >= max(6 * std, 0.1 * extent) for m in modes):
            modes.append(c)
    if len(modes) < n_modes:
        raise ConfigError(f"cannot place {n_modes} modes {6 * std:g} apart in [-{extent:g}, {extent:g}]^2; "
                          "use fewer modes, a smaller std or a larger extent")
    centres = np.array(modes, np.float32)
    labels = rng.integers(0, n_modes, n).astype(np.int32)
    x = (centres[labels] + std * rng.standard_normal((n, 2))).astype(np.float32)
    return {"x": x, "y": labels, "modes": centres, "mode_std": np.float32(std)}


def main(argv: list[str] | None = None) -> None:
    p = common.Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", type=int, default=12)
    p.add_argument("--std", type=float, default=0.05)
    p.add_argument("--extent", type=float, default=5.0)
    p.add_argument("--n", type=int, default=100_000, help="points (the loader holds out 20% for testing)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.modes <= 0 or args.std <= 0 or args.extent <= 0 or args.n < 2:
        raise ConfigError("--modes, --std and --extent must be positive and --n at least 2")
    np.savez(args.out, **mixture(args.modes, args.std, args.extent, args.n, args.seed))
    print(f"wrote {args.out}: {args.n} points from {args.modes} Gaussians (std {args.std:g})")


entry = common.entry_point(main, PROG)

if __name__ == "__main__":
    entry()
