"""Data sets as float32 numpy arrays: images ``[N, H, W, C]`` in [0, 1], vectors ``[N, D]``.

``load(name_or_path)`` returns a :class:`Dataset`. Names: ``digits`` (scikit-learn's 8x8 digits),
``ring`` and ``grid`` (PacGAN's 2-D Gaussian mixtures), ``fashion_mnist`` (Zalando's 28x28 grayscale
clothing images, 60,000 train / 10,000 test, 10 classes, read from ``$GENJAX_DATA/fashion-mnist`` or
else where Debian's ``dataset-fashion-mnist`` package installs them). Paths: ``.npz`` (array ``x``, optional
``y``, and for a Gaussian mixture optionally its centres ``modes`` ``[K, D]`` with their
``mode_std``, which turns on mode-coverage evaluation), ``.npy`` (``x`` only), a folder of images
(labels from sub-folder names, if any), or
MNIST-style IDX files (an ``*-images-idx3-ubyte[.gz]`` file, or a folder holding the train and
``t10k`` pairs). User data without its own split gets a stratified held-out ``test_fraction``.
Bad data raises :class:`genjax.errors.DataError` with one line, before anything compiles.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import struct as _struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from genjax.core.config import Context
from genjax.core.errors import DataError

NAMES = ("digits", "ring", "grid", "fashion_mnist")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist package
DIGITS_FILE = Path(__file__).with_name("digits.npz")  # scikit-learn's digits, split (see _digits)
FILE_KINDS = (".npz", ".npy", "a folder of images", "MNIST-style IDX files")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
TEST_FRACTION = 0.2
MAX_IDX_BYTES = 16 * 2**30  # an IDX header announcing more is refused before anything is read
MAX_CLASSES = 10_000  # labels index the classifier's outputs and the DGN's heads: one per class
SPLIT_SEED = 0


def cache_dir() -> Path:
    """Where genjax keeps what it trains from data sets and reuses (``$GENJAX_CACHE``, default ``~/.cache/genjax``)."""
    return Path(os.environ.get("GENJAX_CACHE", Path.home() / ".cache" / "genjax"))


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A train/test split. ``y_*`` are int32 labels or None; ``modes`` and ``mode_std``: a mixture's centres
    and std, if known."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    modes: np.ndarray | None = None
    mode_std: float | None = None

    def __post_init__(self) -> None:
        """Labels, however the split was built: int32 in ``0..MAX_CLASSES-1``, one per example, both or neither."""
        if (self.y_train is None) != (self.y_test is None):
            raise DataError(f"{self.name}: labels exist for only one of train and test")
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if y is not None:
                object.__setattr__(self, f"y_{split}", checked_labels(f"{self.name} ({split})", y, len(x)))

    @property
    def data_shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. (8, 8, 1) or (2,)."""
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        return len(self.data_shape) == 3

    @property
    def num_classes(self) -> int | None:
        if self.y_train is None:
            return None
        return int(max(self.y_train.max(), self.y_test.max() if len(self.y_test) else 0)) + 1

    def fingerprint(self, *salt: Any) -> str:
        """16 hex digits of a SHA-256 over the split's arrays and ``repr(salt)``: a cache key for what is derived
        from this data (e.g. ``salt`` a config and a step count)."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            if array is not None:
                digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(repr(salt).encode())
        return digest.hexdigest()[:16]

    def train_arrays(self) -> dict[str, np.ndarray]:
        """The training split as a batch-like dict: ``{"x": ...}`` plus ``"y"`` when labelled."""
        return {"x": self.x_train} if self.y_train is None else {"x": self.x_train, "y": self.y_train}

    def context(self, steps: int) -> Context:
        """What a config's placeholders are resolved against for a run of ``steps`` steps on this data."""
        return Context(self.name, self.data_shape, self.y_train is not None, self.num_classes, steps)


