"""Residual filters: what turns an image into its noise residual, the carrier of a generator's
fingerprint (PAPER.md section 5). Each is a torch module mapping (B, 3, H, W) images in [0, 1]
to residuals of the same shape.

- `HighPass`: fixed; the image minus its box-blurred copy (`highpass_residual`).
- `DnCNN`: a DnCNN-style residual network (conv-ReLU, (depth-2) x conv-BN-ReLU, conv) trained
  on the real photos to predict added Gaussian noise (`zsattr.fingerprint.dncnn`); its
  prediction on a clean image is the noise residual. Zero padding keeps the size (the
  authors' DnCNN is unpadded, then resized back; same size without the resize). The paper's
  17 x 64 is the `paper` preset.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn


def highpass_residual(images, kernel_size: int = 3):
    """Fixed high-pass noise residual: image minus its `kernel_size` box-blurred copy.

    Works on numpy (N, H, W, C) / (H, W, C) arrays and on torch (N, C, H, W) tensors;
    reflect padding keeps the size and avoids a bright frame at the borders.
    """
    if kernel_size % 2 != 1:
        raise ValueError("kernel_size must be odd")
    pad = kernel_size // 2
    if isinstance(images, torch.Tensor):  # channels first
        channels = images.shape[1]
        kernel = images.new_full((channels, 1, kernel_size, kernel_size), 1.0 / kernel_size**2)
        blurred = F.conv2d(F.pad(images, (pad,) * 4, mode="reflect"), kernel, groups=channels)
        return images - blurred
    images = np.asarray(images, dtype=np.float32)
    size = (kernel_size, kernel_size, 1) if images.ndim == 3 else (1, kernel_size, kernel_size, 1)
    return images - ndimage.uniform_filter(images, size=size, mode="reflect")


class HighPass(nn.Module):
    """Fixed residual: image minus its `kernel_size` box blur (reflect padding)."""

    def __init__(self, kernel_size: int = 3):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return highpass_residual(images, self.kernel_size)


class DnCNN(nn.Module):
    """DnCNN-style residual network: predicts the noise in its input (same size)."""

    def __init__(self, depth: int = 17, width: int = 64, channels: int = 3):
        super().__init__()
        if depth < 2:
            raise ValueError(f"DnCNN depth must be >= 2, got {depth}")
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU()]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.net = nn.Sequential(*layers)
        self.depth, self.width = depth, width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def residuals(images: torch.Tensor, residual_filter: nn.Module) -> torch.Tensor:
    """Noise residuals of (B, 3, H, W) images, no autograd."""
    with torch.inference_mode():
        return residual_filter(images)


def compare_filters(filters: dict[str, nn.Module], clean: torch.Tensor, sigma: float = 0.03,
                    seed: int = 0, repeats: int = 3) -> pd.DataFrame:
    """Cost and quality of residual filters on real crops (N, 3, H, W).

    - images_per_s: throughput on `clean` (best of `repeats`, no autograd);
    - noise_corr: correlation between the residual of clean+noise and the added Gaussian
      noise (sigma): how much of the residual is noise rather than content (higher is better);
    - content_rms: RMS of the residual of the clean crops (image content leaking into the
      residual; lower is better, other things equal).
    """
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(clean.shape, generator=gen) * sigma
    rows = []
    for name, residual_filter in filters.items():
        residuals(clean[:2], residual_filter)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            res_clean = residuals(clean, residual_filter)
            best = min(best, time.perf_counter() - t)
        res_noisy = residuals(clean + noise, residual_filter)
        a = (res_noisy - res_noisy.mean()).flatten()
        b = (noise - noise.mean()).flatten()
        corr = float((a @ b) / (a.norm() * b.norm() + 1e-12))
        rows.append({"filter": name, "images_per_s": len(clean) / best, "noise_corr": corr,
                     "content_rms": float(res_clean.pow(2).mean().sqrt())})
    return pd.DataFrame(rows).set_index("filter")
