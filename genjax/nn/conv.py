"""2-D convolutions that XLA:CPU runs fast: patches and one matrix product.

XLA:CPU's own convolution is slow to differentiate, and slower still inside a rolled ``lax.scan``
(the loop's fused steps; ``benchmarks/conv_in_loop.py`` reproduces it): a small conv classifier on 28x28
images trains at about 1 step/s that way on 2 cores, against about 30 with the lowering here. On the CPU,
:class:`Conv` pads the input with ``lax.pad``, gathers the ``kh * kw`` shifted windows into patches
``[N, H', W', kh * kw * C]`` and multiplies them by the kernel reshaped to ``[kh * kw * C, O]``: one dot, whose
gradients are dots too.
:class:`ConvTranspose` is sub-pixel: one stride-1 patches dot whose kernel holds every output phase's taps,
then a depth-to-space reshape (:func:`conv_transpose`). On other backends (GPU, TPU) both call
``lax.conv_general_dilated`` (cuDNN and friends are fast). Both paths compute what ``flax.linen.Conv`` /
``ConvTranspose`` with ``padding="SAME"`` compute, with the same parameters (``kernel`` ``[kh, kw, C, O]``,
``bias`` ``[O]``), to float tolerance. ``benchmarks/conv_lowering.py`` times each lowering per layer.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genjax.nn import draws

LOWERINGS = ("auto", "patches", "xla")
DIMENSIONS = ("NHWC", "HWIO", "NHWC")  # flax's layouts


_FORCED: list[str] = []  # the lowerings of the open ``forced`` contexts, innermost last


def lowering(choice: str = "auto") -> str:
    """``patches`` on the CPU, ``xla`` elsewhere, for ``choice="auto"`` (inside :func:`forced`, its lowering);
    otherwise ``choice`` itself."""
    if choice not in LOWERINGS:
        raise ValueError(f"unknown conv lowering {choice!r}; valid choices: {', '.join(LOWERINGS)}")
    if choice == "auto":
        return _FORCED[-1] if _FORCED else "patches" if jax.default_backend() == "cpu" else "xla"
    return choice


@contextlib.contextmanager
def forced(choice: str) -> Iterator[None]:
    """Functions traced inside this context lower ``how="auto"`` convolutions with ``choice`` (e.g. to count a
    network's FLOPs with XLA's own convolutions on the CPU). JAX's trace caches are cleared on entry and exit,
    so that jitted functions traced before are traced again; compiled executables already held are kept."""
    if choice not in LOWERINGS[1:]:
        raise ValueError(f"unknown conv lowering {choice!r}; valid choices: {', '.join(LOWERINGS[1:])}")
    jax.clear_caches()
    _FORCED.append(choice)
    try:
        yield
    finally:
        _FORCED.pop()
        jax.clear_caches()


def _transpose_padding(kernel: int, stride: int) -> tuple[int, int]:
    """The padding of the dilated input that ``lax.conv_transpose(..., "SAME")`` uses: output ``size * stride``."""
    total = kernel + stride - 2
    low = kernel - 1 if stride > kernel - 1 else -(-total // 2)
    return low, total - low


def _patch_dot(x: jax.Array, kernel: jax.Array, strides: tuple[int, int]) -> jax.Array:
    """A VALID convolution of the (already padded) ``x`` ``[N, H, W, C]`` with ``kernel`` ``[kh, kw, C, O]``."""
    kh, kw, c, o = kernel.shape
    n, h, w, _ = x.shape
    sh, sw = strides
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    windows = [x[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
               for i in range(kh) for j in range(kw)]
    patches = jnp.concatenate(windows, axis=-1).reshape(n * oh * ow, kh * kw * c)
    return (patches @ kernel.reshape(kh * kw * c, o)).reshape(n, oh, ow, o)


def conv(x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (1, 1), how: str = "auto") -> jax.Array:
    """``SAME`` convolution of ``x`` ``[N, H, W, C]`` with ``kernel`` ``[kh, kw, C, O]``: ``[N, ceil(H / sh),
    ceil(W / sw), O]``."""
    strides = tuple(strides)
    if lowering(how) == "xla":
        return jax.lax.conv_general_dilated(x, kernel, strides, "SAME", dimension_numbers=DIMENSIONS)
    pads = jax.lax.padtype_to_pads(x.shape[1:3], kernel.shape[:2], strides, "SAME")
    zero = jnp.zeros((), x.dtype)
    padded = jax.lax.pad(x, zero, ((0, 0, 0), (*pads[0], 0), (*pads[1], 0), (0, 0, 0)))
    return _patch_dot(padded, kernel, strides)


def _phase_taps(kernel: int, stride: int, low: int) -> list[list[tuple[int, int]]]:
    """For each output phase ``a`` in ``0..stride-1``: the ``(tap t, input offset d)`` pairs with which the
    transposed convolution computes output ``stride * m + a`` as the sum of ``x[m + d] * kernel[t]``."""
    return [[(t, (a + t - low) // stride) for t in range(kernel) if (a + t - low) % stride == 0]
            for a in range(stride)]


def _phase_selector(kernel: int, stride: int, low: int) -> tuple[np.ndarray, int]:
    """A 0/1 array ``[window, stride, kernel]`` that places tap t at window row ``d - first`` of phase ``a``,
    and ``first``, the smallest input offset."""
    taps = _phase_taps(kernel, stride, low)
    offsets = [d for phase in taps for _, d in phase]
    first = min(offsets)
    select = np.zeros((max(offsets) - first + 1, stride, kernel), np.float32)
    for a, phase in enumerate(taps):
        for t, d in phase:
            select[d - first, a, t] = 1.0
    return select, first


def conv_transpose(x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (2, 2), how: str = "auto") -> jax.Array:
    """``SAME`` transposed convolution (``flax.linen.ConvTranspose``'s, kernel not flipped) of ``x``
    ``[N, H, W, C]`` with ``kernel`` ``[kh, kw, C, O]``: ``[N, H * sh, W * sw, O]``.

    The patches lowering is sub-pixel: output pixel ``(sh * m + a, sw * n + b)`` is a sum over a few input
    pixels near ``(m, n)``, so one stride-1 convolution of ``x`` with a kernel ``[wh, ww, C, sh * sw * O]``
    (each phase's taps of ``kernel`` in place, zeros elsewhere) followed by a depth-to-space reshape computes
    every output without multiplying the zeros a spread-out input would hold."""
    strides = tuple(strides)
    if lowering(how) == "xla":
        return jax.lax.conv_transpose(x, kernel, strides, "SAME", dimension_numbers=DIMENSIONS)
    kh, kw, c, o = kernel.shape
    (sh, sw), n, h, w = strides, *x.shape[:3]
    rows, first_row = _phase_selector(kh, sh, _transpose_padding(kh, sh)[0])
    cols, first_col = _phase_selector(kw, sw, _transpose_padding(kw, sw)[0])
    phases = jnp.einsum("pat,qbu,tuco->pqcabo", rows, cols, kernel).reshape(len(rows), len(cols), c, sh * sw * o)
    zero = jnp.zeros((), x.dtype)
    padded = jax.lax.pad(x, zero, ((0, 0, 0), (-first_row, len(rows) - 1 + first_row, 0),
                                   (-first_col, len(cols) - 1 + first_col, 0), (0, 0, 0)))
    out = _patch_dot(padded, phases, (1, 1))  # [N, H, W, sh * sw * O]
    return out.reshape(n, h, w, sh, sw, o).transpose(0, 1, 3, 2, 4, 5).reshape(n, h * sh, w * sw, o)


def max_pool(x: jax.Array, size: int = 2) -> jax.Array:
    """Non-overlapping ``size x size`` max-pooling of ``x`` ``[N, H, W, C]`` (H, W divisible by ``size``) by a
    reshape, whose gradient XLA:CPU computes far faster than ``flax.linen.max_pool``'s ``select_and_scatter``."""
    n, h, w, c = x.shape
    return x.reshape(n, h // size, size, w // size, size, c).max(axis=(2, 4))


class _ConvLayer(nn.Module):
    """A kernel ``[kh, kw, C, features]`` and a bias ``[features]``, applied by the subclass's ``op``."""

    features: int
    kernel_size: tuple[int, int] = (3, 3)
    strides: tuple[int, int] = (1, 1)
    how: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", draws.lecun_normal(), (*self.kernel_size, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return self.op(x, kernel, self.strides, self.how) + bias[None, None, None, :]


class Conv(_ConvLayer):
    """``flax.linen.Conv(features, kernel_size, strides, padding="SAME")`` with the lowering of :func:`conv`."""

    op = staticmethod(conv)


class ConvTranspose(_ConvLayer):
    """``flax.linen.ConvTranspose(features, kernel_size, strides, padding="SAME")`` with the lowering of
    :func:`conv_transpose` (strides default to 2 here)."""

    strides: tuple[int, int] = (2, 2)
    op = staticmethod(conv_transpose)
