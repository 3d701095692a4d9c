"""Loaders: named data sets, every user file format, and one clear line for each kind of bad data."""
import gzip
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from genjax import data
from genjax.core.errors import DataError


def test_digits_split_shapes_and_scaling(digits):
    assert digits.x_train.shape == (1437, 8, 8, 1) and digits.x_test.shape == (360, 8, 8, 1)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int32
    assert digits.x_train.min() == 0.0 and digits.x_train.max() == 1.0
    assert digits.num_classes == 10 and digits.data_shape == (8, 8, 1)
    # stratified: every class holds its share of the 360 test images
    assert np.bincount(digits.y_test).min() >= 35


def digits_from_scikit_learn() -> dict[str, np.ndarray]:
    """genjax/core/digits.npz as it was written: scikit-learn's digits (pixels 0-16 as uint8), split 80/20
    stratified with seed 0 (``np.savez_compressed(path, **digits_from_scikit_learn())``)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    images, labels = load_digits(return_X_y=True)
    x = images.astype(np.uint8).reshape(-1, 8, 8, 1)
    x_train, x_test, y_train, y_test = train_test_split(
        x, labels.astype(np.uint8), test_size=0.2, random_state=0, stratify=labels)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def test_the_bundled_digits_are_scikit_learns_split_scaled_to_0_1(digits):
    expected = digits_from_scikit_learn()
    with np.load(data.DIGITS_FILE) as bundled:
        assert sorted(bundled.files) == sorted(expected) and all(
            bundled[k].dtype == v.dtype and np.array_equal(bundled[k], v) for k, v in expected.items())
    for split in ("train", "test"):
        np.testing.assert_array_equal(getattr(digits, f"x_{split}"),
                                      (expected[f"x_{split}"] / 16.0).astype(np.float32))
        np.testing.assert_array_equal(getattr(digits, f"y_{split}"), expected[f"y_{split}"])


@pytest.mark.parametrize("name,n_modes,std", [("ring", 8, 0.01), ("grid", 25, 0.05)])
def test_mixtures(name, n_modes, std):
    ds = data.load(name)
    assert ds.x_train.shape == (100_000, 2) and ds.modes.shape == (n_modes, 2) and ds.mode_std == std
    offsets = ds.x_train - ds.modes[ds.y_train]
    assert abs(offsets.std() - std) < 0.05 * std
    assert np.bincount(ds.y_train).min() > 100_000 / n_modes * 0.9
    again = data.load(name)
    np.testing.assert_array_equal(ds.x_train, again.x_train)  # fixed seed


def test_npz_with_labels_is_split(tmp_path):
    x = np.random.default_rng(0).random((50, 6, 6), dtype=np.float32)
    y = np.repeat(np.arange(5), 10)
    np.savez(tmp_path / "set.npz", x=x, y=y)
    ds = data.load(tmp_path / "set.npz")
    assert ds.x_train.shape == (40, 6, 6, 1) and ds.x_test.shape == (10, 6, 6, 1)
    assert sorted(ds.y_test.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]  # stratified
    assert ds.name == "set"


def test_npz_mixture_with_modes(tmp_path):
    modes = np.array([[0.0, 0.0], [5.0, 5.0]])
    x = np.repeat(modes, 20, axis=0) + 0.1 * np.random.default_rng(0).standard_normal((40, 2))
    np.savez(tmp_path / "mix.npz", x=x, modes=modes, mode_std=0.1)
    ds = data.load(tmp_path / "mix.npz")
    np.testing.assert_allclose(ds.modes, modes)
    assert ds.mode_std == 0.1
    np.savez(tmp_path / "bad.npz", x=x, modes=modes)
    with pytest.raises(DataError, match="'modes' and 'mode_std' come together"):
        data.load(tmp_path / "bad.npz")


def test_npy_vectors_and_uint8_images(tmp_path):
    np.save(tmp_path / "v.npy", np.linspace(-3, 3, 40, dtype=np.float64).reshape(20, 2))
    vectors = data.load(tmp_path / "v.npy")
    assert vectors.data_shape == (2,) and vectors.y_train is None and vectors.x_train.dtype == np.float32
    np.save(tmp_path / "u.npy", np.full((10, 4, 4, 3), 255, np.uint8))
    images = data.load(tmp_path / "u.npy")
    assert images.data_shape == (4, 4, 3) and images.x_train.max() == 1.0


def test_image_folder_with_and_without_classes(tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / "labelled" / label).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((5, 7), 40 * i, np.uint8)).save(tmp_path / "labelled" / label / f"{i}.png")
    ds = data.load(tmp_path / "labelled")
    assert ds.data_shape == (5, 7, 1) and ds.num_classes == 2 and len(ds.x_train) + len(ds.x_test) == 10
    (tmp_path / "flat").mkdir()
    for i in range(4):
        Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / "flat" / f"{i}.png")
    flat = data.load(tmp_path / "flat")
    assert flat.data_shape == (3, 3, 3) and flat.y_train is None


def test_hidden_folders_are_no_class_and_16_bit_images_are_scaled(tmp_path):
    for label in ("a", "b", ".ipynb_checkpoints"):
        (tmp_path / label).mkdir()
        for i in range(3):
            pixels = np.full((4, 4), 1000 * (i + 1) * (label == "a") + 65535 * (label == "b"), np.uint16)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    (tmp_path / "a" / ".hidden.png").write_bytes(b"not an image")
    ds = data.load(tmp_path)
    assert ds.num_classes == 2 and len(ds.x_train) + len(ds.x_test) == 6
    values = np.unique(np.concatenate([ds.x_train, ds.x_test]))
    np.testing.assert_allclose(values, [1000 / 65535, 2000 / 65535, 3000 / 65535, 1.0], rtol=1e-6)


def test_float32_input_is_not_copied_and_labels_are_checked_however_the_split_is_built():
    x = np.random.default_rng(0).random((10, 3), dtype=np.float32)
    assert data._validated("a", x, None)[0] is x
    with pytest.raises(DataError, match=r"class indices in 0..9999, got -3..1"):
        data.Dataset("mine", x[:5], np.array([0, 1, 0, 1, -3]), x[5:], np.zeros(5, int))
    with pytest.raises(DataError, match="integer class indices"):
        data.Dataset("mine", x[:5], np.zeros(5), x[5:], np.zeros(5))
    with pytest.raises(DataError, match="labels exist for only one of train and test"):
        data.Dataset("mine", x[:5], np.zeros(5, int), x[5:], None)
    assert data.Dataset("mine", x[:5], np.zeros(5, np.int64), x[5:], np.ones(5, int)).y_train.dtype == np.int32


def _write_idx(path, array, gz=False):
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    (gzip.open if gz else open)(path, "wb").write(header + array.astype(np.uint8).tobytes())


def test_idx_file_and_mnist_folder(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (30, 4, 4))
    labels = np.arange(30) % 3
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, gz=True)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, gz=True)
    single = data.load(tmp_path / "train-images-idx3-ubyte.gz")
    assert single.data_shape == (4, 4, 1) and single.num_classes == 3
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images[:6], gz=True)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels[:6], gz=True)
    folder = data.load(tmp_path)
    assert len(folder.x_train) == 30 and len(folder.x_test) == 6  # MNIST's own split kept
    np.testing.assert_allclose(folder.x_test[..., 0], images[:6] / 255.0, rtol=1e-6)


BAD_CASES = {
    "missing": (lambda d: d / "nope.npz", "no such file"),
    "unknown format": (lambda d: (d / "x.csv").write_text("1,2") and d / "x.csv", "unknown format"),
    "rank 1": (lambda d: np.save(d / "a.npy", np.zeros(5)) or d / "a.npy", "rank 1"),
    "rank 5": (lambda d: np.save(d / "a.npy", np.zeros((2, 2, 2, 2, 2))) or d / "a.npy", "rank 5"),
    "nan": (lambda d: np.save(d / "a.npy", np.array([[0.0, np.nan], [1, 2]])) or d / "a.npy", "NaN or Inf"),
    "inf": (lambda d: np.save(d / "a.npy", np.array([[0.0, np.inf], [1, 2]])) or d / "a.npy", "NaN or Inf"),
    "empty": (lambda d: np.save(d / "a.npy", np.zeros((0, 3))) or d / "a.npy", "empty"),
    "label count": (lambda d: np.savez(d / "a.npz", x=np.zeros((4, 2)), y=np.zeros(3, int)) or d / "a.npz", "one per"),
    "float labels": (lambda d: np.savez(d / "a.npz", x=np.zeros((4, 2)), y=np.zeros(4)) or d / "a.npz", "indices"),
    "no x": (lambda d: np.savez(d / "a.npz", images=np.zeros((4, 2))) or d / "a.npz", "named 'x'"),
    "corrupt npz": (lambda d: (d / "a.npz").write_bytes(b"PK\x03\x04garbage") and d / "a.npz", "cannot read"),
    "corrupt npy": (lambda d: (d / "a.npy").write_bytes(b"\x93NUMPY\x01") and d / "a.npy", "cannot read"),
    "image range": (lambda d: np.save(d / "a.npy", np.full((3, 2, 2, 1), 2.0)) or d / "a.npy", "[0, 1]"),
    "text array": (lambda d: np.save(d / "a.npy", np.array([["a", "b"]])) or d / "a.npy", "real numbers"),
    "bad idx": (lambda d: (d / "x-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00")
                and d / "x-images-idx3-ubyte",
                "cannot read IDX"),
    "empty folder": (lambda d: (d / "f").mkdir() or d / "f", "no images"),
    "complex": (lambda d: np.save(d / "a.npy", np.ones((4, 2), np.complex64)) or d / "a.npy", "real numbers"),
    "negative labels": (lambda d: np.savez(d / "a.npz", x=np.zeros((4, 2)), y=np.array([0, 1, -1, 0]))
                        or d / "a.npz", "class indices in 0..9999, got -1..1"),
    "huge labels": (lambda d: np.savez(d / "a.npz", x=np.zeros((4, 2)), y=np.array([0, 10**8, 0, 1]))
                    or d / "a.npz", "got 0..100000000; number the classes 0..K-1"),
    "2^31 labels": (lambda d: np.savez(d / "a.npz", x=np.zeros((4, 2)), y=np.array([0, 2**31, 0, 1], np.int64))
                    or d / "a.npz", "got 0..2147483648"),
    "truncated gz": (lambda d: _cut_gz(d / "train-images-idx3-ubyte.gz"), "cannot read IDX"),
    "corrupt gz": (lambda d: (d / "x-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage-garbage")
                   and d / "x-images-idx3-ubyte.gz", "cannot read IDX"),
    "idx too long": (lambda d: _idx_bomb(d / "x-images-idx3-ubyte.gz"), "more values than its header's (2, 2, 2)"),
    "idx huge header": (lambda d: (d / "x-images-idx3-ubyte").write_bytes(
        struct.pack(">HBB3I", 0, 8, 3, 100_000, 1000, 1000)) and d / "x-images-idx3-ubyte", "GiB, over the 16 GiB"),
    "idx short": (lambda d: (d / "x-images-idx3-ubyte").write_bytes(struct.pack(">HBB3I", 0, 8, 3, 2, 2, 2) + b"ab")
                  and d / "x-images-idx3-ubyte", "ends early"),
    "loose images beside classes": (lambda d: _classes_and_loose(d), "beside class sub-folders"),
}


def _cut_gz(path):
    _write_idx(path, np.zeros((20, 4, 4)), gz=True)
    path.write_bytes(path.read_bytes()[:30])
    return path


def _idx_bomb(path):
    """A gzip whose header says 8 values but that expands to 50 MB: refused without expanding it all."""
    header = struct.pack(">HBB3I", 0, 8, 3, 2, 2, 2)
    with gzip.open(path, "wb") as f:
        f.write(header + b"\0" * 50_000_000)
    return path


def _classes_and_loose(d):
    (d / "set" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(d / "set" / "a" / "0.png")
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(d / "set" / "loose.png")
    return d / "set"


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_data_gets_one_clear_line(tmp_path, case):
    make, expected = BAD_CASES[case]
    with pytest.raises(DataError, match=None) as info:
        data.load(make(tmp_path))
    message = str(info.value)
    assert expected in message and "\n" not in message


def test_unknown_name_lists_the_choices():
    with pytest.raises(DataError, match="valid names: digits, ring, grid"):
        data.load("mnist-please")


@given(hnp.arrays(st.sampled_from([np.float32, np.float64, np.int16, np.uint8]),
                  hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=4)))
def test_any_array_loads_or_is_refused_clearly(tmp_path_factory, array):
    path = tmp_path_factory.mktemp("h") / "a.npy"
    np.save(path, array)
    try:
        ds = data.load(path)
    except DataError as exc:
        assert "\n" not in str(exc)
        return
    for x in (ds.x_train, ds.x_test):
        assert x.dtype == np.float32 and np.isfinite(x).all() and x.ndim in (2, 4)
        if x.ndim == 4:
            assert x.min() >= 0 and x.max() <= 1


def _require_fashion_mnist():
    """The real files: CI installs Debian's package; elsewhere the test is skipped when they are absent."""
    import os

    if not data.DEBIAN_FASHION_MNIST.is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI must install dataset-fashion-mnist (.ci/run does, as root)")
        pytest.skip("apt-get install dataset-fashion-mnist to run this test")


