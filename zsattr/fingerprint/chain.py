"""The input chain, the one owner of what the extractor sees (PAPER.md section 5):

    image (B, 3, H, W) in [0, 1] -> residual filter -> |2-D DFT| per channel -> log or raw

"raw" is the authors' input (|DFT|, no log, no shift); "log" is log(max(|DFT|, LOG_EPS)), which
spreads the few huge low-frequency bins and the many small high-frequency ones over a similar
range. The default is the config's (`fingerprint.spectrum`), so training, galleries and
baselines cannot disagree about it: every caller builds its chain with `input_chain(cfg)`.

`INPUT_CHAIN` is the chain's node in the stage graph: every stage that fingerprints images reads
its settings, and the DnCNN's artefact when the residual filter is the DnCNN.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.cache import ArtefactStore
from ..core.config import Config, FingerprintConfig
from ..core.keys import Stage
from .dncnn import DNCNN, load_dncnn
from .residual import HighPass, residuals

SPECTRA = ("log", "raw")
DEFAULT_SPECTRUM = FingerprintConfig().spectrum  # one default, the config's
LOG_EPS = 1e-4  # floor of |DFT| before the log (far below any bin of a real residual's spectrum)

INPUT_CHAIN = Stage("fingerprint", 1, section="fingerprint",
                    reads=lambda cfg: (DNCNN,) if cfg.fingerprint.residual_filter == "dncnn" else ())


def dft_magnitude(x: torch.Tensor) -> torch.Tensor:
    """|2-D DFT| per channel over the last two axes; no log, no shift (the authors' input)."""
    return torch.fft.fft2(x.float()).abs()


class InputChain(nn.Module):
    """A residual filter followed by |DFT| and the spectrum view (see the module docstring)."""

    def __init__(self, residual_filter: nn.Module, spectrum: str = DEFAULT_SPECTRUM):
        super().__init__()
        if spectrum not in SPECTRA:
            raise ValueError(f"unknown spectrum view {spectrum!r}; choose one of {SPECTRA}")
        self.residual_filter, self.spectrum = residual_filter, spectrum

    def residuals(self, images: torch.Tensor) -> torch.Tensor:
        """Noise residuals (no autograd)."""
        return residuals(images, self.residual_filter)

    def magnitude(self, images: torch.Tensor) -> torch.Tensor:
        """|DFT| of the residuals, (B, 3, H, W)."""
        return dft_magnitude(self.residuals(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The extractor's input, (B, 3, H, W)."""
        magnitude = self.magnitude(images)
        return torch.log(magnitude.clamp_min(LOG_EPS)) if self.spectrum == "log" else magnitude


def residual_filter(cfg: Config, kind: str | None = None, store: ArtefactStore | None = None) -> nn.Module:
    """The residual filter `kind` (default: the preset's `fingerprint.residual_filter`), ready to use."""
    kind = kind or cfg.fingerprint.residual_filter
    if kind == "highpass":
        return HighPass(cfg.fingerprint.highpass_kernel)
    if kind == "dncnn":
        return load_dncnn(cfg, store)
    raise ValueError(f"unknown residual filter {kind!r}; choose 'highpass' or 'dncnn'")


def input_chain(cfg: Config, store: ArtefactStore | None = None) -> InputChain:
    """The preset's input chain (its residual filter built or loaded from the cache)."""
    return InputChain(residual_filter(cfg, store=store), cfg.fingerprint.spectrum)
