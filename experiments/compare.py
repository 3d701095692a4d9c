"""Autoencoder, VAE, GANs and DGN on one data set with equal step budgets, and a report that compares them.

    python -m experiments.compare --workdir runs/compare

Trains every model of :data:`MODELS` for ``--steps`` steps (one run directory each, as
``experiments.train`` writes them), evaluates each on the held-out split with the same measures, and
writes ``report.md`` (a table, figures and a "which to choose" section computed from this run's
numbers), ``report.json`` (the same numbers) and the figures beside them. Exit codes as ``experiments.train``.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from experiments.cli import Parser, run_main
from genjax import autoencoder, data, dgn, fit, gan, metrics, plots, vae
from genjax import config as cfg_lib
from genjax.errors import ConfigError, RunError

PROG = "experiments.compare"
# name -> (family, config); every model trains for the same number of train_step calls.
MODELS = {
    "autoencoder": (autoencoder, autoencoder.Config()),
    "vae": (vae, vae.Config()),
    "gan (non_saturating)": (gan, gan.Config()),
    # Gulrajani et al. 2017's settings: 5 critic updates per generator update, Adam 1e-4 (0.5, 0.9), GP 10.
    "gan (wgan_gp)": (gan, gan.Config(loss="wgan_gp", r1_weight=0.0, n_critic=5, pack=1, g_learning_rate=1e-4,
                                      d_learning_rate=1e-4, beta2=0.9, schedule="constant")),
    "dgn": (dgn, dgn.Config()),
}
COLUMNS = (  # (key in a row, header, format)
    ("test_mse", "test MSE", ".4f"), ("probe_accuracy", "probe acc.", ".3f"), ("frechet", "Frechet", ".2f"),
    ("kid", "KID", ".3f"), ("precision", "precision", ".3f"), ("recall", "recall", ".3f"),
    ("density", "density", ".3f"), ("coverage", "coverage", ".3f"), ("classes_covered", "classes", "d"),
    ("parameters", "parameters", ","), ("steps_per_second", "steps/s", ".0f"), ("wall_seconds", "wall s", ".1f"),
)


def parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--dataset", default="digits", help="a labelled image data set (digits, or a path)")
    p.add_argument("--steps", type=int, default=4000, help="train_step calls per model (default 4000)")
    p.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS), metavar="MODEL",
                   help=f"a subset of: {', '.join(MODELS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace a report already in --workdir")
    p.add_argument("--no-progress", action="store_true")
    return p


def slug(name: str) -> str:
    return name.replace(" (", "-").replace(")", "").replace(" ", "-")


def parameter_count(params) -> int:
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))


def train_one(name: str, family, config, dataset: data.Dataset, args) -> dict:
    """Train, evaluate and draw one model; its run directory is ``workdir/<slug>``."""
    workdir = args.workdir / slug(name)
    start = time.perf_counter()
    result = fit(family, config, dataset, steps=args.steps, seed=args.seed, workdir=workdir, overwrite=True,
                 steps_per_call=250, eval_every=0, checkpoint_every=0, progress=not args.no_progress)
    report = family.evaluate(result.state, dataset, full=True)
    figures = family.write_figures(result.state, dataset, workdir)
    figures.append(plots.loss_curves(result.history, workdir / "loss_curve.png", name))
    wall = time.perf_counter() - start
    row = {**report, "parameters": parameter_count(result.state.params),
           "steps_per_second": result.steps_per_second, "compile_seconds": result.compile_seconds,
           "wall_seconds": wall, "steps": int(result.state.step), "config": cfg_lib.to_dict(result.state.config),
           "figures": {p.stem: str(p.relative_to(args.workdir)) for p in figures}}
    (workdir / "eval.json").write_text(json.dumps(row, indent=2, default=str) + "\n")
    if hasattr(family, "encode"):
        codes = family.encode(result.state, dataset.x_test)
        row["_codes"] = np.asarray(codes[0] if isinstance(codes, tuple) else codes)
    return row


def pca_row(dataset: data.Dataset, code_size: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """PCA at the autoencoders' code size: reconstruction and probe, and as a linear generative
    baseline, samples from a Gaussian fitted to the training codes, mapped back and clipped to [0, 1].
    Returns the measures, the samples and the test split's codes."""
    pca = metrics.fit_pca(dataset, code_size)
    codes = pca.transform(dataset.x_train.reshape(len(dataset.x_train), -1))
    rng = np.random.default_rng(0)
    drawn = rng.multivariate_normal(codes.mean(0), np.cov(codes, rowvar=False), metrics.EVAL_SAMPLES)
    samples = np.clip(pca.inverse_transform(drawn), 0.0, 1.0).reshape(-1, *dataset.data_shape).astype(np.float32)
    baseline = metrics.pca_scores(pca, dataset)
    row = {"test_mse": baseline["pca_test_mse"], "probe_accuracy": baseline["pca_probe_accuracy"],
           **metrics.sample_report(samples, dataset), "parameters": int(pca.components_.size + pca.mean_.size)}
    test_codes = pca.transform(dataset.x_test.reshape(len(dataset.x_test), -1))
    return row, samples, test_codes


