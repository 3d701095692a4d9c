"""The same GANs, autoencoders and VAEs in PyTorch, for side-by-side throughput (``benchmarks/throughput.py``).

They mirror genjax's networks (:mod:`genjax.nn.nets`) and steps, MLP or convolutional: the GAN's generator
(ReLU, sigmoid output; DCGAN-style with BatchNorm for images) and leaky-ReLU discriminator judging packs of
``pack`` samples, non-saturating loss with the R1 penalty on real data (double backward), Adam with the same
learning rates and betas, and the generator EMA; the autoencoder's ReLU encoder and mirrored decoder with
sigmoid outputs, Gaussian input noise and MSE; the VAE's Gaussian encoder, one reparameterised draw, Gaussian
likelihood and KL. Convolutions are 3x3 with stride 2 (padding 1; transposed ones with output padding 1), so
every map has the size genjax's ``SAME`` padding gives it and each layer does the same multiply-adds; images
are NCHW. Data sit in memory as one tensor and every step samples its batch with ``torch.randint``, the
idiomatic PyTorch loop. ``compile=True`` wraps the networks in ``torch.compile``; ``device`` is where data,
networks and random draws live (``"cuda"`` when genjax runs on a GPU, so that the two are compared on the same
chip). PyTorch is the optional ``bench`` extra (on our machines ``pip install torch==2.13.0`` takes the CPU
build).
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def mlp(widths: list[int], activation: Callable[[], nn.Module], last: nn.Module | None = None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(widths) - 2:
            layers.append(activation())
    if last is not None:
        layers.append(last)
    return nn.Sequential(*layers)


def encoder(data_shape: tuple[int, ...], out_dim: int, architecture: str, hidden: tuple[int, ...],
            channels: tuple[int, ...], activation: Callable[[], nn.Module]) -> nn.Sequential:
    """genjax's ``nets.Encoder``: ``[N, *data_shape]`` (images NCHW) to ``[N, out_dim]``."""
    if architecture != "conv":
        return nn.Sequential(nn.Flatten(), mlp([math.prod(data_shape), *hidden, out_dim], activation))
    height, width, c_in = data_shape
    layers: list[nn.Module] = []
    for c_out in channels:
        layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), activation()]
        c_in, height, width = c_out, -(-height // 2), -(-width // 2)
    return nn.Sequential(*layers, nn.Flatten(), mlp([c_in * height * width, *hidden, out_dim], activation))


def decoder(data_shape: tuple[int, ...], in_dim: int, architecture: str, hidden: tuple[int, ...],
            channels: tuple[int, ...], activation: Callable[[], nn.Module], batch_norm: bool = False) -> nn.Sequential:
    """genjax's ``nets.Decoder`` with a sigmoid output: ``[N, in_dim]`` to ``[N, *data_shape]`` (images NCHW).
    Sizes must halve exactly ``len(channels)`` times (28x28 with two levels)."""
    def block(layer: nn.Module, features: int, norm: type[nn.Module]) -> list[nn.Module]:
        return [layer, *([norm(features, momentum=0.1)] if batch_norm else []), activation()]

    widths = [in_dim, *reversed(hidden)]
    layers = [m for a, b in zip(widths[:-1], widths[1:]) for m in block(nn.Linear(a, b), b, nn.BatchNorm1d)]
    if architecture != "conv":
        return nn.Sequential(*layers, nn.Linear(widths[-1], math.prod(data_shape)), nn.Sigmoid(),
                             nn.Unflatten(1, tuple(data_shape)))
    height, width, c_out = data_shape
    levels = len(channels)
    small = (channels[-1], height // 2**levels, width // 2**levels)
    layers += [*block(nn.Linear(widths[-1], math.prod(small)), math.prod(small), nn.BatchNorm1d),
               nn.Unflatten(1, small)]
    c_in = channels[-1]
    for c in reversed(channels[:-1]):
        layers += block(nn.ConvTranspose2d(c_in, c, 3, stride=2, padding=1, output_padding=1), c, nn.BatchNorm2d)
        c_in = c
    return nn.Sequential(*layers, nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1),
                         nn.Sigmoid())


def as_tensor(x: np.ndarray, device: str) -> torch.Tensor:
    """Training data ``[N, *shape]`` as one float32 tensor, images ``[N, H, W, C]`` turned NCHW."""
    data = torch.as_tensor(x, dtype=torch.float32, device=device)
    return data.permute(0, 3, 1, 2).contiguous() if data.ndim == 4 else data.reshape(len(data), -1)


def _shape(x: np.ndarray, architecture: str) -> tuple[int, ...]:
    return tuple(x.shape[1:]) if architecture == "conv" else (math.prod(x.shape[1:]),)


def gan_step(x: np.ndarray, latent_dim: int, g_hidden: tuple[int, ...], d_hidden: tuple[int, ...], batch: int,
             pack: int, r1_weight: float, lr: float, betas: tuple[float, float], ema_decay: float,
             architecture: str = "mlp", channels: tuple[int, ...] = (), batch_norm: bool = False,
             compile: bool = False, device: str = "cpu") -> Callable[[], None]:
    """A closure running one GAN step (a discriminator update, a generator update, the EMA); its ``parameters``
    attribute counts G and D. ``pack`` 1 only for images."""
    data = as_tensor(x, device)
    shape = _shape(x, architecture)
    if architecture == "conv" and pack != 1:
        raise ValueError("the convolutional twin judges single images (pack 1)")
    generator = decoder(shape, latent_dim, architecture, g_hidden, channels, nn.ReLU, batch_norm).to(device)
    d_shape = shape if architecture == "conv" else (pack * shape[0],)
    discriminator = encoder(d_shape, 1, architecture, d_hidden, channels, lambda: nn.LeakyReLU(0.2)).to(device)
    ema = copy.deepcopy(generator).requires_grad_(False)
    g_opt = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas)
    g_net, d_net = (torch.compile(generator), torch.compile(discriminator)) if compile else (generator, discriminator)
    packed = (batch // pack, *data.shape[1:]) if pack == 1 else (batch // pack, pack * shape[0])

    def step() -> None:
        real = data[torch.randint(len(data), (batch,), device=device)].reshape(packed)
        real.requires_grad_(True)
        fake = g_net(torch.randn(batch, latent_dim, device=device)).detach().reshape(packed)
        d_real, d_fake = d_net(real), d_net(fake)
        d_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        if r1_weight:
            (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            d_loss = d_loss + r1_weight * 0.5 * grad.pow(2).flatten(1).sum(1).mean()
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        fake = g_net(torch.randn(batch, latent_dim, device=device)).reshape(packed)
        g_loss = F.softplus(-d_net(fake)).mean()
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), generator.parameters()):
                p_ema.lerp_(p, 1.0 - ema_decay)

    step.parameters = parameter_count(generator, discriminator)
    return step


