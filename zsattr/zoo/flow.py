"""A Glow-style normalising flow (the paper's Glow / ResFlow family): squeeze, then steps of
ActNorm -> invertible 1x1 convolution -> affine coupling, at two scales, trained by exact
maximum likelihood on dequantised pixels and sampled at a reduced temperature.

Simplified from Glow for the CPU budget: no multi-scale factor-out (all dimensions flow to the
end), ActNorm starts as the identity instead of a data-dependent initialisation (so a resumed
run needs no special first step). The loss is the negative log-likelihood in bits per dimension.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import ZooModel, adam, step


def squeeze(x):
    return F.pixel_unshuffle(x, 2)


def unsqueeze(x):
    return F.pixel_shuffle(x, 2)


class ActNorm(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x):
        return (x + self.loc) * self.log_scale.exp(), self.log_scale.sum() * x.shape[2] * x.shape[3]

    def inverse(self, y):
        return y * (-self.log_scale).exp() - self.loc


class InvConv(nn.Module):
    """Invertible 1x1 convolution, initialised as a random rotation."""

    def __init__(self, c: int):
        super().__init__()
        self.weight = nn.Parameter(torch.linalg.qr(torch.randn(c, c))[0])

    def forward(self, x):
        logdet = torch.linalg.slogdet(self.weight)[1] * x.shape[2] * x.shape[3]
        return F.conv2d(x, self.weight[:, :, None, None]), logdet

    def inverse(self, y):
        return F.conv2d(y, torch.linalg.inv(self.weight)[:, :, None, None])


class Coupling(nn.Module):
    """Affine coupling: half the channels set a scale and shift for the other half.
    The last convolution starts at zero, so each coupling starts as the identity."""

    def __init__(self, c: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(c // 2, hidden, 3, 1, 1), nn.ReLU(),
                                 nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
                                 nn.Conv2d(hidden, c, 3, 1, 1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def _scale_shift(self, xa):
        h = self.net(xa)
        s, t = h[:, 0::2], h[:, 1::2]
        return torch.sigmoid(s + 2.0), t

    def forward(self, x):
        xa, xb = x.chunk(2, dim=1)
        scale, shift = self._scale_shift(xa)
        return torch.cat([xa, (xb + shift) * scale], 1), scale.log().flatten(1).sum(1)

    def inverse(self, y):
        ya, yb = y.chunk(2, dim=1)
        scale, shift = self._scale_shift(ya)
        return torch.cat([ya, yb / scale - shift], 1)


class FlowStep(nn.Module):
    def __init__(self, c: int, hidden: int):
        super().__init__()
        self.layers = nn.ModuleList([ActNorm(c), InvConv(c), Coupling(c, hidden)])

    def forward(self, x):
        total = 0.0
        for layer in self.layers:
            x, logdet = layer(x)
            total = total + logdet
        return x, total

    def inverse(self, y):
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y


class Glow(ZooModel):
    """Two scales (after one and after two squeezes), `depth` flow steps each."""

    generator_modules = ("steps",)
    monitored_losses = ("bpd",)

    def __init__(self, image_size: int, width: int, depth: int = 4, lr: float = 1e-3,
                 temperature: float = 0.7):
        super().__init__()
        self.steps = nn.ModuleList([FlowStep(12, 2 * width) for _ in range(depth)] +
                                   [FlowStep(48, 4 * width) for _ in range(depth)])
        self.depth, self.lr, self.temperature, self.image_size = depth, lr, temperature, image_size

    def make_optimizers(self):
        return {"flow": adam(self.parameters(), self.lr, (0.9, 0.999))}

    def log_prob_bpd(self, x):
        """Bits per dimension of images in [-1, 1] after uniform dequantisation to 256 levels."""
        x = (x + 1) / 2 * 255 / 256 + torch.rand_like(x) / 256 - 0.5  # [-0.5, 0.5]
        n_dims = x[0].numel()
        h, logdet = squeeze(x), 0.0
        for i, flow_step in enumerate(self.steps):
            if i == self.depth:
                h = squeeze(h)
            h, ld = flow_step(h)
            logdet = logdet + ld
        log_pz = -0.5 * (h.pow(2) + math.log(2 * math.pi)).flatten(1).sum(1)
        log_px = log_pz + logdet - n_dims * math.log(256)  # density of the 8-bit data
        return (-log_px / (n_dims * math.log(2))).mean()

    def train_step(self, batch, opts):
        loss = self.log_prob_bpd(batch)
        step(opts["flow"], loss)
        return {"bpd": loss.item()}

    @torch.no_grad()
    def sample(self, n):
        side = self.image_size // 4
        h = torch.randn(n, 48, side, side, device=self.device) * self.temperature
        for i in reversed(range(len(self.steps))):
            h = self.steps[i].inverse(h)
            if i == self.depth:
                h = unsqueeze(h)
        x = unsqueeze(h)
        return (x * 2).clamp(-1, 1)
