"""A trained state's evaluation, built from what its family declares it can do.

Each capability brings its measures: ``encodes`` the reconstruction measures (and, in full, the
linear probe and the PCA baseline), ``likelihood`` the test ELBO in nats, ``samples`` the sample
measures of :func:`sample_report`, ``heads`` (in full, with several heads on labelled data) each
head against its class. The light evaluation that the loop logs every ``eval_every`` steps tracks a
family by its cheapest primary measure: reconstructions for an encoder, samples otherwise.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from genjax.core.data import Dataset
from genjax.core.state import State
from genjax.eval import classifier, measures
from genjax.eval.inference import batched
from genjax.models.family import Family

EVAL_SAMPLES = 2500  # samples drawn for a sample-quality evaluation, at least (PacGAN's protocol)
FEATURE_ROWS = 10_000  # at most this many training rows and samples are scored against the test split
ELBO_NOTE = ("test_elbo_nats, test_recon_nats, test_kl_nats: nats per example (reconstruction summed over the "
             "example's elements, one z per example), averaged over the test split; test_nll_nats: the "
             "importance-weighted bound on -log p(x) with iwae_samples draws; with loss mse they are Gaussian "
             "log-densities, so they can be negative; loss discretized makes them probabilities of 8-bit pixels "
             "(test_nll_bits_per_dim)")


def evaluate(family: Family, state: State, dataset: Dataset, full: bool = True) -> dict[str, float | None]:
    """Every measure ``family``'s capabilities allow on ``dataset``'s held-out split (``full=False``: the light
    evaluation logged during training). Sampling uses seed 0."""
    caps = family.CAPABILITIES
    report: dict[str, float | None] = {}
    if caps.likelihood:
        report.update(elbo_report(family, state, dataset, full))
    if caps.encodes:
        report.update(reconstruction_report(family, state, dataset, full))
    if caps.samples and (full or not caps.encodes):
        samples = np.asarray(family.sample(state, jax.random.key(0), sample_count(dataset) if full else EVAL_SAMPLES))
        report.update(sample_report(samples, dataset, full))
    if full and caps.heads and family.num_heads(state.config) > 1 and classifier.usable(dataset):
        report.update(head_report(family, state, dataset))
    return report


def sample_count(dataset: Dataset) -> int:
    """Samples drawn for a full evaluation: :data:`EVAL_SAMPLES`, or as many as the training rows scored against
    the test split when more (up to :data:`FEATURE_ROWS`: 10,000 on Fashion-MNIST)."""
    return max(EVAL_SAMPLES, min(len(dataset.x_train), FEATURE_ROWS))


def light(family: Family, dataset: Dataset) -> Callable[[State], dict]:
    """The loop's periodic evaluation: ``evaluate(..., full=False)`` of each state it is given, on the first
    :data:`EVAL_SAMPLES` test examples (a fixed, small split, so its cost does not grow with the data set)."""
    held_out = dataclasses.replace(dataset, x_test=dataset.x_test[:EVAL_SAMPLES],
                                   y_test=None if dataset.y_test is None else dataset.y_test[:EVAL_SAMPLES])
    return lambda state: evaluate(family, state, held_out, full=False)


def notes(family: Family) -> tuple[str, ...]:
    """How to read the units of ``family``'s report, a line each."""
    return (ELBO_NOTE,) if family.CAPABILITIES.likelihood else ()


def reconstruction_report(family: Family, state: State, dataset: Dataset, full: bool) -> dict[str, float | None]:
    """Test MSE and PSNR of the reconstructions; with ``full``, the training MSE, a linear probe on the codes and
    the PCA baseline at the codes' size (``beats_pca``)."""
    x_test = dataset.x_test
    test_mse = float(np.mean((batched(lambda x: family.reconstruct(state, x), x_test) - x_test) ** 2))
    report: dict[str, float | None] = {"test_mse": test_mse, "test_psnr": measures.psnr(test_mse)}
    if not full:
        return report
    x_train = dataset.x_train
    report["train_mse"] = float(np.mean((batched(lambda x: family.reconstruct(state, x), x_train) - x_train) ** 2))
    z_train = batched(lambda x: family.codes(state, x), x_train)
    report["probe_accuracy"] = None
    if dataset.y_train is not None:
        z_test = batched(lambda x: family.codes(state, x), x_test)
        report["probe_accuracy"] = measures.linear_probe(z_train, dataset.y_train, z_test, dataset.y_test)
    report.update(measures.pca_baseline(dataset, z_train.shape[-1]))
    report["beats_pca"] = test_mse < report["pca_test_mse"]
    return report


