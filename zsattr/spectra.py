"""Plain spectral helpers with no learned parts: used by the photo pool, plots and tests.
(The fingerprint pipeline proper, with residual extractors, builds on these.)"""

from __future__ import annotations

import numpy as np


def log_magnitude_spectrum(images: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Mean over images and channels of log |2-D DFT|, zero frequency centred, shape (H, W).

    Input (N, H, W, C) or (H, W, C) in any range; each image's per-channel mean is removed
    first so the DC term does not dominate the colour scale.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 3:
        images = images[None]
    centred = images - images.mean(axis=(1, 2), keepdims=True)
    magnitude = np.abs(np.fft.fft2(centred, axes=(1, 2)))
    return np.fft.fftshift(np.log(magnitude + eps).mean(axis=(0, 3)))


def highpass_residual(images, kernel_size: int = 3):
    """Fixed high-pass noise residual: image minus its `kernel_size` box-blurred copy.

    Works on numpy (N, H, W, C) / (H, W, C) arrays and on torch (N, C, H, W) tensors;
    reflect padding keeps the size and avoids a bright frame at the borders.
    """
    if kernel_size % 2 != 1:
        raise ValueError("kernel_size must be odd")
    pad = kernel_size // 2
    if hasattr(images, "unfold"):  # torch tensor, channels first
        import torch.nn.functional as F

        channels = images.shape[1]
        kernel = images.new_full((channels, 1, kernel_size, kernel_size), 1.0 / kernel_size**2)
        blurred = F.conv2d(F.pad(images, (pad,) * 4, mode="reflect"), kernel, groups=channels)
        return images - blurred
    from scipy import ndimage

    images = np.asarray(images, dtype=np.float32)
    size = (kernel_size, kernel_size, 1) if images.ndim == 3 else (1, kernel_size, kernel_size, 1)
    return images - ndimage.uniform_filter(images, size=size, mode="reflect")
