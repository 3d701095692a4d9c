"""The comparison report: one table of every model's measures beside linear baselines and the real-data
floor, a "which to choose" section computed from the numbers, and the figures (``report.md``)."""
from __future__ import annotations

import platform
from pathlib import Path

import jax
import numpy as np

from genjax.core.data import Dataset
from genjax.eval import measures
from genjax.eval.evaluate import FEATURE_ROWS, sample_count, sample_report

COLUMNS = (  # (key in a row, header, format)
    ("test_mse", "test MSE", ".4f"), ("probe_accuracy", "probe acc.", ".3f"), ("frechet", "Frechet", ".2f"),
    ("kid", "KID", ".3f"), ("precision", "precision", ".3f"), ("recall", "recall", ".3f"),
    ("density", "density", ".3f"), ("coverage", "coverage", ".3f"), ("classes_covered", "classes", "d"),
    ("parameters", "parameters", ","), ("steps_per_second", "steps/s", ".0f"), ("wall_seconds", "wall s", ".1f"),
)
FLOOR = "real data (train vs test)"


def pca_rows(dataset: Dataset, code_size: int) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    """The linear baselines at ``code_size``: ``PCA`` (reconstruction and probe) and ``PCA + Gaussian``
    (samples from a Gaussian fitted to the training codes, mapped back and clipped to [0, 1], scored by
    :func:`genjax.eval.evaluate.sample_report`). Returns both rows, the samples and the test split's codes."""
    pca = measures.fit_pca(dataset, code_size)
    codes = pca.transform(dataset.x_train.reshape(len(dataset.x_train), -1))
    rng = np.random.default_rng(0)
    drawn = rng.multivariate_normal(codes.mean(0), np.cov(codes, rowvar=False), sample_count(dataset))
    samples = np.clip(pca.inverse_transform(drawn), 0.0, 1.0).reshape(-1, *dataset.data_shape).astype(np.float32)
    baseline = measures.pca_scores(pca, dataset)
    parameters = int(pca.components_.size + pca.mean_.size)
    reconstruction = {"test_mse": baseline["pca_test_mse"], "probe_accuracy": baseline["pca_probe_accuracy"],
                      "parameters": parameters}
    generation = {**sample_report(samples, dataset), "parameters": parameters}
    test_codes = pca.transform(dataset.x_test.reshape(len(dataset.x_test), -1))
    return reconstruction, generation, samples, test_codes


def floor_row(rows: dict, num_classes: int) -> dict:
    """Real data: the training split scored against the test split by the same measures."""
    any_row = next(r for r in rows.values() if "frechet_floor" in r)
    return {k: any_row[f"{k}_floor"] for k in measures.FEATURE_MEASURES} | {"classes_covered": num_classes}


def cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None or isinstance(value, (str, bool)):
        return "-"
    return format(value, fmt)