def elbo_report(family: Family, state: State, dataset: Dataset, full: bool = True) -> dict[str, float | int | str]:
    """Test ELBO in nats per example and its two terms (one z per example, seed 0), averaged over the test
    split; with ``full``, also the importance-weighted negative log-likelihood ``test_nll_nats``
    (``iwae_samples`` draws per example, seed 1; in bits per dimension too when the likelihood is a
    probability of the data's discrete values) and the likelihood's name."""

    def both(x):
        terms = family.elbo_terms(state, x, jax.random.key(0))
        return jnp.stack([terms["recon"], terms["kl"]], -1)

    recon, kl = batched(both, dataset.x_test).mean(0)
    report = {"test_elbo_nats": float(-(recon + kl)), "test_recon_nats": float(recon), "test_kl_nats": float(kl)}
    if not full:
        return report
    samples = state.config.iwae_samples
    log_px = batched(lambda x: family.log_likelihood(state, x, jax.random.key(1), samples), dataset.x_test)
    name, discrete = family.likelihood_name(state.config)
    report.update(test_nll_nats=float(-log_px.mean()), iwae_samples=samples, likelihood=name)
    if discrete:
        report["test_nll_bits_per_dim"] = float(-log_px.mean() / (np.prod(dataset.data_shape) * np.log(2.0)))
    return report


def sample_report(samples: np.ndarray, dataset: Dataset, full: bool = True) -> dict[str, float | None]:
    """Sample-quality measures that fit the data set.

    Always: ``data_frechet``, the Frechet distance between samples and the test split in data space
    (flattened), beside ``data_frechet_floor``, the same between the training split's first rows (as many
    as the samples, at least as many as the test split) and the test split.
    Mixtures with known modes: :func:`genjax.eval.measures.mode_coverage` (``modes``, ``high_quality``,
    ``reverse_kl``). Labelled images, with ``full``: on the features of the data set's classifier
    (:func:`genjax.eval.classifier.feature_net`), the first ``min(len(x_train), FEATURE_ROWS)`` samples
    against the test split (when :func:`genjax.eval.classifier.usable`: two classes or more, enough rows):
    :data:`genjax.eval.measures.FEATURE_MEASURES`, each beside its ``_floor`` (as
    many training rows against the test split: what real data score), and the samples' class histogram by
    that classifier (``classifier_accuracy`` is its test accuracy).
    """
    measures.check_finite(samples=samples)
    flat = samples.reshape(len(samples), -1)
    test = dataset.x_test.reshape(len(dataset.x_test), -1)
    report: dict[str, float | None] = {
        "data_frechet": measures.frechet_distance(flat, test),
        "data_frechet_floor": data_frechet_floor(dataset, max(len(test), len(flat))),
    }
    if dataset.modes is not None:
        report.update(measures.mode_coverage(flat, dataset.modes, dataset.mode_std))
    elif full and dataset.is_image and classifier.usable(dataset):
        net = classifier.feature_net(dataset)
        candidates = samples[: min(len(dataset.x_train), FEATURE_ROWS)]
        report.update(measures.feature_measures(net.reference, net.features(candidates)))
        report.update({f"{k}_floor": v for k, v in net.floor(len(candidates)).items()})
        report.update(measures.class_histogram(net.predict(candidates), dataset.num_classes))
        report["classifier_accuracy"] = net.test_accuracy
    return report


_FLOORS: dict[tuple[int, int], tuple[Dataset, float]] = {}


def data_frechet_floor(dataset: Dataset, rows: int) -> float:
    """The data-space Frechet distance between the first ``rows`` training examples and the test split,
    computed once per data set and row count (the loop's light evaluations share it)."""
    key = (id(dataset), rows)
    if key not in _FLOORS or _FLOORS[key][0] is not dataset:
        train = dataset.x_train.reshape(len(dataset.x_train), -1)[:rows]
        _FLOORS[key] = (dataset, measures.frechet_distance(train, dataset.x_test.reshape(len(dataset.x_test), -1)))
    return _FLOORS[key][1]


def head_report(family: Family, state: State, dataset: Dataset, per_head: int = 500) -> dict[str, float]:
    """Each head against its class, ``per_head`` samples per head (seed 0).

    ``head_accuracy``: the fraction of head k's samples that the data set's feature classifier
    (:func:`genjax.eval.classifier.feature_net`, the one behind the sample measures) labels k, averaged over
    heads (``head_accuracy_min``: the worst head). ``head_accuracy_floor`` (``_floor_min``): the same fraction
    for the real test examples of each class, what the classifier allows a head that drew real examples.
    ``head_diversity``: mean pairwise distance within a head's samples over that within the real
    training examples of its class, averaged over heads (``head_diversity_min``: the least diverse).
    """
    net = classifier.feature_net(dataset)
    accuracy, diversity = [], []
    for k in range(family.num_heads(state.config)):
        samples = np.asarray(family.sample(state, jax.random.fold_in(jax.random.key(0), k), per_head, head=k))
        accuracy.append(float(np.mean(net.predict(samples) == k)))
        real = dataset.x_train[dataset.y_train == k]
        diversity.append(measures.mean_pairwise_distance(samples) / measures.mean_pairwise_distance(real))
    floor = net.class_accuracy[:len(accuracy)]
    return {"head_accuracy": float(np.mean(accuracy)), "head_accuracy_min": float(np.min(accuracy)),
            "head_accuracy_floor": float(np.mean(floor)), "head_accuracy_floor_min": float(np.min(floor)),
            "head_diversity": float(np.mean(diversity)), "head_diversity_min": float(np.min(diversity))}
