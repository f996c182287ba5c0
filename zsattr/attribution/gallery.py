"""The gallery: enrol models from a few fingerprints, identify, verify, and say "unknown".

Enrolment (PAPER.md section 7): a model's entry is the mean of k L2-normalised fingerprints of
its images; queries are matched by cosine similarity. New models join without retraining.

Open set. A query whose best similarity is at or below the gallery's rejection threshold is
"unknown". `calibrate_rejection` sets that threshold from the gallery's own enrolment images,
leave-one-out, for a stated false-accept rate (FAR): each enrolled model in turn plays a model
that is not enrolled (its images scored against the other models' entries: the best score an
unknown model's image would get), and the threshold is the score that at most FAR of those
impostor images exceed. Each image also scores against its own model's entry without itself
(leave-one-out), which gives the share of known images the threshold keeps. The threshold is
recalibrated whenever a model is added or removed.

File (`save` / `load`): one NumPy `.npz` read with `allow_pickle=False` (no pickle), written
atomically: per model its enrolment fingerprints (`f0000`, ...), and `meta`, a JSON string with
the format version, the names, shots, SHA-256 hashes of the enrolled image files, the id
(checksum) and description of the extractor that made the fingerprints, the crop rule, the
target FAR and the calibration. A file that is damaged, of another format, or whose names do
not match its arrays is refused with a `GalleryError` that says so; so are fingerprints of
another extractor (`check_extractor`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..core import arrayfile
from . import metrics
from .metrics import cosine_similarity

GALLERY_FORMAT = 2
UNKNOWN = "unknown"
DEFAULT_FAR = 0.05


class GalleryError(ValueError):
    """A gallery file or request that cannot be served; the message says why."""


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def calibrate_rejection(fingerprints: Sequence[np.ndarray], far: float) -> dict[str, Any]:
    """The rejection threshold for false-accept rate `far`, leave-one-out on enrolment images
    (see the module docstring). `fingerprints`: one (k, D) array per model, rows L2-normalised.
    Returns {"threshold": float or None, "far_target", "far_measured", "known_accepted",
    "loo_top1", "impostor_images", "known_images", "reason"}; the threshold is None (with a
    reason) when the gallery cannot calibrate: fewer than two models, or no model with two images."""
    if not 0.0 < far < 1.0:
        raise GalleryError(f"the false-accept rate must be in (0, 1), got {far}")
    report: dict[str, Any] = {"threshold": None, "far_target": far, "far_measured": None,
                              "known_accepted": None, "loo_top1": None, "impostor_images": 0,
                              "known_images": 0, "reason": ""}
    if len(fingerprints) < 2:
        report["reason"] = "needs at least two enrolled models"
        return report
    sums = np.stack([f.sum(axis=0) for f in fingerprints])
    centroids = l2_normalise(sums)  # the direction of each model's mean; cosine ignores the 1/k
    impostor, genuine, correct = [], [], []
    for m, f in enumerate(fingerprints):
        others = np.delete(centroids, m, axis=0)
        best_other = (f @ others.T).max(axis=1)
        impostor.append(best_other)
        if len(f) >= 2:
            own = l2_normalise(sums[m][None] - f)  # each image's entry without it (its direction)
            score = np.einsum("ij,ij->i", f, own)
            genuine.append(score)
            correct.append(score > best_other)
    if not genuine:
        report["reason"] = "needs a model enrolled from at least two images"
        return report
    impostor, genuine, correct = np.concatenate(impostor), np.concatenate(genuine), np.concatenate(correct)
    ranked = np.sort(impostor)[::-1]
    threshold = float(ranked[min(int(math.floor(far * len(ranked))), len(ranked) - 1)])
    report.update(threshold=threshold, far_measured=float(np.mean(impostor > threshold)),
                  known_accepted=float(np.mean(genuine > threshold)),
                  loo_top1=float(np.mean(correct & (genuine > threshold))),
                  impostor_images=int(len(impostor)), known_images=int(len(genuine)))
    return report


def calibrate_verification(fingerprints: Sequence[np.ndarray], max_pairs: int = 20000, seed: int = 0) -> dict:
    """A same-model threshold for `verify` from the enrolment images: every same-model pair (two
    images of one model; at most `max_pairs`, drawn with `seed`) against as many different-model
    pairs; the highest-accuracy threshold on these balanced pairs, with its accuracy and EER. The
    user's own models, so it fits their domain better than a threshold set on synthetic models."""
    report: dict[str, Any] = {"threshold": None, "accuracy": None, "eer": None, "pairs": 0, "reason": ""}
    if len(fingerprints) < 2 or max(len(f) for f in fingerprints) < 2:
        report["reason"] = "needs two models and a model with two images"
        return report
    labels = np.concatenate([np.full(len(f), m) for m, f in enumerate(fingerprints)])
    offsets = np.cumsum([0] + [len(f) for f in fingerprints])
    same = np.concatenate([np.stack(np.triu_indices(len(f), 1), axis=1) + offsets[m]
                           for m, f in enumerate(fingerprints)])
    rng = np.random.default_rng(seed)
    if len(same) > max_pairs:
        same = same[rng.choice(len(same), max_pairs, replace=False)]
    a = rng.integers(len(labels), size=4 * len(same))
    b = rng.integers(len(labels), size=4 * len(same))
    keep = labels[a] != labels[b]
    other = np.stack([a[keep], b[keep]], axis=1)[:len(same)]
    pairs = np.concatenate([same, other])
    positive = np.arange(len(pairs)) < len(same)  # the same-model pairs come first
    stacked = np.concatenate(fingerprints)
    scores = np.einsum("ij,ij->i", stacked[pairs[:, 0]], stacked[pairs[:, 1]])
    threshold = metrics.best_threshold(scores, positive)
    report.update(threshold=float(threshold), accuracy=metrics.accuracy_at(scores, positive, threshold),
                  eer=metrics.equal_error_rate(scores, positive), pairs=int(len(pairs)))
    return report