def load(name_or_path: str | os.PathLike, test_fraction: float = TEST_FRACTION) -> Dataset:
    """Load a named data set or a file/folder; see the module docstring."""
    key = str(name_or_path)
    if key == "digits":
        return _digits()
    if key == "ring":
        return _mixture("ring", _ring_modes(), 0.01)
    if key == "grid":
        return _mixture("grid", _grid_modes(), 0.05)
    if key == "fashion_mnist":
        return _fashion_mnist()
    path = Path(key)
    if not path.exists():
        raise DataError(
            f"no data set named {key!r} and no such file or folder; valid names: {', '.join(NAMES)}, "
            f"or a path to {', '.join(FILE_KINDS)}"
        )
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    modes, mode_std = None, None  # only a .npz may describe its mixture
    if path.is_dir():
        if _idx_files(path):
            return _idx_folder(path)
        x, y = _image_folder(path)
    elif path.suffix == ".npz":
        x, y, modes, mode_std = _npz(path)
    elif path.suffix == ".npy":
        x, y = _array_file(path, np.load, allow_pickle=False), None
    elif "idx3-ubyte" in path.name:
        x, y = _idx_pair(path)
    else:
        raise DataError(f"cannot read {path.name!r}: unknown format; valid formats: {', '.join(FILE_KINDS)}")
    x, y = _validated(str(path), x, y)
    return dataclasses.replace(_split(path.stem or path.name, x, y, test_fraction), modes=modes, mode_std=mode_std)


# ---------------------------------------------------------------- named data sets


def _digits() -> Dataset:
    """scikit-learn's digits split as genjax bundles it (``digits.npz``, written by ``tests/test_data.py``'s
    ``digits_from_scikit_learn``): pixels 0-16 as uint8 scaled to [0, 1]; loads in milliseconds, where importing
    scikit-learn to split them took 1-3 s at every start."""
    with np.load(DIGITS_FILE) as f:
        x_train, x_test = ((f[k] / 16.0).astype(np.float32) for k in ("x_train", "x_test"))
        return Dataset("digits", x_train, f["y_train"].astype(np.int32), x_test, f["y_test"].astype(np.int32))


def _fashion_mnist() -> Dataset:
    """The official split from ``$GENJAX_DATA/fashion-mnist`` (when set) or else Debian's folder."""
    folders = [Path(os.environ["GENJAX_DATA"]) / "fashion-mnist"] if os.environ.get("GENJAX_DATA") else []
    folders.append(DEBIAN_FASHION_MNIST)
    for folder in folders:
        if folder.is_dir() and len(_idx_files(folder)) == 2:
            return dataclasses.replace(_idx_folder(folder), name="fashion_mnist")
    raise DataError(
        f"fashion_mnist not found in {' or '.join(map(str, folders))}; install it with "
        "'apt-get install dataset-fashion-mnist', put its four IDX .gz files in $GENJAX_DATA/fashion-mnist, "
        "or pass the folder with --dataset FOLDER"
    )


def _ring_modes() -> np.ndarray:
    """8 centres on the unit circle, ``[8, 2]``."""
    angles = 2 * np.pi * np.arange(8) / 8
    return np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)


def _grid_modes() -> np.ndarray:
    """25 centres at {-4, -2, 0, 2, 4}^2, ``[25, 2]``."""
    axis = np.arange(-4, 5, 2, dtype=np.float32)
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)


def _mixture(name: str, modes: np.ndarray, std: float, n_train: int = 100_000, n_test: int = 10_000) -> Dataset:
    """Equal-weight isotropic Gaussians; labels are mode indices. Fixed seeds: 0 train, 1 test."""

    def draw(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, len(modes), n).astype(np.int32)
        return (modes[labels] + std * rng.standard_normal((n, 2))).astype(np.float32), labels

    (x_train, y_train), (x_test, y_test) = draw(n_train, 0), draw(n_test, 1)
    return Dataset(name, x_train, y_train, x_test, y_test, modes=modes, mode_std=std)


# ---------------------------------------------------------------- user files


def _array_file(path: Path, reader, **kwargs):
    try:
        return reader(path, **kwargs)
    except Exception as exc:  # numpy raises many types for corrupt files
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None