def test_fashion_mnist_official_split(monkeypatch):
    _require_fashion_mnist()
    monkeypatch.delenv("GENJAX_DATA", raising=False)
    ds = data.load("fashion_mnist")
    assert ds.name == "fashion_mnist"
    assert ds.x_train.shape == (60_000, 28, 28, 1) and ds.x_test.shape == (10_000, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    assert ds.num_classes == 10
    assert (np.bincount(ds.y_train) == 6000).all() and (np.bincount(ds.y_test) == 1000).all()


def test_fashion_mnist_from_genjax_data_first(tmp_path, monkeypatch):
    """$GENJAX_DATA/fashion-mnist wins over Debian's folder; a missing data set says how to get it."""
    images = np.random.default_rng(0).integers(0, 256, (6, 4, 4), np.uint8)
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for split in ("train", "t10k"):
        _write_idx(folder / f"{split}-images-idx3-ubyte.gz", images, gz=True)
        _write_idx(folder / f"{split}-labels-idx1-ubyte.gz", np.arange(6) % 3, gz=True)
    monkeypatch.setenv("GENJAX_DATA", str(tmp_path))
    ds = data.load("fashion_mnist")
    assert ds.x_train.shape == (6, 4, 4, 1) and ds.name == "fashion_mnist"
    monkeypatch.setenv("GENJAX_DATA", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "no-such-folder")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist.*--dataset FOLDER"):
        data.load("fashion_mnist")
