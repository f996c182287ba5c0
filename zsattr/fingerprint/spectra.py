"""Views of spectra with no learned parts: the centred log-magnitude for display, the power
spectrum, and its azimuthal average (the 1-D radial spectrum of FFD and the analyses).

Radial spectrum binning (decision): the power spectrum of an H x W image, frequency of bin
(u, v) = (fftfreq_H[u], fftfreq_W[v]) in cycles/pixel; radius r = sqrt(fy^2 + fx^2);
bin k = round(r * min(H, W)), k = 0 .. min(H, W)//2 (0 = DC, the last = Nyquist). Values are
the *mean* over the bin's DFT coefficients (an azimuthal average, so bins with more
coefficients do not weigh more); the corners beyond Nyquist (r > 1/2) are left out.
"""

from __future__ import annotations

import numpy as np
import torch


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


def radial_bins(h: int, w: int) -> np.ndarray:
    """(H, W) integer bin of each unshifted DFT coefficient; -1 beyond Nyquist (see module doc)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    n = min(h, w)
    k = np.rint(np.sqrt(fy**2 + fx**2) * n).astype(int)
    k[k > n // 2] = -1
    return k


def radial_profile(power: np.ndarray) -> np.ndarray:
    """Azimuthal average of unshifted 2-D spectra (..., H, W) -> (..., min(H, W)//2 + 1)."""
    power = np.asarray(power, dtype=np.float64)
    h, w = power.shape[-2:]
    bins = radial_bins(h, w).ravel()
    keep = bins >= 0
    n_bins = min(h, w) // 2 + 1
    flat = power.reshape(-1, h * w)[:, keep]
    counts = np.bincount(bins[keep], minlength=n_bins)
    sums = np.stack([np.bincount(bins[keep], weights=row, minlength=n_bins) for row in flat])
    return (sums / counts).reshape(*power.shape[:-2], n_bins)


def power_spectrum(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """|DFT|^2 per channel of (N, C, H, W) tensors/arrays, mean removed per channel."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    x = x.astype(np.float64)
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    return np.abs(np.fft.fft2(x)) ** 2


def radial_spectrum(x: np.ndarray | torch.Tensor, log: bool = True) -> np.ndarray:
    """Mean 1-D radial power spectrum of (N, C, H, W) residuals: average over images and
    channels of the azimuthally averaged power; `log` gives 10*log10 (dB)."""
    profile = radial_profile(power_spectrum(x)).mean(axis=tuple(range(np.ndim(x) - 2)))
    return 10 * np.log10(profile + 1e-12) if log else profile
