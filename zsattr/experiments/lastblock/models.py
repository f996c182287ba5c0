"""ProGAN-like generators built of named blocks, and block swapping between two of them.

Why named blocks: the paper's Fig. 3 (PAPER.md s.3) composes two trained models of the same
architecture, M1 and M2, by taking the last k blocks of one and the rest of the other. That
needs a generator whose parameters fall into an ordered list of blocks with stable names:

    block0   latent -> 4x4 feature map (linear + 3x3 conv), the "first block"
    block1.. one up-block each: upsample (nearest or bilinear) + a 3x3 conv + batch norm
             + LeakyReLU
    to_rgb   1x1 conv + tanh

The to-RGB layer has no spatial extent of its own and maps the last block's features to
pixels, so it is counted as part of the LAST block (`block_groups`): swapping the last k=1
block swaps the last up-block together with to_rgb, and swapping every block gives the donor.
Differences from ProGAN, both for the CPU budget: one conv per up-block (ProGAN has two), and
batch norm instead of pixel norm. With pixel norm (and with it plus spectral norm and a
minibatch-std critic) every generator collapsed to one flat colour within the few hundred
steps a CPU affords (measured: per-pixel std over latents ~0.01); with DCGAN's batch norm
they produce varied images in 300 steps. Pixel norm is kept on the latent. Batch-norm
statistics are buffers of their block, so they move with the block when blocks are swapped.

Training lives in `training`, the classifier and the tests in `evaluation` (this package).
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

UPSAMPLINGS = ("nearest", "bilinear")


class PixelNorm(nn.Module):
    """ProGAN's per-pixel feature normalisation (keeps generator magnitudes in check)."""

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class Upsample(nn.Module):
    """2x upsampling by `mode` ('nearest' or 'bilinear'); the artefacts the fingerprint sees."""

    def __init__(self, mode: str):
        super().__init__()
        if mode not in UPSAMPLINGS:
            raise ValueError(f"upsampling must be one of {UPSAMPLINGS}, got {mode!r}")
        self.mode = mode

    def forward(self, x):
        if self.mode == "nearest":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def _conv_act(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]


class FirstBlock(nn.Module):
    def __init__(self, z_dim: int, width: int):
        super().__init__()
        self.width = width
        self.norm = PixelNorm()  # ProGAN normalises the latent too
        self.linear = nn.Linear(z_dim, width * 16)
        self.body = nn.Sequential(nn.LeakyReLU(0.2), PixelNorm(), *_conv_act(width, width))

    def forward(self, z):
        return self.body(self.linear(self.norm(z[:, :, None, None]).flatten(1)).view(-1, self.width, 4, 4))


def widths(image_size: int, width: int) -> list[int]:
    """Channels after block0, block1, ...: halved per up-block, never below 16."""
    n_up = n_up_blocks(image_size)
    return [max(16, width >> i) for i in range(n_up + 1)]


def n_up_blocks(image_size: int) -> int:
    n = (image_size // 4).bit_length() - 1
    if image_size < 8 or 4 * 2**n != image_size:
        raise ValueError(f"image_size must be 4 * 2**n with n >= 1, got {image_size}")
    return n


class Generator(nn.Module):
    """latent (N, z_dim) -> images (N, 3, S, S) in [-1, 1]; `blocks` holds the named blocks."""

    def __init__(self, image_size: int, upsampling: str, z_dim: int = 64, width: int = 64):
        super().__init__()
        self.image_size, self.upsampling, self.z_dim = image_size, upsampling, z_dim
        chans = widths(image_size, width)
        blocks = {"block0": FirstBlock(z_dim, chans[0])}
        for i in range(1, len(chans)):
            blocks[f"block{i}"] = nn.Sequential(
                Upsample(upsampling), *_conv_act(chans[i - 1], chans[i]))
        self.blocks = nn.ModuleDict(blocks)
        self.to_rgb = nn.Conv2d(chans[-1], 3, 1)

    def forward(self, z):
        x = z
        for block in self.blocks.values():
            x = block(x)
        return torch.tanh(self.to_rgb(x))


def block_groups(model: Generator) -> list[list[str]]:
    """Parameter-name prefixes per block, first to last; to_rgb belongs to the last block."""
    groups = [[f"blocks.{name}."] for name in model.blocks]
    groups[-1].append("to_rgb.")
    return groups


def compose_blocks(recipient: Generator, donor: Generator, block_indices: Sequence[int]) -> Generator:
    """A copy of `recipient` whose blocks `block_indices` (of `block_groups`) come from `donor`."""
    if (recipient.image_size, recipient.upsampling) != (donor.image_size, donor.upsampling):
        raise ValueError("recipient and donor must share one architecture")
    groups = block_groups(recipient)
    bad = [i for i in block_indices if not 0 <= i < len(groups)]
    if bad:
        raise IndexError(f"block indices {bad} out of range 0..{len(groups) - 1}")
    prefixes = tuple(p for i in block_indices for p in groups[i])
    composed = copy.deepcopy(recipient)
    state = composed.state_dict()
    donor_state = donor.state_dict()
    if state.keys() != donor_state.keys():
        raise ValueError("recipient and donor have different parameter names")
    for name in state:
        if name.startswith(prefixes):
            state[name] = donor_state[name].clone()
    composed.load_state_dict(state)
    return composed.eval()


def compose_last(recipient: Generator, donor: Generator, k: int) -> Generator:
    """CM = `recipient` with its last `k` blocks (to_rgb included) taken from `donor`; k=0: a copy."""
    n = len(block_groups(recipient))
    if not 0 <= k <= n:
        raise ValueError(f"k must be in 0..{n}, got {k}")
    return compose_blocks(recipient, donor, range(n - k, n))


def compose_first(recipient: Generator, donor: Generator) -> Generator:
    """The control: only the first block (latent -> 4x4) taken from `donor`."""
    return compose_blocks(recipient, donor, [0])


@torch.no_grad()
def sample(model: Generator, n: int, seed: int, batch: int = 256, device: str = "cpu") -> torch.Tensor:
    """`n` images (N, 3, S, S) in [0, 1] on the CPU from latents fixed by `seed`.

    The same `seed` gives the same latents for every model, so M1, M2 and the composed
    models are compared on identical inputs.
    """
    z = torch.randn(n, model.z_dim, generator=torch.Generator().manual_seed(seed))
    model = model.to(device).eval()
    out = [model(z[i:i + batch].to(device)).cpu() for i in range(0, n, batch)]
    return ((torch.cat(out) + 1) / 2).clamp(0, 1)


class MinibatchStd(nn.Module):
    """ProGAN's minibatch standard deviation channel: lets the critic see a lack of variety,
    which is what stops the generator collapsing to one image."""

    def forward(self, x):
        std = x.std(dim=0, unbiased=False).mean().expand(x.shape[0], 1, *x.shape[2:])
        return torch.cat([x, std], dim=1)


class Discriminator(nn.Module):
    """A DCGAN-style critic: stride-2 convs (batch norm after the first) down to 4x4, a
    minibatch-std channel, one more conv, one linear logit."""

    def __init__(self, image_size: int, width: int = 64):
        super().__init__()
        chans = widths(image_size, width)[::-1][1:]
        layers: list[nn.Module] = []
        for c_in, c_out in zip([3] + chans[:-1], chans):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            if c_in != 3:
                layers.insert(-1, nn.BatchNorm2d(c_out))
        layers += [MinibatchStd(), nn.Conv2d(chans[-1] + 1, chans[-1], 3, padding=1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1] * 16, 1)  # 4x4 features left

    def forward(self, x):
        return self.head(self.features(x).flatten(1)).squeeze(1)