def _npz(path: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, float | None]:
    """Arrays ``x``, optional ``y``, and optional mixture ``modes`` ``[K, D]`` with ``mode_std`` (scalar)."""
    archive = _array_file(path, np.load, allow_pickle=False)
    try:
        names = list(archive.files)
        if "x" not in names:
            raise DataError(f"{path} holds arrays {names}; it needs an array named 'x' (and optionally 'y')")
        arrays = {name: _array_file(path, lambda _, name=name: archive[name]) for name in names}
    finally:
        archive.close()
    modes, mode_std = arrays.get("modes"), arrays.get("mode_std")
    if (modes is None) != (mode_std is None):
        raise DataError(f"{path}: 'modes' and 'mode_std' come together (mixture centres [K, D] and their std)")
    if modes is not None:
        x = arrays["x"]
        if modes.ndim != 2 or x.ndim != 2 or modes.shape[1] != x.shape[1] or np.size(mode_std) != 1:
            raise DataError(f"{path}: modes must be [K, {x.shape[-1]}] beside vectors x, and mode_std one number")
        modes, mode_std = modes.astype(np.float32), float(mode_std)
    return arrays["x"], arrays.get("y"), modes, mode_std


def _image_folder(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Images directly in ``path`` (no labels) or in one sub-folder per class (labels by sorted name)."""
    from PIL import Image

    visible = sorted(p for p in path.iterdir() if not p.name.startswith("."))  # .ipynb_checkpoints is no class
    classes = [p.name for p in visible if p.is_dir()]
    loose = [p.name for p in visible if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if classes and loose:
        raise DataError(f"{path} holds images ({loose[0]}, ...) beside class sub-folders ({classes[0]}, ...); put "
                        "every image in its class's folder, or remove the sub-folders for unlabelled data")
    if classes:
        files = [(f, i) for i, c in enumerate(classes) for f in sorted((path / c).iterdir())]
    else:
        files = [(f, None) for f in visible]
    files = [(f, label) for f, label in files if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")]
    if not files:
        raise DataError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}) nor IDX files")
    images = []
    for f, _ in files:
        try:
            with Image.open(f) as im:
                images.append(_pixels(im))
        except Exception as exc:
            raise DataError(f"cannot read image {f}: {exc}".splitlines()[0]) from None
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DataError(f"images in {path} differ in size or channels: {sorted(shapes)[:3]}; all must match")
    labels = None if classes == [] else np.array([label for _, label in files], np.int32)
    return np.stack(images), labels


def _pixels(im) -> np.ndarray:
    """A PIL image as ``[H, W]`` (grey) or ``[H, W, 3]`` pixels: uint8, or float32 in [0, 1] for 16-bit grey."""
    if im.mode.startswith("I;16"):  # a 16-bit PNG or TIFF: scaled, not clipped to 255
        return np.asarray(im).astype(np.float32) / (2.0**16 - 1)
    return np.asarray(im.convert("L") if im.mode in ("1", "L", "P") else im.convert("RGB"))


def _idx_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if "idx3-ubyte" in p.name)


def _read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) as a uint8 array: the header first, then exactly the values it
    announces (so a file that decompresses to more than its header says is refused without expanding it)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            zero, dtype_code, ndim = _struct.unpack(">HBB", _read_exactly(f, 4))
            if zero != 0 or dtype_code != 0x08 or not 1 <= ndim <= 4:
                raise ValueError("not an unsigned-byte IDX file (bad magic number)")
            dims = _struct.unpack(f">{ndim}I", _read_exactly(f, 4 * ndim))
            size = int(np.prod(dims, dtype=np.int64))
            if size > MAX_IDX_BYTES:
                raise ValueError(f"its header announces {dims}, {size / 2**30:.1f} GiB, over the "
                                 f"{MAX_IDX_BYTES / 2**30:.0f} GiB genjax reads")
            data = np.frombuffer(_read_exactly(f, size, dims), np.uint8)
            if f.read(1):
                raise ValueError(f"it holds more values than its header's {dims}")
        return data.reshape(dims)
    except (OSError, EOFError, ValueError, zlib.error, _struct.error) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}".splitlines()[0]) from None


def _read_exactly(f, size: int, dims: tuple[int, ...] | None = None) -> bytes:
    raw = f.read(size)
    if len(raw) < size:
        raise ValueError(f"it ends early: its header says {dims} but it holds {len(raw)} values" if dims else
                         "it ends inside its header")
    return raw


def _idx_pair(images: Path) -> tuple[np.ndarray, np.ndarray | None]:
    labels = images.with_name(images.name.replace("images-idx3", "labels-idx1"))
    return _read_idx(images), (_read_idx(labels) if labels.exists() and labels != images else None)


def _idx_folder(folder: Path) -> Dataset:
    """A folder of IDX files: MNIST's own ``train-*``/``t10k-*`` split when both are there."""
    files = _idx_files(folder)
    train = [f for f in files if f.name.startswith("train")]
    test = [f for f in files if f.name.startswith("t10k") or f.name.startswith("test")]
    if len(train) == 1 and len(test) == 1:
        x_train, y_train = _validated(str(train[0]), *_idx_pair(train[0]))
        x_test, y_test = _validated(str(test[0]), *_idx_pair(test[0]))
        if x_train.shape[1:] != x_test.shape[1:]:
            raise DataError(f"train and test images in {folder} differ in shape")
        return Dataset(folder.name, x_train, y_train, x_test, y_test)
    if len(files) != 1:
        raise DataError(f"{folder} holds {len(files)} IDX image files; expected one, or one train-* and one t10k-*")
    x, y = _validated(str(files[0]), *_idx_pair(files[0]))
    return _split(folder.name, x, y, TEST_FRACTION)


# ---------------------------------------------------------------- checks and split


def _validated(source: str, x: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Check and convert to float32 ``[N, H, W, C]`` in [0, 1] or ``[N, D]``, and int32 labels."""
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) \
            or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{source}: x must be real numbers (integers or floats), got dtype {x.dtype}")
    if x.ndim < 2 or x.ndim > 4:
        raise DataError(
            f"{source}: x has rank {x.ndim} (shape {x.shape}); valid: [N, D] vectors, [N, H, W] or [N, H, W, C] images"
        )
    if x.shape[0] == 0 or x.size == 0:
        raise DataError(f"{source}: the data set is empty (shape {x.shape})")
    if x.ndim == 3:
        x = x[..., None]
    if np.issubdtype(x.dtype, np.integer):
        if x.min() < 0 or x.max() > 255:
            raise DataError(f"{source}: integer pixels must lie in 0..255, got {x.min()}..{x.max()}")
        x = x.astype(np.float32) / 255.0
    with np.errstate(over="ignore"):  # values beyond float32 become Inf and are refused just below
        x = x.astype(np.float32, copy=False)  # float32 input is used as it is, not copied
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=tuple(range(1, x.ndim))).sum())
        raise DataError(f"{source}: {bad} examples hold NaN or Inf values")
    if x.ndim == 4 and (x.min() < 0.0 or x.max() > 1.0):
        raise DataError(f"{source}: image values must lie in [0, 1] (or be uint8), got {x.min():.3g}..{x.max():.3g}")
    return x, (None if y is None else checked_labels(source, y, len(x)))


def checked_labels(source: str, y: Any, rows: int) -> np.ndarray:
    """``y`` as int32 class indices ``[rows]`` in ``0..MAX_CLASSES-1``, checked before any cast."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != rows:
        raise DataError(f"{source}: labels y have shape {y.shape}; expected [{rows}], one per example")
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise DataError(f"{source}: labels y must be integer class indices 0..K-1, got dtype {y.dtype}")
    if y.size and (int(y.min()) < 0 or int(y.max()) >= MAX_CLASSES):
        raise DataError(f"{source}: labels y must be class indices in 0..{MAX_CLASSES - 1}, got {int(y.min())}.."
                        f"{int(y.max())}; number the classes 0..K-1")
    return y.astype(np.int32, copy=False)


def _split(name: str, x: np.ndarray, y: np.ndarray | None, test_fraction: float) -> Dataset:
    """Held-out split with a fixed seed; stratified when every class has at least two examples."""
    from sklearn.model_selection import train_test_split

    if len(x) < 2:
        raise DataError(f"{name}: {len(x)} example is too few to split into train and test")
    counts = np.unique(y, return_counts=True)[1] if y is not None else np.array([])
    stratify = y if len(counts) > 1 and counts.min() >= 2 else None
    try:
        parts = train_test_split(
            *(a for a in (x, y) if a is not None), test_size=test_fraction, random_state=SPLIT_SEED, stratify=stratify
        )
    except ValueError:
        parts = train_test_split(*(a for a in (x, y) if a is not None), test_size=test_fraction,
                                 random_state=SPLIT_SEED)
    if y is None:
        return Dataset(name, parts[0], None, parts[1], None)
    return Dataset(name, parts[0], parts[2], parts[1], parts[3])