def floor_row(rows: dict) -> dict:
    """Real data: the training split scored against the test split by the same measures."""
    any_row = next(r for r in rows.values() if "frechet_floor" in r)
    return {k: any_row[f"{k}_floor"] for k in metrics.FEATURE_MEASURES} | {"classes_covered": 10}


def cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None or isinstance(value, (str, bool)):
        return "-"
    return format(value, fmt)


GENERATIVE = ("vae", "gan (non_saturating)", "gan (wgan_gp)", "dgn", "PCA + Gaussian")


def conclusions(rows: dict, floor: dict) -> list[str]:
    """The "which to choose" bullets, each computed from this run's numbers."""
    lines = []
    coders = {n: r for n, r in rows.items() if r.get("test_mse") is not None}
    best_recon = min(coders, key=lambda n: coders[n]["test_mse"])
    best_probe = max(coders, key=lambda n: coders[n]["probe_accuracy"] or 0)
    lines.append(f"**Reconstruction and codes:** {best_recon} reconstructs best (test MSE "
                 f"{coders[best_recon]['test_mse']:.4f}, against PCA's {rows['PCA']['test_mse']:.4f} at the same code "
                 f"size); {best_probe} gives the most linearly separable codes (probe "
                 f"{coders[best_probe]['probe_accuracy']:.3f}).")
    generators = {n: r for n, r in rows.items() if n in GENERATIVE and r.get("frechet") is not None}
    best_gen = min(generators, key=lambda n: generators[n]["frechet"])
    g = generators[best_gen]
    lines.append(f"**Samples:** {best_gen} generates best: Frechet distance {g['frechet']:.2f} against the real-data "
                 f"floor of {floor['frechet']:.2f}, precision {g['precision']:.3f} / recall {g['recall']:.3f} "
                 f"(real data: {floor['precision']:.3f} / {floor['recall']:.3f}).")
    ranked = sorted(generators, key=lambda n: generators[n]["frechet"])
    lines.append("Ranked by Frechet distance: " + ", ".join(f"{n} ({generators[n]['frechet']:.2f})" for n in ranked)
                 + ".")
    full = [n for n in generators if generators[n]["classes_covered"] == 10]
    missing = {n: generators[n]["classes_covered"] for n in generators if n not in full}
    best_cov = max(generators, key=lambda n: generators[n]["coverage"])
    text = (f"**Classes:** {', '.join(full) if full else 'no model'} cover all 10 classes"
            + (f"; {', '.join(f'{n} covers {c}' for n, c in missing.items())}" if missing else "")
            + f". The highest coverage of the real manifold is {best_cov}'s ({generators[best_cov]['coverage']:.3f}, "
              f"real data {floor['coverage']:.3f}).")
    lines.append(text)
    trained = {n: r for n, r in rows.items() if r.get("wall_seconds") is not None}
    fastest = max(trained, key=lambda n: trained[n]["steps_per_second"])
    slowest = min(trained, key=lambda n: trained[n]["steps_per_second"])
    lines.append(f"**Cost:** at an equal step budget, {fastest} is the fastest ({trained[fastest]['steps_per_second']:.0f} "
                 f"steps/s) and {slowest} the slowest ({trained[slowest]['steps_per_second']:.0f} steps/s, "
                 f"{trained[slowest]['wall_seconds']:.0f} s wall including evaluation).")
    if best_gen in trained and best_gen != fastest:
        lines.append(f"So: for codes and reconstructions take {best_recon}; for samples take {best_gen} if its cost "
                     f"({trained[best_gen]['wall_seconds']:.0f} s here) is acceptable, otherwise the best of the cheaper "
                     f"generators by the ranking above.")
    else:
        lines.append(f"So: for codes and reconstructions take {best_recon}; for samples take {best_gen}.")
    return lines


