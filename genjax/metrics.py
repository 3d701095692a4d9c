"""Evaluation measures computed on the host from a trained state's outputs.

Reconstruction: MSE per element (pixels in [0, 1]) and PSNR = 10 log10(1 / MSE) in dB.
Linear probe: standardised codes, scikit-learn ``LogisticRegression(max_iter=1000)``, test accuracy.
PCA baseline: PCA with as many components as the code, fitted on the training split, with the same
probe on its components, so every autoencoder run shows whether it beats the linear baseline.
"""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
import numpy as np

from genjax.data import Dataset

EVAL_BATCH = 512


def batched(fn: Callable, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """``fn`` over ``x`` in chunks of one fixed shape (the last chunk padded), so it compiles once."""
    chunk = min(batch_size, len(x))
    outputs = []
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk]
        pad = chunk - len(part)
        if pad:
            part = np.concatenate([part, np.zeros((pad, *part.shape[1:]), part.dtype)])
        outputs.append(np.asarray(fn(jnp.asarray(part)))[: chunk - pad])
    return np.concatenate(outputs)


def psnr(mse: float, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB for a mean squared error on data with range ``peak``."""
    return float(10.0 * np.log10(peak**2 / mse)) if mse > 0 else float("inf")


def linear_probe(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of a logistic regression on standardised features ``[N, K]``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probe.fit(z_train.reshape(len(z_train), -1), y_train)
    return float(probe.score(z_test.reshape(len(z_test), -1), y_test))


def pca_baseline(dataset: Dataset, n_components: int) -> dict[str, float | None]:
    """PCA fitted on the training split: test MSE per element and the probe accuracy on its components."""
    from sklearn.decomposition import PCA

    flat_train = dataset.x_train.reshape(len(dataset.x_train), -1)
    flat_test = dataset.x_test.reshape(len(dataset.x_test), -1)
    k = min(n_components, *flat_train.shape)
    pca = PCA(k).fit(flat_train)
    z_train, z_test = pca.transform(flat_train), pca.transform(flat_test)
    test_mse = float(np.mean((pca.inverse_transform(z_test) - flat_test) ** 2))
    probe = None
    if dataset.y_train is not None:
        probe = linear_probe(z_train, dataset.y_train, z_test, dataset.y_test)
    return {"pca_test_mse": test_mse, "pca_probe_accuracy": probe}


def reconstruction_report(
    encode: Callable, reconstruct: Callable, dataset: Dataset, code_size: int, full: bool = True
) -> dict[str, float | None]:
    """Test MSE/PSNR of ``reconstruct``; with ``full``, train MSE, probe on ``encode`` codes and PCA."""
    test_mse = float(np.mean((batched(reconstruct, dataset.x_test) - dataset.x_test) ** 2))
    report: dict[str, float | None] = {"test_mse": test_mse, "test_psnr": psnr(test_mse)}
    if not full:
        return report
    report["train_mse"] = float(np.mean((batched(reconstruct, dataset.x_train) - dataset.x_train) ** 2))
    report["probe_accuracy"] = None
    if dataset.y_train is not None:
        report["probe_accuracy"] = linear_probe(
            batched(encode, dataset.x_train), dataset.y_train, batched(encode, dataset.x_test), dataset.y_test
        )
    report.update(pca_baseline(dataset, code_size))
    report["beats_pca"] = test_mse < report["pca_test_mse"]
    return report