@dataclass
class Attribution:
    """One query's answer: the best candidates (name, cosine similarity), best first; the margin
    between the first two; the decision (a name, or "unknown" below the threshold)."""

    candidates: list[tuple[str, float]]
    margin: float
    decision: str
    threshold: float | None

    def as_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"decision": self.decision, "similarity": self.candidates[0][1],
                               "margin": self.margin, "threshold": self.threshold}
        for i, (name, score) in enumerate(self.candidates, 1):
            row[f"top{i}"], row[f"top{i}_similarity"] = name, score
        return row


@dataclass
class Gallery:
    """Enrolled models and their enrolment fingerprints (rows L2-normalised), in enrolment order."""

    extractor_id: str = ""  # checksum of the extractor that made the fingerprints
    extractor: dict = field(default_factory=dict)  # its description (name, kind, image size, chain, path)
    crop: str = "centre"  # how images were cropped for it (zsattr.images.queries)
    far: float = DEFAULT_FAR  # target false-accept rate of `--reject auto`
    _fingerprints: dict[str, np.ndarray] = field(default_factory=dict)
    _hashes: dict[str, list[str]] = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)

    # -- contents -------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self._fingerprints)

    @property
    def shots(self) -> list[int]:
        return [len(f) for f in self._fingerprints.values()]

    @property
    def dim(self) -> int | None:
        return next(iter(self._fingerprints.values())).shape[1] if self._fingerprints else None

    @property
    def centroids(self) -> np.ndarray:
        """(models, D): per model the mean of its normalised fingerprints (not renormalised)."""
        if not self._fingerprints:
            return np.zeros((0, 0))
        return np.stack([f.mean(axis=0) for f in self._fingerprints.values()])

    def fingerprints(self, name: str) -> np.ndarray:
        return self._fingerprints[self._known(name)].copy()

    def hashes(self, name: str) -> list[str]:
        return list(self._hashes[self._known(name)])

    def _known(self, name: str) -> str:
        if name not in self._fingerprints:
            raise KeyError(f"{name!r} is not enrolled; enrolled: {self.names}")
        return name

    @property
    def threshold(self) -> float | None:
        return self.calibration.get("threshold")

    # -- changes --------------------------------------------------------------------------
    def enrol(self, name: str, fingerprints: np.ndarray, hashes: Sequence[str] | None = None) -> None:
        """Add `name`, or replace its entry, from its images' fingerprints (k, D); `hashes`: one
        SHA-256 per image (kept to recognise enrolment images later). Recalibrates."""
        self._add(name, fingerprints, hashes)
        self.recalibrate()

    @classmethod
    def from_enrolment(cls, entries: Mapping[str, np.ndarray], calibrate: bool = True, **fields) -> "Gallery":
        """A gallery of many models at once, calibrated once at the end (or not at all: the
        evaluation protocols score closed-set galleries and need no threshold). The protocols
        of notebooks 05-07 enrol through this, so they measure the gallery users get."""
        gallery = cls(**fields)
        for name, fingerprints in entries.items():
            gallery._add(name, fingerprints, None)
        if calibrate:
            gallery.recalibrate()
        return gallery

    def _add(self, name: str, fingerprints: np.ndarray, hashes: Sequence[str] | None) -> None:
        fingerprints = np.atleast_2d(np.asarray(fingerprints))  # l2_normalise makes them float64
        if not name or not isinstance(name, str):
            raise GalleryError(f"a model needs a non-empty name, got {name!r}")
        if len(fingerprints) == 0:
            raise GalleryError(f"no fingerprints to enrol {name!r} from")
        if not np.isfinite(fingerprints).all():
            raise GalleryError(f"the fingerprints of {name!r} are not all finite")
        others = [f for n, f in self._fingerprints.items() if n != name]
        if others and fingerprints.shape[1] != others[0].shape[1]:
            raise ValueError(f"fingerprint dimension {fingerprints.shape[1]} differs from the gallery's "
                             f"{others[0].shape[1]}")
        hashes = list(hashes) if hashes is not None else [""] * len(fingerprints)
        if len(hashes) != len(fingerprints):
            raise GalleryError(f"{len(hashes)} image hashes for {len(fingerprints)} fingerprints of {name!r}")
        self._fingerprints[name] = l2_normalise(fingerprints)
        self._hashes[name] = hashes

    def remove(self, name: str) -> None:
        del self._fingerprints[self._known(name)]
        del self._hashes[name]
        self.recalibrate()

    def recalibrate(self, far: float | None = None) -> dict:
        if far is not None:
            self.far = far
        blocks = list(self._fingerprints.values())
        self.calibration = {**calibrate_rejection(blocks, self.far),
                            "verification": calibrate_verification(blocks)} if blocks else {}
        return self.calibration

    # -- queries --------------------------------------------------------------------------
    def scores(self, queries: np.ndarray) -> np.ndarray:
        if not self._fingerprints:
            raise ValueError("the gallery is empty: enrol at least one model first")
        queries = np.atleast_2d(np.asarray(queries))  # cosine_similarity computes in float64
        if queries.shape[1] != self.dim:
            raise GalleryError(f"query fingerprints have dimension {queries.shape[1]}; the gallery's are "
                               f"{self.dim} (made by another extractor?)")
        return cosine_similarity(queries, self.centroids)

    def identify(self, queries: np.ndarray, top: int = 1) -> list[list[tuple[str, float]]]:
        """For each query, the `top` best (name, cosine similarity), best first."""
        scores = self.scores(queries)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
        return [[(self.names[j], float(scores[i, j])) for j in row] for i, row in enumerate(order)]

    def attribute(self, queries: np.ndarray, top: int = 3, threshold: float | str | None = "auto"
                  ) -> list[Attribution]:
        """`identify` plus a decision per query: the best model, or "unknown" when its similarity
        is at or below `threshold` ("auto": the calibrated one; None: never reject)."""
        limit = self.resolve_threshold(threshold)
        scores = self.scores(queries)
        order = np.argsort(-scores, axis=1, kind="stable")
        out = []
        for i, row in enumerate(order):
            best = scores[i, row[0]]
            margin = float(best - scores[i, row[1]]) if len(row) > 1 else float("nan")
            decision = self.names[row[0]] if limit is None or best > limit else UNKNOWN
            out.append(Attribution([(self.names[j], float(scores[i, j])) for j in row[:top]], margin,
                                   decision, limit))
        return out

    def resolve_threshold(self, threshold: float | str | None) -> float | None:
        if threshold is None or threshold == "none":
            return None
        if threshold == "auto":
            if self.threshold is None:
                reason = self.calibration.get("reason") or "the gallery is empty"
                raise GalleryError(f"no calibrated rejection threshold: {reason}; pass a value or 'none'")
            return float(self.threshold)
        value = float(threshold)
        if not -1.0 <= value <= 1.0:
            raise GalleryError(f"a cosine-similarity threshold lies in [-1, 1], got {value}")
        return value

    def verify(self, queries: np.ndarray, name: str) -> np.ndarray:
        """Cosine similarity of each query to `name`'s entry."""
        return self.scores(queries)[:, self.names.index(self._known(name))]

    def check_extractor(self, extractor_id: str) -> None:
        """Refuse fingerprints of an extractor other than the one the gallery was enrolled with."""
        if self.extractor_id and extractor_id != self.extractor_id:
            made = self.extractor.get("name") or "another extractor"
            raise GalleryError(f"this gallery was enrolled with extractor {self.extractor_id[:12]} ({made}); "
                               f"the one given is {extractor_id[:12]}. Fingerprints of different extractors "
                               "cannot be compared: use the gallery's extractor or enrol a new gallery.")

    # -- file -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        meta = {"format": GALLERY_FORMAT, "names": self.names, "shots": self.shots,
                "hashes": [self._hashes[n] for n in self.names], "extractor_id": self.extractor_id,
                "extractor": self.extractor, "crop": self.crop, "far": self.far, "calibration": self.calibration}
        arrays = {f"f{i:04d}": f for i, f in enumerate(self._fingerprints.values())}
        arrayfile.write(path, meta, arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Gallery":
        path = Path(path).expanduser()
        try:
            meta, arrays = arrayfile.read(path, "gallery file", "create one with `zsattr gallery create`")
            arrayfile.check_format(path, meta, GALLERY_FORMAT, "gallery file", "Re-enrol the models with this version.")
        except arrayfile.ArrayFileError as exc:
            raise GalleryError(str(exc)) from exc
        try:
            names, shots, hashes = list(meta["names"]), list(meta["shots"]), list(meta["hashes"])
            blocks = [arrays[f"f{i:04d}"] for i in range(len(names))]
        except KeyError as exc:
            raise GalleryError(f"{path}: the names do not match the stored arrays (missing {exc})") from exc
        extra = set(arrays) - {f"f{i:04d}" for i in range(len(names))}
        dims = {b.shape[1] for b in blocks if b.ndim == 2}  # a block of another rank is refused below
        if (extra or len(set(names)) != len(names) or len(shots) != len(names) or len(hashes) != len(names)
                or any(b.ndim != 2 or len(b) != s or len(h) != s for b, s, h in zip(blocks, shots, hashes))
                or len(dims) > 1):
            raise GalleryError(f"{path}: the names, shots and hashes do not match the stored arrays; "
                               "the file is damaged. Re-create the gallery.")
        gallery = cls(meta.get("extractor_id", ""), meta.get("extractor", {}), meta.get("crop", "centre"),
                      float(meta.get("far", DEFAULT_FAR)))
        gallery._fingerprints = {n: np.asarray(b, np.float64) for n, b in zip(names, blocks)}
        gallery._hashes = {n: list(h) for n, h in zip(names, hashes)}
        gallery.calibration = dict(meta.get("calibration") or {})
        return gallery


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
