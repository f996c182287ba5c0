"""2-D maps of fingerprints for figures (t-SNE), deterministic for a seed."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE


def tsne_2d(features: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """t-SNE of L2-normalised fingerprints (cosine geometry, as the gallery compares them).

    PCA to at most 50 dimensions first (the usual t-SNE preprocessing; it also makes 2048-d
    ResNet-50 features fast), perplexity capped below the number of points."""
    x = np.asarray(features, dtype=np.float64)
    if len(x) < 5:
        raise ValueError(f"t-SNE needs at least 5 points, got {len(x)}")
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    x = PCA(n_components=min(50, *x.shape), random_state=seed).fit_transform(x)
    perplexity = min(perplexity, (len(x) - 1) / 3)
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
