"""Attribution methods behind one interface, so every protocol scores them identically.

A method has a `name` and `features(images) -> (N, D) array`: images (N, 3, H, W) float in
[0, 1] in, one fingerprint per image out, computed in batches without autograd. The protocols
(`zsattr.attribution.protocols`) only ever see these arrays, so ours, the baselines and the
floor share the same galleries, pairs and splits by construction.

- `ExtractorMethod`: a `FingerprintExtractor` on the input chain's output (ours, the
  closed-set baseline trained on real models, and the diversity ablations all use it).
- `SpectrumCorrelation`: training-free, after Marra et al. ("Do GANs leave artificial
  fingerprints?"): the fingerprint is the log-magnitude spectrum of the noise residual,
  mean-centred per image. Cosine similarity of mean-centred vectors is Pearson correlation,
  and the gallery's mean over k images is the model's mean residual spectrum, so enrolment
  plus cosine matching is exactly "correlate with the model's average spectrum".
- `random_init_method`: the same ResNet untrained (the floor: what architecture plus input
  representation give with no learning at all).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from ..extractor.network import FingerprintExtractor
from ..fingerprint.chain import InputChain


class Method(Protocol):
    name: str

    def features(self, images: torch.Tensor) -> np.ndarray: ...


def _batches(images: torch.Tensor, batch_size: int):
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images (N, 3, H, W), got shape {tuple(images.shape)}")
    for i in range(0, len(images), batch_size):
        yield images[i:i + batch_size].float()


class ExtractorMethod:
    """Fingerprints from a FingerprintExtractor fed with the input chain's output."""

    def __init__(self, name: str, model: FingerprintExtractor, chain: InputChain, batch_size: int = 64):
        self.name, self.model, self.chain, self.batch_size = name, model, chain, batch_size

    def features(self, images: torch.Tensor) -> np.ndarray:
        device = next(self.model.parameters()).device
        self.chain.to(device)
        out = []
        with torch.inference_mode():
            for batch in _batches(images, self.batch_size):
                x = self.chain(batch.to(device))
                out.append(self.model.embed(x, batch_size=self.batch_size).cpu().double().numpy())
        return np.concatenate(out)


class SpectrumCorrelation:
    """Training-free baseline: per image, log |DFT| of its residual (the input chain's
    magnitude, whatever the chain's own spectrum view), flattened, mean-centred.

    The DC coefficient of each channel is dropped: a high-pass residual has (almost) zero mean,
    so log|DC| is a huge negative outlier that would dominate the correlation.
    """

    def __init__(self, chain: InputChain, name: str = "spectrum_correlation", batch_size: int = 256,
                 eps: float = 1e-6):
        self.name, self.chain, self.batch_size, self.eps = name, chain, batch_size, eps

    def features(self, images: torch.Tensor) -> np.ndarray:
        out = []
        for batch in _batches(images, self.batch_size):
            magnitude = self.chain.magnitude(batch)
            logmag = torch.log(magnitude + self.eps).flatten(2)[:, :, 1:].flatten(1).double()
            out.append((logmag - logmag.mean(dim=1, keepdim=True)).numpy())
        return np.concatenate(out)


def random_init_method(n_classes: int, backbone: str, seed: int, chain: InputChain,
                       name: str = "random_init", batch_size: int = 64) -> ExtractorMethod:
    """An untrained FingerprintExtractor seeded with `seed` (the global torch RNG is left as
    it was), wrapped as a method: the floor every trained method must beat."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FingerprintExtractor(n_classes, backbone).eval()
    return ExtractorMethod(name, model, chain, batch_size)
