"""The gallery: enrol models from a few fingerprints, identify and verify queries.

Enrolment (PAPER.md section 7): a model's entry is the mean of k L2-normalised fingerprints
of its images; queries are matched by cosine similarity. New models join without retraining.
A Gallery saves to one .npz (names, centroids, k, extractor id) for the command line tool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core import atomic
from .metrics import cosine_similarity

GALLERY_FORMAT = 1


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass
class Gallery:
    names: list[str] = field(default_factory=list)
    centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    shots: list[int] = field(default_factory=list)
    extractor_id: str = ""  # which extractor made the fingerprints; queries must match it

    def enrol(self, name: str, fingerprints: np.ndarray) -> None:
        """Add (or replace) `name` with the mean of its L2-normalised fingerprints (k, D)."""
        fingerprints = np.atleast_2d(np.asarray(fingerprints, np.float64))
        centroid = l2_normalise(fingerprints).mean(axis=0)
        if self.names and centroid.shape[0] != self.centroids.shape[1]:
            raise ValueError(f"fingerprint dimension {centroid.shape[0]} differs from the gallery's "
                             f"{self.centroids.shape[1]}")
        if name in self.names:
            i = self.names.index(name)
            self.centroids[i], self.shots[i] = centroid, len(fingerprints)
            return
        self.names.append(name)
        self.shots.append(len(fingerprints))
        self.centroids = centroid[None] if self.centroids.size == 0 else np.vstack([self.centroids, centroid])

    def scores(self, queries: np.ndarray) -> np.ndarray:
        if not self.names:
            raise ValueError("the gallery is empty: enrol at least one model first")
        return cosine_similarity(np.atleast_2d(queries), self.centroids)

    def identify(self, queries: np.ndarray, top: int = 1) -> list[list[tuple[str, float]]]:
        """For each query, the `top` best (name, cosine similarity), best first."""
        scores = self.scores(queries)
        order = np.argsort(-scores, axis=1)[:, :top]
        return [[(self.names[j], float(scores[i, j])) for j in row] for i, row in enumerate(order)]

    def verify(self, queries: np.ndarray, name: str) -> np.ndarray:
        """Cosine similarity of each query to `name`'s entry."""
        if name not in self.names:
            raise KeyError(f"{name!r} is not enrolled; enrolled: {self.names}")
        return self.scores(queries)[:, self.names.index(name)]

    def save(self, path: str | Path) -> None:
        meta = json.dumps({"format": GALLERY_FORMAT, "names": self.names, "shots": self.shots,
                           "extractor_id": self.extractor_id})
        with atomic.atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, centroids=self.centroids, meta=np.array(meta))

    @classmethod
    def load(cls, path: str | Path) -> "Gallery":
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            centroids = data["centroids"]
        if meta.get("format") != GALLERY_FORMAT:
            raise ValueError(f"{path} is a gallery of format {meta.get('format')}; this version reads "
                             f"{GALLERY_FORMAT}. Re-enrol the models with this version.")
        return cls(meta["names"], centroids, meta["shots"], meta["extractor_id"])


def split_support_queries(labels: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per class, k random support indices; every other index is a query. Classes with <= k
    samples raise, since they would leave no query."""
    labels = np.asarray(labels)
    support, queries = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.nonzero(labels == c)[0])
        if len(idx) <= k:
            raise ValueError(f"class {c} has {len(idx)} samples; k={k} support shots leave no query")
        support.append(idx[:k])
        queries.append(idx[k:])
    return np.concatenate(support), np.concatenate(queries)


def verification_pairs(labels: np.ndarray, n_pairs: int, rng: np.random.Generator,
                       same_fraction: float = 0.5) -> np.ndarray:
    """(n, 3) int array of unique unordered pairs (i, j, same) with i < j, about half same-model.

    The authors' sampling was unseeded and its de-duplication never worked (PAPER.md s.9): here
    pairs are drawn from a seeded generator and kept in a set of (i, j) with i < j.
    """
    labels = np.asarray(labels)
    by_class = {c: np.nonzero(labels == c)[0] for c in np.unique(labels)}
    eligible = [c for c, idx in by_class.items() if len(idx) >= 2]
    n_same_possible = sum(len(v) * (len(v) - 1) // 2 for v in by_class.values())
    n_total_possible = len(labels) * (len(labels) - 1) // 2
    n_same = min(int(round(n_pairs * same_fraction)), n_same_possible)
    n_diff = min(n_pairs - n_same, n_total_possible - n_same_possible)
    if not eligible or len(by_class) < 2:
        raise ValueError("verification pairs need at least two classes and one class with 2 samples")
    chosen: set[tuple[int, int]] = set()
    same_pairs, diff_pairs = [], []
    while len(same_pairs) < n_same:
        c = eligible[rng.integers(len(eligible))]
        i, j = sorted(rng.choice(by_class[c], size=2, replace=False).tolist())
        if (i, j) not in chosen:
            chosen.add((i, j))
            same_pairs.append((i, j, 1))
    while len(diff_pairs) < n_diff:
        i, j = sorted(rng.choice(len(labels), size=2, replace=False).tolist())
        if labels[i] != labels[j] and (i, j) not in chosen:
            chosen.add((i, j))
            diff_pairs.append((i, j, 0))
    pairs = np.array(same_pairs + diff_pairs, dtype=np.int64).reshape(-1, 3)
    return pairs[rng.permutation(len(pairs))]
