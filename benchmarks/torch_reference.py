"""The same MLP GAN and MLP autoencoder in PyTorch, for side-by-side throughput (``benchmarks/throughput.py``).

They mirror genjax's default networks and steps: the GAN's generator (ReLU MLP, sigmoid output) and
leaky-ReLU discriminator judging packs of ``pack`` samples, non-saturating loss with the R1 penalty
on real data (double backward), Adam with the same learning rates and betas, and the generator EMA;
the autoencoder's ReLU encoder and mirrored decoder with sigmoid outputs, Gaussian input noise and
MSE. Data sit in memory as one tensor and every step samples its batch with ``torch.randint``, the
idiomatic PyTorch loop. ``compile=True`` wraps the networks in ``torch.compile``; ``device`` is
where data, networks and random draws live (``"cuda"`` when genjax runs on a GPU, so that the two
are compared on the same chip). PyTorch is the optional ``bench`` extra (on our machines
``pip install torch==2.13.0`` takes the CPU build).
"""
from __future__ import annotations

import copy
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


def gan_step(x: np.ndarray, latent_dim: int, g_hidden: tuple[int, ...], d_hidden: tuple[int, ...], batch: int,
             pack: int, r1_weight: float, lr: float, betas: tuple[float, float], ema_decay: float,
             compile: bool = False, device: str = "cpu") -> Callable[[], None]:
    """A closure running one GAN step (a discriminator update, a generator update, the EMA)."""
    data = torch.as_tensor(x.reshape(len(x), -1), dtype=torch.float32, device=device)
    dim = data.shape[1]
    generator = mlp([latent_dim, *g_hidden, dim], nn.ReLU, nn.Sigmoid()).to(device)
    discriminator = mlp([pack * dim, *d_hidden, 1], lambda: nn.LeakyReLU(0.2)).to(device)
    ema = copy.deepcopy(generator).requires_grad_(False)
    g_opt = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas)
    g_net, d_net = (torch.compile(generator), torch.compile(discriminator)) if compile else (generator, discriminator)

    def step() -> None:
        real = data[torch.randint(len(data), (batch,), device=device)].reshape(batch // pack, pack * dim)
        real.requires_grad_(True)
        fake = g_net(torch.randn(batch, latent_dim, device=device)).detach().reshape(batch // pack, pack * dim)
        d_real, d_fake = d_net(real), d_net(fake)
        d_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        if r1_weight:
            (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            d_loss = d_loss + r1_weight * 0.5 * grad.pow(2).sum(1).mean()
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        fake = g_net(torch.randn(batch, latent_dim, device=device)).reshape(batch // pack, pack * dim)
        g_loss = F.softplus(-d_net(fake)).mean()
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), generator.parameters()):
                p_ema.lerp_(p, 1.0 - ema_decay)

    return step


def autoencoder_step(x: np.ndarray, latent_dim: int, hidden: tuple[int, ...], batch: int, noise: float, lr: float,
                     compile: bool = False, device: str = "cpu") -> Callable[[], None]:
    """A closure running one denoising-autoencoder Adam step."""
    data = torch.as_tensor(x.reshape(len(x), -1), dtype=torch.float32, device=device)
    dim = data.shape[1]
    model = nn.Sequential(mlp([dim, *hidden, latent_dim], nn.ReLU),
                          mlp([latent_dim, *reversed(hidden), dim], nn.ReLU, nn.Sigmoid())).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    net = torch.compile(model) if compile else model

    def step() -> None:
        clean = data[torch.randint(len(data), (batch,), device=device)]
        loss = F.mse_loss(net(clean + noise * torch.randn_like(clean)), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


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