def write_report(args, dataset, rows: dict, floor: dict, figures: dict, choose: list[str]) -> None:
    header = "| model | " + " | ".join(h for _, h, _ in COLUMNS) + " |"
    table = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, row in [*rows.items(), ("real data (train vs test)", floor)]:
        table.append(f"| {name} | " + " | ".join(cell(row, k, f) for k, _, f in COLUMNS) + " |")
    lines = [
        f"# genjax comparison on {dataset.name}",
        "",
        f"{args.steps} `train_step` calls per model, seed {args.seed}, on {platform.machine()} with "
        f"{jax.device_count()} {jax.devices()[0].platform.upper()} device(s), jax {jax.__version__}. "
        f"Reconstruction: test-split MSE per pixel and a logistic-regression probe on the codes. Samples "
        f"({min(metrics.EVAL_SAMPLES, len(dataset.x_train))} per model) are scored against the test split on the "
        f"features of genjax's own digits classifier (test accuracy {rows_classifier_accuracy(rows):.3f}): Frechet "
        "distance and KID (lower is better), precision/recall (k=3) and density/coverage (k=5) (higher is better, "
        "density about 1 for real data), and the classes that classifier assigns (a class counts at 1% of samples). "
        "The last row scores the real training split the same way: the floor. A dash: the measure does not apply.",
        "",
        *table,
        "",
        "## Which to choose",
        "",
        *[f"- {line}" for line in choose],
        "",
        "## Figures",
        "",
    ]
    for name, paths in figures.items():
        lines.append(f"### {name}")
        lines.append("")
        lines += [f"![{name} {stem}]({path})" for stem, path in paths.items()]
        lines.append("")
    (args.workdir / "report.md").write_text("\n".join(lines))


def rows_classifier_accuracy(rows: dict) -> float:
    return next(r["classifier_accuracy"] for r in rows.values() if r.get("classifier_accuracy") is not None)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.steps <= 0:
        raise ConfigError("--steps must be a positive integer")
    if (args.workdir / "report.json").exists() and not args.overwrite:
        raise RunError(f"{args.workdir} already holds report.json; pass --overwrite to replace it")
    dataset = data.load(args.dataset)
    if dataset.y_train is None or not dataset.is_image:
        raise ConfigError(f"experiments.compare needs a labelled image data set; {dataset.name} is not one")
    try:
        args.workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot write to {args.workdir}: {exc.strerror}") from None
    rows, figures, codes = {}, {}, {}
    bar = tqdm(args.models, desc="compare", unit="model", disable=args.no_progress, dynamic_ncols=True)
    for name in bar:
        bar.set_postfix_str(name)
        family, config = MODELS[name]
        row = train_one(name, family, config, dataset, args)
        if "_codes" in row:
            codes[name] = (row.pop("_codes"), dataset.y_test)
        figures[name] = row.pop("figures")
        rows[name] = row
        tqdm.write(f"{name}: {row['wall_seconds']:.0f} s, " + ", ".join(
            f"{h} {cell(row, k, f)}" for k, h, f in COLUMNS if row.get(k) is not None and k != "parameters"))
    code_size = autoencoder.Config().latent_dim
    pca, pca_samples, pca_codes = pca_row(dataset, code_size)
    codes["PCA"] = (pca_codes, dataset.y_test)
    rows["PCA"] = {k: pca[k] for k in ("test_mse", "probe_accuracy", "parameters")}
    rows["PCA + Gaussian"] = {k: v for k, v in pca.items() if k not in ("test_mse", "probe_accuracy")}
    figures["PCA + Gaussian"] = {"samples": str(plots.image_grid(pca_samples[:64], args.workdir / "pca_samples.png")
                                                .relative_to(args.workdir))}
    figures["codes"] = {"codes": str(plots.code_views(codes, args.workdir / "codes.png").relative_to(args.workdir))}
    floor = floor_row(rows)
    choose = conclusions(rows, floor)
    write_report(args, dataset, rows, floor, figures, choose)
    clean = {name: {k: v for k, v in row.items() if not k.endswith("_floor")} for name, row in rows.items()}
    (args.workdir / "report.json").write_text(json.dumps(
        {"dataset": dataset.name, "steps": args.steps, "seed": args.seed, "jax": jax.__version__,
         "device": str(jax.devices()[0]), "models": clean, "real_data_floor": floor, "figures": figures,
         "which_to_choose": choose}, indent=2, default=str) + "\n")
    print((args.workdir / "report.md").read_text().split("## Figures")[0])
    print(f"wrote {args.workdir}/: report.md, report.json, codes.png, pca_samples.png and one run directory per model")


if __name__ == "__main__":
    sys.exit(run_main(main, PROG))
