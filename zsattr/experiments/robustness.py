"""Identification under common image degradations (notebook 07).

The gallery is enrolled from clean images (what a practitioner holds: known samples of each
model); the queries are the same evaluation images after a perturbation (what arrives in the
wild: recompressed, resized, blurred). Support images are never queries, so no clean copy of a
query sits in the gallery.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..attribution import protocols
from ..images import perturb


def subset_per_model(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of `n` images per model (all of a model's images if it has fewer), seeded."""
    rng = np.random.default_rng([seed, 13])
    keep = [rng.permutation(np.nonzero(labels == c)[0])[:n] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def robustness_table(methods: dict, images: torch.Tensor, labels: np.ndarray, k: int, draws: int, seed: int,
                     perturbations=tuple(perturb.PERTURBATIONS)) -> pd.DataFrame:
    """Rows: method x perturbation -> top-1 mean and std over gallery draws."""
    rows = []
    for name, method in methods.items():
        clean = method.features(images)
        for p in perturbations:
            queries = clean if p == "none" else method.features(perturb.apply(p, images))
            result = protocols.identification(clean, labels, k, draws, seed, query_features=queries)
            rows.append({"method": name, "perturbation": p, "top1": float(result.top1.mean()),
                         "top1_std": float(result.top1.std())})
    return pd.DataFrame(rows)
