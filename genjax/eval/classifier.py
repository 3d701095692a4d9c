"""A small classifier that genjax trains on a labelled data set and caches, for features of samples.

No pretrained weights can be downloaded, so the sample-quality metrics (Frechet distance, KID,
precision/recall, density/coverage, class histograms) use the penultimate layer of a classifier
trained on the data set's own training split: ``[N, *data_shape] -> [N, width]`` features (ReLU
units) and class logits. Images of at least 16x16 pixels get a small convolutional network (two 3x3
convolutions, each followed by 2x2 max-pooling, then the dense layers, in :mod:`genjax.nn.conv`'s
fast lowering); smaller images (8x8 digits) and vectors get an MLP. It is a family of its own (not
registered: it generates nothing) and trains through the loop like any other (3,000 steps; the MLP
with Gaussian input noise of std 0.1 as augmentation). It is cached on disk under ``$GENJAX_CACHE`` (default
``~/.cache/genjax``), keyed by a hash of the data and the config, so every evaluation of one data set
shares one classifier; a file lock beside each entry lets one process train it while the others wait.
Test accuracy (``FeatureNet.test_accuracy``, written into every report that uses it): 98.3% on digits
(MLP), 92.2% on Fashion-MNIST (conv; the data set's own table lists 92.5% for "2 conv layers, < 100K
parameters").
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from genjax.core import config as cfg_lib
from genjax.core import optim
from genjax.core.data import Dataset, cache_dir
from genjax.core.errors import ConfigError
from genjax.core.state import State
from genjax.eval import measures
from genjax.eval.inference import batched
from genjax.models import fields
from genjax.models.family import Batch, Capabilities, Metrics, batch_context
from genjax.nn import conv, draws, nets
from genjax.train.lock import waiting_lock
from genjax.train.loop import fit

NAME = "feature_classifier"
DEFAULT_STEPS = 3000
MIN_ROWS = 20  # examples per split below which no classifier (nor its k-NN measures) is made
CAPABILITIES = Capabilities()


def _noise_or_auto(name: str, value: float, config) -> None:
    if not (value >= 0 or value == -1):
        raise ConfigError(f"{name} must be >= 0, or -1 for the architecture's default; got {value!r}")


def _noise_for_architecture(value: float, config, context: cfg_lib.Context) -> float:
    """Noise helps the MLP on 8x8 digits; on Fashion-MNIST it cost the conv classifier accuracy (92.2% without
    after 3,000 steps, 91.4% with std 0.1 after 6,000)."""
    if value != -1:
        return value
    return 0.0 if fields.AUTO_ARCHITECTURE.resolve(config.architecture, config, context) == "conv" else 0.1


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(optim.OptimizerFields):
    """Feature classifier hyperparameters."""

    architecture: str = fields.AUTO_ARCHITECTURE("auto")
    hidden_dims: tuple[int, ...] = fields.HIDDEN_DIMS((256, 128), "dense widths (conv: after the convolutions); "
                                                      "the last is the feature size")
    conv_channels: tuple[int, ...] = fields.CONV_CHANNELS((32, 64), "channels of the 3x3 convolutions, each "
                                                          "followed by 2x2 max-pooling (conv only)")
    num_classes: int = cfg_lib.Spec("classes of the labels", (cfg_lib.positive,))(10)
    noise_level: float = cfg_lib.Spec(
        "std of the Gaussian input noise while training (augmentation); -1: 0.1 for the mlp, none for conv",
        (_noise_or_auto,), resolve=_noise_for_architecture)(-1.0)
    batch_size: int = fields.BATCH_SIZE(128)
    learning_rate: float = optim.LEARNING_RATE(1e-3)
    schedule: str = optim.SCHEDULE("cosine")


class Classifier(nn.Module):
    """``[N, *data_shape] -> ([N, num_classes] logits, [N, hidden_dims[-1]] features)``."""

    architecture: str
    hidden_dims: tuple[int, ...]
    conv_channels: tuple[int, ...]
    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x
        if self.architecture == "conv":
            for channels in self.conv_channels:
                h = conv.max_pool(nn.relu(conv.Conv(channels, (3, 3))(h)))
        h = h.reshape(h.shape[0], -1)
        for width in self.hidden_dims:
            h = nn.relu(nn.Dense(width)(h))
        return nn.Dense(self.num_classes)(h), h


def batch_rows(cfg: Config) -> int:
    return cfg.batch_size


def init(key: jax.Array, cfg: Config, batch: Batch) -> State:
    if "y" not in batch:
        raise ConfigError("the feature classifier needs labels: batch['y']")
    cfg = cfg.resolved(batch_context(batch, nets.check_batch("mlp", batch), DEFAULT_STEPS))
    data_shape = nets.check_batch(cfg.architecture, batch)
    if cfg.architecture == "conv" and nets.default_architecture(data_shape, len(cfg.conv_channels)) != "conv":
        raise ConfigError(f"the conv classifier pools {len(cfg.conv_channels)} times by 2, so images must be at least "
                          f"{nets.CONV_MIN_SIZE} pixels a side and divisible by {2 ** len(cfg.conv_channels)}; "
                          f"got {data_shape[:2]} (use architecture mlp)")
    params = {"classifier": nets.init_variables(_module(cfg), key, jnp.asarray(batch["x"][:1]))}
    return State.create(params=params, optimizers={"classifier": optim.adam(cfg, cfg.learning_rate)}, config=cfg,
                        data_shape=data_shape)


@jax.jit
def train_step(state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]:
    """One Adam step of softmax cross-entropy on noisy inputs. Metrics: ``loss`` (nats), ``accuracy``."""
    cfg = state.config
    x = batch["x"] + cfg.noise_level * draws.normal(key, batch["x"].shape, batch["x"].dtype)
    module = _module(cfg)

    def loss_fn(params):
        logits, _ = module.apply(params["classifier"], x)
        loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]))
        return loss, jnp.mean(jnp.argmax(logits, -1) == batch["y"])

    (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return state.apply_gradients(grads), {"loss": loss, "accuracy": accuracy}


def _module(cfg: Config) -> Classifier:
    return Classifier(cfg.architecture, cfg.hidden_dims, cfg.conv_channels, cfg.num_classes)


@jax.jit
def _apply(state: State, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return _module(state.config).apply(state.params["classifier"], x)


def held_out_accuracy(state: State, dataset: Dataset) -> float:
    """The classifier's accuracy on the test split."""
    logits = batched(lambda x: _apply(state, x)[0], dataset.x_test)
    return float(np.mean(logits.argmax(-1) == dataset.y_test))