def autoencoder_step(x: np.ndarray, latent_dim: int, hidden: tuple[int, ...], batch: int, noise: float, lr: float,
                     architecture: str = "mlp", channels: tuple[int, ...] = (), compile: bool = False,
                     device: str = "cpu") -> Callable[[], None]:
    """A closure running one denoising-autoencoder Adam step (``parameters``: its parameter count)."""
    data = as_tensor(x, device)
    shape = _shape(x, architecture)
    model = nn.Sequential(encoder(shape, latent_dim, architecture, hidden, channels, nn.ReLU),
                          decoder(shape, latent_dim, architecture, hidden, channels, nn.ReLU)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    net = torch.compile(model) if compile else model

    def step() -> None:
        clean = data[torch.randint(len(data), (batch,), device=device)]
        loss = F.mse_loss(net(clean + noise * torch.randn_like(clean)).reshape(clean.shape), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step.parameters = parameter_count(model)
    return step


def vae_step(x: np.ndarray, latent_dim: int, hidden: tuple[int, ...], batch: int, output_std: float, lr: float,
             architecture: str = "mlp", channels: tuple[int, ...] = (), compile: bool = False,
             device: str = "cpu") -> Callable[[], None]:
    """A closure running one VAE Adam step: Gaussian likelihood with std ``output_std``, KL to N(0, I), nats
    per example (``parameters``: its parameter count)."""
    data = as_tensor(x, device)
    shape = _shape(x, architecture)
    enc = encoder(shape, 2 * latent_dim, architecture, hidden, channels, nn.ReLU).to(device)
    dec = decoder(shape, latent_dim, architecture, hidden, channels, nn.ReLU).to(device)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=lr)
    enc_net, dec_net = (torch.compile(enc), torch.compile(dec)) if compile else (enc, dec)

    def step() -> None:
        clean = data[torch.randint(len(data), (batch,), device=device)]
        mean, log_var = enc_net(clean).chunk(2, dim=-1)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        recon = (dec_net(z).reshape(clean.shape) - clean).pow(2).flatten(1).sum(1) / (2 * output_std**2)
        kl = 0.5 * (log_var.exp() + mean.pow(2) - 1.0 - log_var).sum(1)
        loss = (recon + kl).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step.parameters = parameter_count(enc, dec)
    return step


def parameter_count(*modules: nn.Module) -> int:
    """Trainable parameters of ``modules`` (a twin's count equals genjax's for the same config)."""
    return sum(p.numel() for m in modules for p in m.parameters() if p.requires_grad)


def steps_per_second(step: Callable[[], None], steps: int, repeats: int, warmup: int = 3,
                     device: str = "cpu") -> tuple[float, float]:
    """(median steps/s over ``repeats`` timed blocks of ``steps`` steps, seconds of the first ``warmup`` steps).

    On a CUDA ``device`` every block ends by waiting for the queued kernels, as genjax's timings do.
    """
    def finish() -> None:
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    finish()
    warmup_seconds = time.perf_counter() - t0
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        finish()
        rates.append(steps / (time.perf_counter() - t0))
    return float(np.median(rates)), warmup_seconds
