"""Train one family on one data set and write a complete run directory.

    python -m experiments.train --model autoencoder --dataset digits --workdir runs/ae

Writes ``config.json``, ``metrics.jsonl``, ``eval.json``, ``loss_curve.png``, the family's figures
(``reconstructions.png`` for autoencoders) and ``checkpoints/``. Exit codes: 0 done; 2 bad usage,
config or data (one line on stderr); 3 training diverged (the last good checkpoint is kept).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from experiments.cli import Parser, run_main
from genjax import config as cfg_lib
from genjax import data, families, fit, plots, rundir
from genjax.errors import ConfigError

PROG = "experiments.train"


def parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=families.NAMES, default="autoencoder")
    p.add_argument("--dataset", default="digits", help=f"{', '.join(data.NAMES)}, or a path to .npz/.npy/images/IDX")
    p.add_argument("--workdir", type=Path, help="run directory (default runs/<model>-<dataset>)")
    p.add_argument("--steps", type=int, help="total training steps (default: the family's DEFAULT_STEPS)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="change a config field, e.g. --set latent_dim=2 --set hidden_dims=512,256 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run in --workdir from its newest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --workdir")
    p.add_argument("--steps-per-call", type=int, default=100, help="steps fused per compiled call = log interval")
    p.add_argument("--eval-every", type=int, default=1000, help="held-out evaluation interval in steps (0: off)")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="checkpoint interval in steps (0: only at end)")
    p.add_argument("--keep", type=int, default=3, help="checkpoints to keep")
    p.add_argument("--devices", type=int, help="train data-parallel on this many devices (default: one)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def build_config(family, args):
    """The family's default config (or, on --resume, the run's saved one) with --set applied."""
    base = family.Config()
    if args.resume:
        saved = rundir.read_description(args.workdir)
        base = family.Config(**cfg_lib.coerce(family.Config, saved.get("config", {})))
    return cfg_lib.override(base, args.overrides)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other; pass one")
    family = families.get(args.model)
    args.steps = family.DEFAULT_STEPS if args.steps is None else args.steps
    if args.steps <= 0 or args.steps_per_call <= 0 or args.keep <= 0:
        raise ConfigError("--steps, --steps-per-call and --keep must be positive integers")
    args.workdir = args.workdir or Path("runs") / f"{args.model}-{Path(args.dataset).stem}"
    config = build_config(family, args)
    dataset = data.load(args.dataset)
    result = fit(family, config, dataset, steps=args.steps, seed=args.seed, workdir=args.workdir,
                 steps_per_call=args.steps_per_call, eval_every=args.eval_every,
                 checkpoint_every=args.checkpoint_every, keep=args.keep, resume=args.resume,
                 overwrite=args.overwrite, progress=not args.no_progress, devices=args.devices)
    report = family.evaluate(result.state, dataset, full=True)
    report.update(steps=int(result.state.step), train_seconds=round(result.train_seconds, 3),
                  compile_seconds=round(result.compile_seconds, 3),
                  steps_per_second=round(result.steps_per_second, 1))
    (args.workdir / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    written = [plots.loss_curves(rundir.read_metrics(args.workdir), args.workdir / "loss_curve.png", args.model)]
    written += family.write_figures(result.state, dataset, args.workdir)
    print(f"{args.model} on {dataset.name}: {report['steps']} steps in {report['train_seconds']:.1f} s "
          f"(compile {report['compile_seconds']:.1f} s, {report['steps_per_second']:.0f} steps/s)")
    for key, value in report.items():
        if key not in ("steps", "train_seconds", "compile_seconds", "steps_per_second"):
            print(f"  {key:22s} {value:.4f}" if isinstance(value, float) else f"  {key:22s} {value}")
    for note in getattr(family, "EVAL_NOTES", ()):
        print(f"  note: {note}")
    print(f"wrote {args.workdir}/: eval.json, metrics.jsonl, config.json, checkpoints/, "
          + ", ".join(p.name for p in written))


if __name__ == "__main__":
    sys.exit(run_main(main, PROG))