@dataclasses.dataclass
class FeatureNet:
    """A data set's trained feature classifier: ``features(x)`` ``[N, width]``, ``predict(x)`` ``[N]`` class
    indices, and, computed once, the test split's features, its per-class accuracy and the real-data floor of every
    measure."""

    state: State
    test_accuracy: float
    dataset: Dataset
    _floors: dict[int, dict[str, float]] = dataclasses.field(default_factory=dict, repr=False)

    @functools.cached_property
    def reference(self) -> np.ndarray:
        """Features of the test split: what samples are compared with."""
        return self.features(self.dataset.x_test)

    @functools.cached_property
    def class_accuracy(self) -> np.ndarray:
        """``[num_classes]``: the fraction of each class's test examples labelled with their class (the floor of
        a generator's per-class accuracy)."""
        labelled = self.predict(self.dataset.x_test)
        return np.array([np.mean(labelled[self.dataset.y_test == k] == k) for k in range(self.dataset.num_classes)])

    def floor(self, rows: int) -> dict[str, float]:
        """:func:`genjax.eval.measures.feature_measures` of the first ``rows`` training examples against the
        test split: what real data score (computed once per ``rows``)."""
        if rows not in self._floors:
            self._floors[rows] = measures.feature_measures(self.reference, self.features(self.dataset.x_train[:rows]))
        return self._floors[rows]

    def features(self, x: np.ndarray) -> np.ndarray:
        return batched(lambda v: _apply(self.state, v)[1], np.asarray(x, np.float32))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return batched(lambda v: _apply(self.state, v)[0], np.asarray(x, np.float32)).argmax(-1)


_LOADED: dict[str, FeatureNet] = {}


def usable(dataset: Dataset) -> bool:
    """Whether ``dataset`` can have a feature classifier: labelled, two classes or more, with at least ``MIN_ROWS``
    examples in each split (the nearest-neighbour measures need that many)."""
    return (dataset.y_train is not None and dataset.num_classes >= 2
            and min(len(dataset.x_train), len(dataset.x_test)) >= MIN_ROWS)


def _load_or_train(dataset: Dataset, cfg: Config, steps: int, path: Path) -> tuple[State, float]:
    """The classifier cached at ``path`` with its test accuracy, or one trained now (seed 0) and written there."""
    template = init(jax.random.key(0), cfg, {"x": dataset.x_train[:1], "y": dataset.y_train[:1]})
    try:
        params = serialization.from_bytes(template.params, (path / "params.msgpack").read_bytes())
        return template.replace(params=params), json.loads((path / "info.json").read_text())["test_accuracy"]
    except (OSError, ValueError, KeyError):
        pass
    state = fit(sys.modules[__name__], cfg, dataset, steps=steps, progress=False,
                steps_per_call=500, eval_every=0, checkpoint_every=0).state
    accuracy = held_out_accuracy(state, dataset)
    try:
        path.mkdir(parents=True, exist_ok=True)
        info = json.dumps({"test_accuracy": accuracy, "steps": steps, "config": cfg_lib.to_dict(cfg)}) + "\n"
        for name, content in (("params.msgpack", serialization.to_bytes(state.params)),
                              ("info.json", info.encode())):  # whole files only: a reader never sees half of one
            partial = path / f"{name}.{os.getpid()}.partial"
            partial.write_bytes(content)
            os.replace(partial, path / name)
    except OSError:
        pass  # an unwritable cache only costs retraining next time
    return state, accuracy


def feature_net(dataset: Dataset, steps: int = DEFAULT_STEPS) -> FeatureNet:
    """The data set's feature classifier: from memory, from the disk cache, or trained now (seed 0) and cached
    (processes that need it meanwhile wait for it). Its batch is 128 examples or the whole training split when
    smaller."""
    if not usable(dataset):
        raise ConfigError(f"genjax cannot train a feature classifier for {dataset.name}: it needs labels of "
                          f"two classes or more and at least {MIN_ROWS} examples in each split")
    cfg = Config(num_classes=dataset.num_classes, batch_size=min(Config().batch_size, len(dataset.x_train)))
    key = dataset.fingerprint(cfg, steps)
    if key in _LOADED:
        return _LOADED[key]
    path = cache_dir() / f"classifier-{dataset.name}-{key}"
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
    # One process trains a missing classifier; the others wait for it and then load it from disk.
    with waiting_lock(path.parent / f"{path.name}.lock", f"trains the feature classifier of {dataset.name}"):
        state, accuracy = _load_or_train(dataset, cfg, steps, path)
    _LOADED[key] = FeatureNet(state, accuracy, dataset)
    return _LOADED[key]