def conclusions(rows: dict, floor: dict, num_classes: int) -> list[str]:
    """The "which to choose" bullets, each computed from this run's numbers. ``rows`` must hold ``PCA``."""
    lines = []
    coders = {n: r for n, r in rows.items() if r.get("test_mse") is not None}
    best_recon = min(coders, key=lambda n: coders[n]["test_mse"])
    best_probe = max(coders, key=lambda n: coders[n]["probe_accuracy"] or 0)
    lines.append(f"**Reconstruction and codes:** {best_recon} reconstructs best (test MSE "
                 f"{coders[best_recon]['test_mse']:.4f}, against PCA's {rows['PCA']['test_mse']:.4f} at the same code "
                 f"size); {best_probe} gives the most linearly separable codes (probe "
                 f"{coders[best_probe]['probe_accuracy']:.3f}).")
    generators = {n: r for n, r in rows.items() if r.get("frechet") is not None}
    best_gen = min(generators, key=lambda n: generators[n]["frechet"])
    g = generators[best_gen]
    lines.append(f"**Samples:** {best_gen} generates best: Frechet distance {g['frechet']:.2f} against the real-data "
                 f"floor of {floor['frechet']:.2f}, precision {g['precision']:.3f} / recall {g['recall']:.3f} "
                 f"(real data: {floor['precision']:.3f} / {floor['recall']:.3f}).")
    ranked = sorted(generators, key=lambda n: generators[n]["frechet"])
    lines.append("Ranked by Frechet distance: " + ", ".join(f"{n} ({generators[n]['frechet']:.2f})" for n in ranked)
                 + ".")
    full = [n for n in generators if generators[n]["classes_covered"] == num_classes]
    missing = {n: generators[n]["classes_covered"] for n in generators if n not in full}
    best_cov = max(generators, key=lambda n: generators[n]["coverage"])
    lines.append(f"**Classes:** {', '.join(full) if full else 'no model'} cover all {num_classes} classes"
                 + (f"; {', '.join(f'{n} covers {c}' for n, c in missing.items())}" if missing else "")
                 + f". The highest coverage of the real manifold is {best_cov}'s "
                   f"({generators[best_cov]['coverage']:.3f}, real data {floor['coverage']:.3f}).")
    trained = {n: r for n, r in rows.items() if r.get("wall_seconds") is not None}
    fastest = max(trained, key=lambda n: trained[n]["steps_per_second"])
    slowest = min(trained, key=lambda n: trained[n]["steps_per_second"])
    lines.append(f"**Cost:** at an equal step budget, {fastest} is the fastest "
                 f"({trained[fastest]['steps_per_second']:.0f} steps/s) and {slowest} the slowest "
                 f"({trained[slowest]['steps_per_second']:.0f} steps/s, "
                 f"{trained[slowest]['wall_seconds']:.0f} s wall including evaluation).")
    if best_gen in trained and best_gen != fastest:
        lines.append(f"So: for codes and reconstructions take {best_recon}; for samples take {best_gen} if its cost "
                     f"({trained[best_gen]['wall_seconds']:.0f} s here) is acceptable, otherwise the best of the "
                     "cheaper generators by the ranking above.")
    else:
        lines.append(f"So: for codes and reconstructions take {best_recon}; for samples take {best_gen}.")
    return lines


def classifier_accuracy(rows: dict) -> float:
    """The feature classifier's test accuracy, as the rows with sample measures report it."""
    return next(r["classifier_accuracy"] for r in rows.values() if r.get("classifier_accuracy") is not None)


def write_markdown(path: Path, dataset: Dataset, steps: int, seed: int, rows: dict, floor: dict, figures: dict,
                   choose: list[str]) -> Path:
    """``report.md``: the table (the floor last), the conclusions and every figure (paths relative to ``path``)."""
    header = "| model | " + " | ".join(h for _, h, _ in COLUMNS) + " |"
    table = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, row in [*rows.items(), (FLOOR, floor)]:
        table.append(f"| {name} | " + " | ".join(cell(row, k, f) for k, _, f in COLUMNS) + " |")
    lines = [
        f"# genjax comparison on {dataset.name}",
        "",
        f"{steps} `train_step` calls per model, seed {seed}, on {platform.machine()} with "
        f"{jax.device_count()} {jax.devices()[0].platform.upper()} device(s), jax {jax.__version__}. "
        f"Reconstruction: test-split MSE per pixel and a logistic-regression probe on the codes. Samples "
        f"({min(FEATURE_ROWS, len(dataset.x_train))} per model) are scored against the test split on the "
        f"features of genjax's own {dataset.name} classifier (test accuracy {classifier_accuracy(rows):.3f}): "
        "Frechet distance and KID (lower is better), precision/recall (k=3) and density/coverage (k=5) (higher is "
        "better, density about 1 for real data), and the classes that classifier assigns (a class counts at 1% of "
        "samples). The last row scores as many rows of the real training split the same way: the floor. A dash: "
        "the measure does not apply.",
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
        lines += [f"![{name} {stem}]({p})" for stem, p in paths.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path
