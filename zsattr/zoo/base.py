"""The one interface every zoo model implements, so a single driver trains them all.

A `ZooModel` is a plain `nn.Module` that owns its networks (so `state_dict()` is the whole
model) and knows how to take one optimisation step on a batch of real crops and how to draw
samples. Images cross this interface as float tensors (N, 3, H, W) in [-1, 1]; `sample`
returns the same range. Keeping every network a plain module of Linear/Conv layers means
later stages (e.g. LoRA adapters) can wrap them without knowing the family.
"""

from __future__ import annotations

import torch
from torch import nn


class ZooModel(nn.Module):
    """Base class: subclasses set `generator_modules` and implement the three methods."""

    #: names of the sub-modules that generate images (their parameters are the model's "size")
    generator_modules: tuple[str, ...] = ()
    #: losses whose decrease shows training worked (adversarial losses need not decrease)
    monitored_losses: tuple[str, ...] = ()

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, batch: torch.Tensor, opts: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        """One step (zero_grad -> forward -> backward -> clip -> step); returns scalar losses."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """`n` images (n, 3, H, W) in [-1, 1], drawn with torch's global RNG."""
        raise NotImplementedError

    def finish_training(self, seed: int = 0) -> None:
        """Called after the last training step, before sampling (a GAN switches to its generator
        EMA here); deterministic given `seed`, and idempotent. Default: nothing."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    #: the driver mirrors half of each batch left-right unless a model says otherwise
    flip_augment: bool = True

    def training_data(self, data: torch.Tensor) -> torch.Tensor:
        """What batches are drawn from, given the training crops (e.g. their latents)."""
        return data

    def generator_parameters(self) -> int:
        return sum(p.numel() for name in self.generator_modules
                   for p in getattr(self, name).parameters())

    def total_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def adam(params, lr: float, betas=(0.5, 0.999)) -> torch.optim.Adam:
    return torch.optim.Adam([p for p in params if p.requires_grad], lr=lr, betas=betas)


def step(opt: torch.optim.Optimizer, loss: torch.Tensor, clip: float = 10.0) -> None:
    """zero_grad -> backward -> clip -> step for one optimiser (the forward already ran)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for group in opt.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()


def upsample(mode: str, c_in: int, c_out: int) -> nn.Module:
    """A x2 upsampling layer of the named type: the generator trait the fingerprint sees.

    - `tconv`: ConvTranspose2d(4, stride 2), the DCGAN choice (checkerboard-prone);
    - `nearest` / `bilinear`: interpolation followed by a 3x3 convolution;
    - `pixelshuffle`: a 3x3 convolution to 4x channels, then sub-pixel rearrangement.
    """
    if mode == "tconv":
        return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)
    if mode in ("nearest", "bilinear"):
        kwargs = {"align_corners": False} if mode == "bilinear" else {}
        return nn.Sequential(nn.Upsample(scale_factor=2, mode=mode, **kwargs),
                             nn.Conv2d(c_in, c_out, 3, 1, 1))
    if mode == "pixelshuffle":
        return nn.Sequential(nn.Conv2d(c_in, 4 * c_out, 3, 1, 1), nn.PixelShuffle(2))
    raise ValueError(f"unknown upsampling mode {mode!r}")


def n_doublings(image_size: int, base: int = 4) -> int:
    """How many x2 stages take a `base` x `base` map to `image_size` (must be a power-of-2 ratio)."""
    ratio = image_size // base
    if ratio * base != image_size or ratio & (ratio - 1):
        raise ValueError(f"image_size {image_size} is not {base} times a power of two")
    return ratio.bit_length() - 1
