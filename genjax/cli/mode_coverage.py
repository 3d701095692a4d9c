"""Mode coverage on PacGAN's 2-D mixtures: several independent trials, compared with PacGAN's Table 1.

    genjax-mode-coverage --dataset ring --trials 10 --workdir runs/ring

Each trial trains from scratch with seed = trial index on the mixture without its labels (an
unconditional model: a DGN gets one head), draws 2,500 samples and scores them with
:func:`genjax.eval.measures.mode_coverage`. Writes ``results.json`` (per-trial figures, mean and
standard error, the config, PacGAN's rows and the true-data ceiling), ``samples_trial{i}.npy`` and
``samples.png`` (every trial's samples over the modes). Exit codes as ``genjax-train``.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from genjax.cli import common
from genjax.core import config as cfg_lib
from genjax.core import data
from genjax.core.errors import ConfigError, RunError
from genjax.eval import measures, plots
from genjax.eval.evaluate import EVAL_SAMPLES
from genjax.models import registry
from genjax.train.loop import fit
from genjax.train.steps import run_config

PROG = "genjax-mode-coverage"
MEASURES = ("modes", "high_quality", "reverse_kl")
# Lin et al. 2018, Table 1 (mean of 10 trials, 2,500 samples): modes, high-quality fraction, reverse KL.
PACGAN_TABLE = {
    "ring": {"GAN": (6.3, 0.982, 0.45), "ALI": (6.6, 0.976, 0.36), "PacGAN2": (7.9, 0.956, 0.07),
             "PacGAN3": (7.8, 0.977, 0.10), "PacGAN4": (7.8, 0.959, 0.07)},
    "grid": {"GAN": (17.3, 0.948, 0.70), "ALI": (24.1, 0.957, 0.14), "PacGAN2": (23.8, 0.913, 0.13),
             "PacGAN3": (24.6, 0.942, 0.06), "PacGAN4": (24.8, 0.936, 0.04)},
}


def parser() -> common.Parser:
    samplers = tuple(name for name in registry.names() if registry.get(name).CAPABILITIES.samples)
    p = common.Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    common.add_config_arguments(p, samplers, "gan")
    p.add_argument("--dataset", choices=tuple(PACGAN_TABLE), default="ring")
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--steps", type=int, help="training steps per trial (default: the family's DEFAULT_STEPS)")
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--overwrite", action="store_true", help="replace results already in --workdir")
    return p


def summarise(trials: list[dict]) -> tuple[dict, dict]:
    """Mean and standard error of each measure over trials."""
    table = {m: np.array([t[m] for t in trials], float) for m in MEASURES}
    mean = {m: float(v.mean()) for m, v in table.items()}
    stderr = {m: float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0 for m, v in table.items()}
    return mean, stderr


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.trials <= 0 or (args.steps is not None and args.steps <= 0):
        raise ConfigError("--trials and --steps must be positive integers")
    family, config, preset_steps = common.family_and_config(args)
    if args.fields:
        print(common.fields_table(family, config))
        return
    steps = args.steps or preset_steps or family.DEFAULT_STEPS
    labelled = data.load(args.dataset)
    dataset = dataclasses.replace(labelled, y_train=None, y_test=None)  # unconditional: the modes are unlabelled
    config = run_config(family, cfg_lib.override(config, args.overrides), dataset, steps)  # as fit runs it
    if args.print_config:
        common.print_json({"model": family.NAME, "dataset": args.dataset, "steps": steps,
                           "config": cfg_lib.to_dict(config)})
        return
    results_path = args.workdir / "results.json"
    if results_path.exists() and not args.overwrite:
        raise RunError(f"{args.workdir} already holds results.json; pass --overwrite to replace it")
    try:
        args.workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot write to {args.workdir}: {exc.strerror}") from None
    trials, all_samples = [], []
    for trial in tqdm(range(args.trials), desc=f"{family.NAME} on {args.dataset}", unit="trial", dynamic_ncols=True):
        start = time.perf_counter()
        result = fit(family, config, dataset, steps=steps, seed=trial, progress=False, steps_per_call=500,
                     eval_every=0, checkpoint_every=0)
        samples = np.asarray(family.sample(result.state, jax.random.key(10_000 + trial), EVAL_SAMPLES))
        np.save(args.workdir / f"samples_trial{trial}.npy", samples)
        scores = measures.mode_coverage(samples, dataset.modes, dataset.mode_std)
        trials.append({"trial": trial, **scores, "seconds": round(time.perf_counter() - start, 2)})
        all_samples.append(samples)
        tqdm.write(f"trial {trial}: {scores['modes']} modes, {100 * scores['high_quality']:.1f}% high quality, "
                   f"reverse KL {scores['reverse_kl']:.4f} ({trials[-1]['seconds']:.0f} s)")
    mean, stderr = summarise(trials)
    ceiling = measures.mode_coverage(dataset.x_test[: EVAL_SAMPLES], dataset.modes, dataset.mode_std)
    results = {
        "dataset": args.dataset, "model": family.NAME, "preset": args.preset, "steps": steps,
        "config": cfg_lib.to_dict(config), "trials": trials, "mean": mean, "stderr": stderr,
        "true_data": ceiling,
        "pacgan_table1": {k: dict(zip(MEASURES, v)) for k, v in PACGAN_TABLE[args.dataset].items()},
    }
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    titles = [f"trial {t['trial']}: {t['modes']} modes, {100 * t['high_quality']:.1f}% HQ" for t in trials]
    plots.trial_scatters(all_samples, dataset.modes, titles, args.workdir / "samples.png")
    n_modes = len(dataset.modes)
    print(f"\n{args.dataset}: {args.trials} trials x {EVAL_SAMPLES} samples, {steps} steps each")
    print(f"{'':22s} {'modes (of ' + str(n_modes) + ')':>16s} {'high quality':>14s} {'reverse KL':>12s}")
    label = f"genjax {family.NAME}" + (f" ({args.preset})" if args.preset else "")
    print(f"{label:22s} {mean['modes']:9.2f} ± {stderr['modes']:4.2f} "
          f"{100 * mean['high_quality']:7.1f}% ± {100 * stderr['high_quality']:3.1f} "
          f"{mean['reverse_kl']:7.3f} ± {stderr['reverse_kl']:5.3f}")
    for name, (modes, hq, kl) in PACGAN_TABLE[args.dataset].items():
        print(f"{'PacGAN paper: ' + name:22s} {modes:9.1f}        {100 * hq:7.1f}%       {kl:7.2f}")
    print(f"{'true data (2,500)':22s} {ceiling['modes']:9d}        {100 * ceiling['high_quality']:7.1f}%       "
          f"{ceiling['reverse_kl']:7.3f}")
    print(f"wrote {args.workdir}/: results.json, samples.png, samples_trial{{0..{args.trials - 1}}}.npy")


entry = common.entry_point(main, PROG)

if __name__ == "__main__":
    entry()
