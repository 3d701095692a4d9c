"""Each family's figures follow from its capabilities: encoders draw reconstructions and interpolations,
samplers a sample grid (a row per head when there are several) or a scatter over 2-D data."""
import dataclasses

import jax
from PIL import Image

from genjax import autoencoder, data, dgn, gan
from genjax.eval.figures import write_figures


def _state(family, cfg, dataset, labelled=False):
    rows = family.batch_rows(cfg)
    batch = {"x": dataset.x_train[:rows], **({"y": dataset.y_train[:rows]} if labelled else {})}
    return family.init(jax.random.key(0), cfg, batch)


def _size(path):
    with Image.open(path) as image:
        return image.size


def _figures(family, state, dataset, workdir):
    workdir.mkdir()
    return write_figures(family, state, dataset, workdir)


def test_encoder_figures(digits, tiny_config, tmp_path):
    written = _figures(autoencoder, _state(autoencoder, tiny_config, digits), digits, tmp_path / "ae")
    assert [p.name for p in written] == ["reconstructions.png", "interpolations.png"]


def test_a_grid_row_per_head_or_class(digits, tiny_gan_config, tmp_path):
    def dgn_config(heads):
        return dgn.Config(hidden_dims=(16,), head_dims=(8,), num_heads=heads, samples_per_head=4, batch_size=4)

    (one,) = _figures(dgn, _state(dgn, dgn_config(1), digits), digits, tmp_path / "one")
    (ten,) = _figures(dgn, _state(dgn, dgn_config(10), digits, labelled=True), digits, tmp_path / "ten")
    assert one.name == ten.name == "samples.png"
    assert _size(ten)[1] > _size(one)[1]  # 10 rows of 10 against 8 rows of 8
    conditional = dataclasses.replace(tiny_gan_config, num_classes=10, pack=1)
    (plain,) = _figures(gan, _state(gan, tiny_gan_config, digits), digits, tmp_path / "plain")
    (per_class,) = _figures(gan, _state(gan, conditional, digits, labelled=True), digits, tmp_path / "classes")
    assert _size(per_class)[1] > _size(plain)[1]


def test_figures_of_2d_data(tiny_config, tiny_gan_config, tmp_path):
    ring = data.load("ring")
    (samples,) = _figures(gan, _state(gan, tiny_gan_config, ring), ring, tmp_path / "gan")
    coder = dataclasses.replace(tiny_config, output="linear")
    written = _figures(autoencoder, _state(autoencoder, coder, ring), ring, tmp_path / "ae")
    assert samples.name == "samples.png" and [p.name for p in written] == ["reconstructions.png"]  # no interpolation
    assert min(_size(samples)) > 100
