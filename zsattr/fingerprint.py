"""The fingerprint pipeline shared by every later stage (PAPER.md section 5):

    image in [0, 1] -> noise residual -> |2-D DFT| per channel -> extractor input

plus the display and analysis views of the same spectra: the centred log-magnitude
(`zsattr.spectra.log_magnitude_spectrum`) and the azimuthally integrated 1-D radial spectrum.

Residual extractors are pluggable (`ResidualExtractor`: a torch module mapping (B, 3, H, W)
images to residuals of the same shape):
- `HighPass`: the fixed residual image minus its box-blurred copy (`spectra.highpass_residual`).
- `DnCNN`: a DnCNN-style residual network (conv-ReLU, (depth-2) x conv-BN-ReLU, conv) trained
  here on the real photos to predict added Gaussian noise; its prediction on a clean image is
  the noise residual. Zero padding keeps the size (the authors' DnCNN is unpadded, then
  resized back; same size without the resize). The paper's 17 x 64 is the `paper` preset.

Radial spectrum binning (decision): the power spectrum of an H x W image, frequency of bin
(u, v) = (fftfreq_H[u], fftfreq_W[v]) in cycles/pixel; radius r = sqrt(fy^2 + fx^2);
bin k = round(r * min(H, W)), k = 0 .. min(H, W)//2 (0 = DC, the last = Nyquist). Values are
the *mean* over the bin's DFT coefficients (an azimuthal average, so bins with more
coefficients do not weigh more); the corners beyond Nyquist (r > 1/2) are left out.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import atomic, spectra
from .cache import ArtefactStore

log = logging.getLogger(__name__)

DNCNN_STAGE, DNCNN_VERSION = "dncnn", 1
DNCNN_FIELDS = ("dncnn_depth", "dncnn_width", "dncnn_steps", "dncnn_batch", "dncnn_crop",
                "dncnn_sigma_max", "photo_downscale", "holdout_fraction", "real_image_dir")


class HighPass(nn.Module):
    """Fixed residual: image minus its `kernel_size` box blur (reflect padding)."""

    def __init__(self, kernel_size: int = 3):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return spectra.highpass_residual(images, self.kernel_size)


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


def train_dncnn(cfg, crops: torch.Tensor, seed: int = 0) -> tuple[DnCNN, list[float]]:
    """Gaussian denoising of real crops: minimise |DnCNN(x + n) - n|^2, sigma ~ U[0, max]."""
    from .progress import progress

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DnCNN(cfg.dncnn_depth, cfg.dncnn_width)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.dncnn_steps, eta_min=1e-4)
    losses = []
    model.train()
    for _ in progress(range(cfg.dncnn_steps), desc="DnCNN"):
        x = crops[torch.randint(len(crops), (cfg.dncnn_batch,), generator=gen)]
        sigma = torch.rand(len(x), 1, 1, 1, generator=gen) * cfg.dncnn_sigma_max
        noise = torch.randn(x.shape, generator=gen) * sigma
        opt.zero_grad(set_to_none=True)
        loss = (model(x + noise) - noise).pow(2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return model.eval(), losses


def load_dncnn(cfg, store: ArtefactStore | None = None) -> DnCNN:
    """Get-or-build the preset's trained DnCNN (cached weights; eval mode, no gradients)."""
    from .photos import PhotoPool, to_tensor

    store = store or ArtefactStore()

    def build(out_dir: Path, work_dir: Path) -> None:
        pool = PhotoPool.from_config(cfg)
        n = max(256, cfg.dncnn_batch * 8)
        crops = to_tensor(pool.sample_crops(n, cfg.dncnn_crop, "train", rng=8001))
        model, losses = train_dncnn(cfg, crops)
        atomic.torch_save(model.state_dict(), out_dir / "dncnn.pt")
        atomic.write_json(out_dir / "losses.json", losses)

    art = store.get_or_build(cfg, DNCNN_STAGE, DNCNN_VERSION, DNCNN_FIELDS, build)
    model = DnCNN(cfg.dncnn_depth, cfg.dncnn_width)
    model.load_state_dict(atomic.torch_load(art.path / "dncnn.pt"))
    import json

    model.train_losses = json.loads((art.path / "losses.json").read_text())
    model.train_seconds = float(art.manifest.get("build_seconds", float("nan")))
    return model.eval().requires_grad_(False)


def residual_extractor(cfg, kind: str | None = None) -> nn.Module:
    """The residual extractor `kind` (default: the preset's `residual_extractor`), ready to use."""
    kind = kind or cfg.residual_extractor
    if kind == "highpass":
        return HighPass(cfg.highpass_kernel)
    if kind == "dncnn":
        return load_dncnn(cfg)
    raise ValueError(f"unknown residual extractor {kind!r}; choose 'highpass' or 'dncnn'")


def residuals(images: torch.Tensor, extractor: nn.Module) -> torch.Tensor:
    """Noise residuals of (B, 3, H, W) images, no autograd."""
    with torch.inference_mode():
        return extractor(images)


def dft_magnitude(x: torch.Tensor) -> torch.Tensor:
    """|2-D DFT| per channel over the last two axes; no log, no shift (the authors' input)."""
    return torch.fft.fft2(x.float()).abs()


def extractor_input(images: torch.Tensor, extractor: nn.Module) -> torch.Tensor:
    """images (B, 3, H, W) in [0, 1] -> |DFT| of their residuals, (B, 3, H, W): extractor input."""
    return dft_magnitude(residuals(images, extractor))


def log_spectrum(residual: np.ndarray | torch.Tensor) -> np.ndarray:
    """Mean centred log-magnitude of residuals (N, 3, H, W) tensors or (N, H, W, 3) arrays."""
    if isinstance(residual, torch.Tensor):
        residual = residual.detach().cpu().numpy().transpose(0, 2, 3, 1)
    return spectra.log_magnitude_spectrum(residual)


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


def compare_extractors(extractors: dict[str, nn.Module], clean: torch.Tensor, sigma: float = 0.03,
                       seed: int = 0, repeats: int = 3) -> "pd.DataFrame":
    """Cost and quality of residual extractors on real crops (N, 3, H, W).

    - images_per_s: throughput on `clean` (best of `repeats`, no autograd);
    - noise_corr: correlation between the residual of clean+noise and the added Gaussian
      noise (sigma): how much of the residual is noise rather than content (higher is better);
    - content_rms: RMS of the residual of the clean crops (image content leaking into the
      residual; lower is better, other things equal).
    """
    import time

    import pandas as pd

    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(clean.shape, generator=gen) * sigma
    rows = []
    for name, ex in extractors.items():
        residuals(clean[:2], ex)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            res_clean = residuals(clean, ex)
            best = min(best, time.perf_counter() - t)
        res_noisy = residuals(clean + noise, ex)
        a = (res_noisy - res_noisy.mean()).flatten()
        b = (noise - noise.mean()).flatten()
        corr = float((a @ b) / (a.norm() * b.norm() + 1e-12))
        rows.append({"extractor": name, "images_per_s": len(clean) / best, "noise_corr": corr,
                     "content_rms": float(res_clean.pow(2).mean().sqrt())})
    return pd.DataFrame(rows).set_index("extractor")
