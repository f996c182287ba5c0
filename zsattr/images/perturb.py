"""Deterministic image perturbations for the robustness study (issue 7, notebook 07).

Fingerprints live in the high frequencies, exactly what compression, resampling and blur
remove, so attribution accuracy under these operations says whether a method survives images
as they are shared in practice. Every function maps (N, 3, H, W) float images in [0, 1] to the
same shape, dtype and range, and is deterministic (no random parameters), so every method is
scored on identical perturbed images.
"""

from __future__ import annotations

import io
import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def _check(images: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images (N, 3, H, W), got shape {tuple(images.shape)}")


def jpeg(images: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG encode/decode in memory with Pillow at `quality` (its default 4:2:0 chroma subsampling)."""
    _check(images)
    arrays = (images.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = np.empty(arrays.shape, dtype=np.float32)
    for i, array in enumerate(arrays):
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        with Image.open(buf) as img:
            out[i] = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().to(images.dtype)


def resize_restore(images: torch.Tensor, scale: float) -> torch.Tensor:
    """Antialiased bilinear downscale by `scale`, then bicubic back to the original size."""
    _check(images)
    h, w = images.shape[-2:]
    small = (max(1, round(h * scale)), max(1, round(w * scale)))
    if small == (h, w):
        return images.clone()
    x = F.interpolate(images.float(), size=small, mode="bilinear", antialias=True, align_corners=False)
    x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return x.clamp(0, 1).to(images.dtype)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur, kernel radius ceil(3 sigma), reflect padding (no dark border)."""
    _check(images)
    if sigma <= 0:
        return images.clone()
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, min(images.shape[-2:]) - 1)  # reflect padding needs pad < size
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-t**2 / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(images.device)
    x = F.pad(images.float(), (radius,) * 4, mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3)
    return x.clamp(0, 1).to(images.dtype)


PERTURBATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda x: x.clone(),
    "jpeg95": lambda x: jpeg(x, 95),
    "jpeg75": lambda x: jpeg(x, 75),
    "jpeg50": lambda x: jpeg(x, 50),
    "resize0.75": lambda x: resize_restore(x, 0.75),
    "resize0.5": lambda x: resize_restore(x, 0.5),
    "blur0.5": lambda x: gaussian_blur(x, 0.5),
    "blur1.0": lambda x: gaussian_blur(x, 1.0),
}


def apply(name: str, images: torch.Tensor) -> torch.Tensor:
    """The perturbation `name` (a key of PERTURBATIONS) applied to images (N, 3, H, W)."""
    if name not in PERTURBATIONS:
        raise KeyError(f"unknown perturbation {name!r}; choose one of {list(PERTURBATIONS)}")
    _check(images)
    return PERTURBATIONS[name](images)
