"""The Frechet distance between two Gaussians, the core of FFD (PAPER.md section 8):

    d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})

Computed in float64 through symmetric eigendecompositions only: with R = S1^{1/2},
Tr((S1 S2)^{1/2}) = Tr((R S2 R)^{1/2}) and R S2 R is symmetric positive semi-definite, so its
eigenvalues are real and are clipped at 0 before the square root. No complex numbers, no NaN
(unlike scipy.linalg.sqrtm on a nearly singular product).

A covariance estimated from fewer vectors than dimensions is singular, and its Frechet
distance is then dominated by noise in the null space; this raises unless shrinkage is asked
for. Shrinkage (`gaussian_stats(..., shrinkage=...)`) pulls the sample covariance towards a
scaled identity, S_a = (1 - a) S + a (tr(S) / D) I: `a` a float in [0, 1], or "ledoit-wolf"
for the Ledoit-Wolf estimate of the optimal `a` (sklearn.covariance.ledoit_wolf_shrinkage).
"""

from __future__ import annotations

import numpy as np
from sklearn.covariance import ledoit_wolf_shrinkage


class RankDeficientCovarianceError(ValueError):
    pass


def gaussian_stats(vectors, shrinkage: float | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of `vectors` (N, D), in float64."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected an (N, D) array of vectors, got shape {x.shape}")
    n, d = x.shape
    if n < 2:
        raise ValueError("need at least 2 vectors to estimate a covariance")
    mu = x.mean(axis=0)
    cov = np.cov(x, rowvar=False).reshape(d, d)
    if shrinkage is None:
        if n <= d:
            raise RankDeficientCovarianceError(
                f"{n} vectors of dimension {d} give a singular covariance (rank <= {n - 1}); "
                "pass shrinkage='ledoit-wolf' (or a float in [0, 1]) or use fewer dimensions"
            )
        return mu, cov
    if shrinkage == "ledoit-wolf":
        alpha = float(ledoit_wolf_shrinkage(x))  # centres x itself, as mu does
    elif isinstance(shrinkage, (int, float)) and 0.0 <= shrinkage <= 1.0:
        alpha = float(shrinkage)
    else:
        raise ValueError(f"shrinkage must be None, 'ledoit-wolf' or a float in [0, 1], got {shrinkage!r}")
    target = np.trace(cov) / d * np.eye(d)
    return mu, (1.0 - alpha) * cov + alpha * target


def _sym_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _check_cov(name: str, cov: np.ndarray, dim: int, rtol: float | None) -> np.ndarray:
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape != (dim, dim):
        raise ValueError(f"{name} has shape {cov.shape}, expected ({dim}, {dim})")
    if not np.all(np.isfinite(cov)):
        raise ValueError(f"{name} has non-finite entries")
    cov = 0.5 * (cov + cov.T)
    values = np.linalg.eigvalsh(cov)
    if values.max() <= 0:
        raise RankDeficientCovarianceError(f"{name} is zero or negative definite")
    if values.min() < -1e-8 * values.max():
        raise ValueError(f"{name} is not positive semi-definite (smallest eigenvalue {values.min():.3g})")
    if rtol is not None and values.min() <= rtol * values.max():
        raise RankDeficientCovarianceError(
            f"{name} is rank-deficient (condition number > {1 / rtol:.0e}); estimate it with "
            "gaussian_stats(..., shrinkage='ledoit-wolf') or pass allow_singular=True"
        )
    return cov


def frechet_distance(mu1, sigma1, mu2, sigma2, allow_singular: bool = False,
                     rtol: float = 1e-12) -> float:
    """Squared Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), a float >= 0."""
    mu1, mu2 = np.asarray(mu1, np.float64).ravel(), np.asarray(mu2, np.float64).ravel()
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean shapes differ: {mu1.shape} vs {mu2.shape}")
    d = mu1.shape[0]
    check_rtol = None if allow_singular else rtol
    s1 = _check_cov("sigma1", sigma1, d, check_rtol)
    s2 = _check_cov("sigma2", sigma2, d, check_rtol)
    root1 = _sym_sqrt(s1)
    cross = root1 @ s2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (cross + cross.T)), 0.0, None)).sum()
    value = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)
    return max(value, 0.0)  # rounding can leave -1e-15 for identical inputs
