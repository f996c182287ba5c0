"""Diffusion models (the paper's DDPM / ADM / LDM family): a DDPM with a small U-Net, sampled
deterministically with DDIM, and a latent diffusion model that runs the same process in the
VAE's latent space and decodes with that VAE's decoder.

Both run the DDPM forward process (linear beta schedule, T = 1000) and are sampled with
`ddim_steps` DDIM steps (eta = 0). The network predicts v = sqrt(abar) eps -
sqrt(1 - abar) x0 (Salimans & Ho, 2022) rather than eps: measured here, an eps-predictor
trained for the few hundred steps a CPU budget allows still left visible noise in its DDIM
samples, while the v-predictor's samples were already image-like. The U-Net upsamples with
nearest + conv, as the DDPM/ADM code does.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import ZooModel, adam, step

T = 1000


def alphas_cumprod(t_max: int = T) -> torch.Tensor:
    betas = torch.linspace(1e-4, 0.02, t_max, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0).float()


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], 1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, + time embedding, GroupNorm-SiLU-conv, with a 1x1 skip when widths differ."""

    def __init__(self, c_in: int, c_out: int, t_dim: int):
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(min(8, c_in), c_in), nn.GroupNorm(min(8, c_out), c_out)
        self.conv1, self.conv2 = nn.Conv2d(c_in, c_out, 3, 1, 1), nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.time = nn.Linear(t_dim, c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x))) + self.time(temb)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class UNet(nn.Module):
    """One ResBlock per level, strided-conv downsampling, nearest + conv upsampling, skip
    concatenation. `mults` sets the width per level relative to `width`."""

    def __init__(self, c_img: int, width: int, mults=(1, 2, 2)):
        super().__init__()
        t_dim = 4 * width
        self.width = width
        self.time_mlp = nn.Sequential(nn.Linear(width, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        chs = [width * m for m in mults]
        self.inp = nn.Conv2d(c_img, chs[0], 3, 1, 1)
        self.down_blocks = nn.ModuleList([ResBlock(chs[max(i - 1, 0)], chs[i], t_dim) for i in range(len(chs))])
        self.downs = nn.ModuleList([nn.Conv2d(chs[i], chs[i], 3, 2, 1) for i in range(len(chs) - 1)])
        self.mid = ResBlock(chs[-1], chs[-1], t_dim)
        self.ups = nn.ModuleList([nn.Conv2d(chs[i + 1], chs[i + 1], 3, 1, 1) for i in range(len(chs) - 1)])
        self.up_blocks = nn.ModuleList([ResBlock(chs[i] + (chs[i + 1] if i + 1 < len(chs) else chs[i]),
                                                 chs[i], t_dim) for i in range(len(chs))])
        self.out = nn.Sequential(nn.GroupNorm(min(8, chs[0]), chs[0]), nn.SiLU(), nn.Conv2d(chs[0], c_img, 3, 1, 1))

    def forward(self, x, t):
        temb = self.time_mlp(time_embedding(t, self.width))
        h, skips = self.inp(x), []
        for i, block in enumerate(self.down_blocks):
            h = block(h, temb)
            skips.append(h)
            if i < len(self.downs):
                h = self.downs[i](h)
        h = self.mid(h, temb)
        for i in reversed(range(len(self.up_blocks))):
            h = self.up_blocks[i](torch.cat([h, skips[i]], 1), temb)
            if i > 0:
                h = self.ups[i - 1](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.out(h)


class Diffusion(ZooModel):
    """v-prediction DDPM on tensors of `shape`; `decode` maps samples to images."""

    generator_modules = ("denoiser",)
    monitored_losses = ("mse",)

    def __init__(self, denoiser: nn.Module, shape: tuple[int, ...], lr: float = 1e-3, ddim_steps: int = 25):
        super().__init__()
        self.denoiser, self.shape, self.lr, self.ddim_steps = denoiser, tuple(shape), lr, ddim_steps
        self.register_buffer("abar", alphas_cumprod())

    def make_optimizers(self):
        return {"eps": adam(self.denoiser.parameters(), self.lr, (0.9, 0.999))}

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(-1, 1)

    def train_step(self, batch, opts):
        x0 = batch
        t = torch.randint(0, T, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        abar = self.abar[t].view(-1, *([1] * (x0.dim() - 1)))
        xt = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        v = abar.sqrt() * noise - (1 - abar).sqrt() * x0
        loss = F.mse_loss(self.denoiser(xt, t), v)
        step(opts["eps"], loss)
        return {"mse": loss.item()}

    @torch.no_grad()
    def sample(self, n):
        """DDIM (eta = 0) over `ddim_steps` quadratically spaced timesteps (dense near t = 0,
        as the DDIM paper does for small images), so the last steps remove fine noise."""
        was_training = self.training
        self.eval()
        x = torch.randn(n, *self.shape, device=self.device)
        ts = (torch.linspace(math.sqrt(T - 1), 0, self.ddim_steps) ** 2).round().long().tolist()
        for i, t in enumerate(ts):
            abar_t = self.abar[t]
            abar_prev = self.abar[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0)
            v = self.denoiser(x, torch.full((n,), t, device=x.device))
            x0 = (abar_t.sqrt() * x - (1 - abar_t).sqrt() * v).clamp(-self.clip_x0, self.clip_x0)
            eps = (1 - abar_t).sqrt() * x + abar_t.sqrt() * v
            x = abar_prev.sqrt() * x0 + (1 - abar_prev).sqrt() * eps
        out = self.decode(x)
        self.train(was_training)
        return out

    clip_x0 = 1.0


class LatentDiffusion(Diffusion):
    """DDPM in a trained VAE's latent space. `training_data` encodes the training crops once with
    the VAE encoder (posterior means) and records their scale, as Stable Diffusion rescales its
    latents to unit variance; sampling decodes with a frozen copy of that VAE's decoder."""

    generator_modules = ("denoiser", "decoder")
    flip_augment = False  # a mirrored latent is not the latent of the mirrored image
    clip_x0 = 5.0

    def __init__(self, vae, width: int, lr: float = 1e-3, ddim_steps: int = 25):
        super().__init__(UNet(vae.latent_shape[0], width, mults=(2, 4)), vae.latent_shape, lr, ddim_steps)
        self.decoder = copy.deepcopy(vae.decoder).requires_grad_(False).eval()
        self.register_buffer("latent_scale", torch.ones(()))
        self._vae = [vae]  # a list keeps the encoder out of this module's state_dict

    def training_data(self, data):
        latents = self._vae[0].encode_mean(data)
        self.latent_scale.fill_(latents.std().item())
        return latents / self.latent_scale

    def decode(self, z):
        self.decoder.eval()
        return self.decoder(z * self.latent_scale)
