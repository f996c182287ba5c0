"""Evaluation protocols over fingerprints: identification, k-shot sweep, verification, open set.

Every protocol takes plain arrays, features (N, D) and integer labels (N,), so it cannot tell
which method made them; with the same seed every method gets the same support draws, the
same query sets and (through a persisted `Pairs` file) the same verification pairs.

- Identification (1:N, PAPER.md section 7): per draw, k random support images per model form
  its gallery entry (mean of L2-normalised fingerprints, `zsattr.attribution.gallery`); the other images
  are queries, matched by cosine similarity. Several seeded draws give a mean and a spread,
  since one draw of k=10 images is a noisy estimate of a model's fingerprint.
- Verification (1:1): pairs scored by the cosine of the two fingerprints. The images are split
  per model into a calibration half and a test half, pairs are drawn inside each half, and the
  operating threshold is chosen on the calibration pairs only. The authors' best threshold on
  the test pairs is reported too, labelled optimistic (PAPER.md section 9).
- Open set: some models are left out of the gallery; the best cosine score must reject their
  images (AUROC) while still classifying the known ones (OSCR).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..core import atomic
from . import metrics as am
from .gallery import Gallery, l2_normalise, split_support_queries, verification_pairs
from .splits import GROUPS

log = logging.getLogger(__name__)

PAIRS_FORMAT = 1


def _model_names(labels: np.ndarray, names: Sequence[str] | None) -> list[str]:
    return [str(names[c]) if names is not None else str(c) for c in np.unique(labels)]


def _check_inputs(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features, labels = np.asarray(features, np.float64), np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f"features must be (N, D) with N = len(labels) = {len(labels)}, got {features.shape}")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinite values")
    return features, labels


def _require_shots(labels: np.ndarray, k: int, names: Sequence[str] | None, classes=None) -> None:
    classes = np.unique(labels) if classes is None else classes
    counts = {c: int(np.sum(labels == c)) for c in classes}
    short = {_model_names(np.array([c]), names)[0]: n for c, n in counts.items() if n < k + 1}
    if short:
        raise ValueError(f"k={k} support images per model leave no query for model(s) {short} "
                         f"(images per model); lower k or supply more images")


def enrolled(features: np.ndarray, labels: np.ndarray, support: np.ndarray, classes: np.ndarray) -> Gallery:
    """The tool's gallery (`attribution.gallery.Gallery`), one entry per class (named by its
    label) from its support images; closed set, so no rejection threshold is calibrated."""
    return Gallery.from_enrolment({str(c): features[support[labels[support] == c]] for c in classes},
                                  calibrate=False)


def centroids(features: np.ndarray, labels: np.ndarray, support: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Gallery entries: per class, the mean of its L2-normalised support fingerprints."""
    return enrolled(features, labels, support, classes).centroids


@dataclass
class Identification:
    """Per-draw identification results (see `identification`)."""

    names: list[str]  # gallery entries, in label order
    k: int
    top1: np.ndarray  # (draws,)
    top3: np.ndarray  # (draws,)
    macro_f1: np.ndarray  # (draws,)
    per_model: pd.DataFrame  # index model: top1 (mean over draws), top1_std, queries (per draw)
    confusion: np.ndarray  # (models, models) counts summed over draws; rows true, columns predicted
    per_model_draws: np.ndarray | None = None  # (draws, models) top-1 of each model in each draw

    def subset_top1(self, models: Sequence[str]) -> np.ndarray:
        """(draws,) mean top-1 over `models` in each draw: a subset's value and its spread over draws."""
        columns = [self.names.index(m) for m in models]
        return self.per_model_draws[:, columns].mean(axis=1)

    def summary(self) -> dict[str, float]:
        out = {"k": self.k, "draws": len(self.top1)}
        for key in ("top1", "top3", "macro_f1"):
            values = getattr(self, key)
            out[f"{key}_mean"], out[f"{key}_std"] = float(values.mean()), float(values.std())
        return out

    def confusion_frame(self, normalise: bool = True) -> pd.DataFrame:
        cm = self.confusion.astype(np.float64)
        if normalise:
            cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        return pd.DataFrame(cm, index=pd.Index(self.names, name="true"),
                            columns=pd.Index(self.names, name="predicted"))


def identification(features: np.ndarray, labels: np.ndarray, k: int = 10, draws: int = 5, seed: int = 0,
                   names: Sequence[str] | None = None, query_features: np.ndarray | None = None) -> Identification:
    """Closed-set 1:N identification over every model present in `labels`, `draws` seeded draws
    of k support images per model. `names[label]` names the models in the tables.

    `query_features` (same rows as `features`, e.g. the same images after a perturbation): the
    gallery is still enrolled from `features`, the queries are scored from these rows."""
    features, labels = _check_inputs(features, labels)
    if query_features is not None and np.shape(query_features) != features.shape:
        raise ValueError(f"query_features {np.shape(query_features)} must match features {features.shape}")
    queries_from = features if query_features is None else np.asarray(query_features, dtype=np.float64)
    if k < 1 or draws < 1:
        raise ValueError(f"k and draws must be >= 1, got k={k}, draws={draws}")
    _require_shots(labels, k, names)
    classes = np.unique(labels)
    model_names = _model_names(labels, names)
    n = len(classes)
    top1, top3, f1 = np.zeros(draws), np.zeros(draws), np.zeros(draws)
    per_model = np.zeros((draws, n))
    confusion = np.zeros((n, n), dtype=np.int64)
    for d in range(draws):
        support, queries = split_support_queries(labels, k, np.random.default_rng([seed, d]))
        scores = enrolled(features, labels, support, classes).scores(queries_from[queries])
        true = np.searchsorted(classes, labels[queries])
        pred = scores.argmax(axis=1)
        top1[d] = am.topk_accuracy(scores, true, 1)
        top3[d] = am.topk_accuracy(scores, true, 3)
        f1[d] = am.macro_f1(true, pred, n)
        per_model[d] = [np.mean(pred[true == i] == i) for i in range(n)]
        confusion += am.confusion_matrix(true, pred, n)
    table = pd.DataFrame({"top1": per_model.mean(axis=0), "top1_std": per_model.std(axis=0),
                          "queries": [int(np.sum(labels == c)) - k for c in classes]},
                         index=pd.Index(model_names, name="model"))
    return Identification(model_names, k, top1, top3, f1, table, confusion, per_model)


def kshot_sweep(features: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 2, 5, 10, 20),
                draws: int = 5, seed: int = 0) -> pd.DataFrame:
    """Top-1 accuracy against the number of support images k. A k that leaves some model with
    no query is kept as a row with NaN accuracy and `skipped` = True (and logged)."""
    features, labels = _check_inputs(features, labels)
    smallest = int(min(np.sum(labels == c) for c in np.unique(labels)))
    rows = []
    for k in ks:
        if k >= smallest:
            log.info("k-shot sweep: k=%d skipped, the smallest model has %d images", k, smallest)
            rows.append({"k": k, "top1_mean": np.nan, "top1_std": np.nan, "skipped": True})
            continue
        result = identification(features, labels, k, draws, seed)
        rows.append({"k": k, "top1_mean": float(result.top1.mean()), "top1_std": float(result.top1.std()),
                     "skipped": False})
    return pd.DataFrame(rows)


@dataclass
class Pairs:
    """Verification pairs over image indices, persisted so every method is scored on them.

    test / calibration: (n, 3) int arrays of (i, j, same) with i < j, unique within and across;
    the two draw from disjoint image sets. labels: the labels the pairs were drawn for, kept to
    catch features of a different image set.
    """

    test: np.ndarray
    calibration: np.ndarray
    labels: np.ndarray
    seed: int = 0
    meta: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        """To .json (readable) or .npz, by suffix; atomic."""
        path = Path(path)
        payload = {"format": PAIRS_FORMAT, "seed": self.seed, "meta": self.meta,
                   "test": self.test.tolist(), "calibration": self.calibration.tolist(),
                   "labels": self.labels.tolist()}
        if path.suffix == ".json":
            atomic.write_json(path, payload)
        elif path.suffix == ".npz":
            with atomic.atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, test=self.test, calibration=self.calibration, labels=self.labels,
                         meta=np.array(json.dumps({k: payload[k] for k in ("format", "seed", "meta")})))
        else:
            raise ValueError(f"pairs are saved as .json or .npz, not {path.suffix!r}")

    @classmethod
    def load(cls, path: str | Path) -> "Pairs":
        path = Path(path)
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            arrays = {k: np.asarray(data[k], dtype=np.int64).reshape(-1, 3) for k in ("test", "calibration")}
            arrays["labels"] = np.asarray(data["labels"], dtype=np.int64)
        else:
            with np.load(path, allow_pickle=False) as npz:
                data = json.loads(str(npz["meta"]))
                arrays = {k: npz[k] for k in ("test", "calibration", "labels")}
        if data.get("format") != PAIRS_FORMAT:
            raise ValueError(f"{path} holds pairs of format {data.get('format')}; this version reads {PAIRS_FORMAT}")
        return cls(arrays["test"], arrays["calibration"], arrays["labels"], data["seed"], data["meta"])


def make_pairs(labels: np.ndarray, n_pairs: int, seed: int = 0, calibration_fraction: float = 0.5) -> Pairs:
    """Split each model's images (seeded) into a calibration part (`calibration_fraction`) and a
    test part, then draw up to `n_pairs` unique pairs, half same-model, inside each part."""
    labels = np.asarray(labels, dtype=np.int64)
    if not 0.0 < calibration_fraction < 1.0:
        raise ValueError(f"calibration_fraction must be in (0, 1), got {calibration_fraction}")
    rng = np.random.default_rng(seed)
    calib_mask = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        idx = rng.permutation(np.nonzero(labels == c)[0])
        calib_mask[idx[:int(round(calibration_fraction * len(idx)))]] = True
    parts = {}
    for part, mask in (("calibration", calib_mask), ("test", ~calib_mask)):
        index = np.nonzero(mask)[0]
        local = verification_pairs(labels[index], n_pairs, rng)
        parts[part] = np.column_stack([index[local[:, 0]], index[local[:, 1]], local[:, 2]])
    return Pairs(parts["test"], parts["calibration"], labels, seed,
                 {"n_pairs": n_pairs, "calibration_fraction": calibration_fraction})


def restrict_pairs(pairs: Pairs, keep: np.ndarray) -> Pairs:
    """The pairs whose two images are both in `keep` (a boolean mask over the images), e.g. the
    images of the unseen models only: a sub-population scored on the very same persisted pairs."""
    keep = np.asarray(keep, dtype=bool)
    if len(keep) != len(pairs.labels):
        raise ValueError(f"mask over {len(keep)} images for pairs over {len(pairs.labels)}")

    def inside(p: np.ndarray) -> np.ndarray:
        return p[keep[p[:, 0]] & keep[p[:, 1]]]
    test, calibration = inside(pairs.test), inside(pairs.calibration)
    for name, part in (("test", test), ("calibration", calibration)):
        if not (part[:, 2] == 1).any() or not (part[:, 2] == 0).any():
            raise ValueError(f"the kept images leave no same-model or no different-model {name} pair")
    return Pairs(test, calibration, pairs.labels, pairs.seed, {**pairs.meta, "restricted_to_images": int(keep.sum())})


def pair_scores(features: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Cosine similarity of the two fingerprints of each (i, j, same) pair."""
    f = l2_normalise(features)
    return np.einsum("nd,nd->n", f[pairs[:, 0]], f[pairs[:, 1]])


def verification(features: np.ndarray, pairs: Pairs, labels: np.ndarray | None = None) -> dict[str, float]:
    """ROC-AUC, EER, TAR at 1% FAR on the test pairs; accuracy at the threshold calibrated on
    the calibration pairs (honest); best-threshold accuracy on the test pairs (optimistic)."""
    features = np.asarray(features, np.float64)
    if len(features) != len(pairs.labels) or (labels is not None and not np.array_equal(labels, pairs.labels)):
        raise ValueError("these pairs were drawn for a different image set (labels or count differ)")
    report = am.verification_report(pair_scores(features, pairs.test), pairs.test[:, 2] == 1,
                                    pair_scores(features, pairs.calibration), pairs.calibration[:, 2] == 1)
    report.update(n_test_pairs=len(pairs.test), n_calibration_pairs=len(pairs.calibration))
    return report


def choose_unknown(models: Sequence[str], fraction: float, seed: int = 0) -> list[str]:
    """A seeded choice of round(fraction * len(models)) models to leave out of the gallery:
    at least one, and at least two stay known."""
    models = list(models)
    n = int(round(fraction * len(models)))
    n = max(1, min(n, len(models) - 2))
    if len(models) < 3:
        raise ValueError(f"open set needs at least 3 models (2 known, 1 unknown), got {len(models)}")
    rng = np.random.default_rng(seed)
    return sorted(models[i] for i in rng.choice(len(models), size=n, replace=False))


def open_set(features: np.ndarray, labels: np.ndarray, known: Sequence[int], k: int = 10,
             seed: int = 0) -> dict[str, float]:
    """Gallery of the `known` labels only (k seeded support images each); queries are the other
    images of known models and every image of the unknown ones; the max cosine score is the
    known-ness score. Returns AUROC of rejecting unknowns, OSCR and closed-set accuracy."""
    features, labels = _check_inputs(features, labels)
    known = np.unique(np.asarray(known))
    missing = np.setdiff1d(known, labels)
    if len(missing):
        raise ValueError(f"known label(s) {missing.tolist()} have no images")
    is_known = np.isin(labels, known)
    if is_known.all():
        raise ValueError("every model is known: an open-set evaluation needs at least one unknown model")
    _require_shots(labels, k, None, known)
    known_idx = np.nonzero(is_known)[0]
    support, queries = split_support_queries(labels[known_idx], k, np.random.default_rng(seed))
    support, queries = known_idx[support], known_idx[queries]
    gallery = enrolled(features, labels, support, known)
    report = am.open_set_report(gallery.scores(features[queries]), np.searchsorted(known, labels[queries]),
                                gallery.scores(features[~is_known]))
    report.update(n_known_models=len(known), n_unknown_models=len(np.unique(labels[~is_known])))
    return report


def evaluate_method(features: np.ndarray, labels: np.ndarray, names: Sequence[str],
                    groups: Mapping[str, str], pairs: Pairs | None = None, k: int = 10, draws: int = 5,
                    seed: int = 0) -> dict[str, Any]:
    """One method on everything, as tidy tables (and the full `Identification` result):
    - per_model: model, group, top1 (mean over draws), top1_std, queries;
    - per_group: macro average of per-model top-1 within each split group, plus "all";
    - summary: one row: identification means/stds, and the verification metrics if `pairs`."""
    result = identification(features, labels, k, draws, seed, names)
    per_model = result.per_model.reset_index()
    per_model.insert(1, "group", [groups.get(m, "unknown") for m in per_model["model"]])
    per_group = per_model.groupby("group", sort=False)["top1"].agg(["mean", "count"])
    order = {g: i for i, g in enumerate(GROUPS)}  # the split's order, other group names after it
    per_group = per_group.iloc[np.argsort([order.get(g, len(order)) for g in per_group.index], kind="stable")]
    per_group.loc["all"] = [per_model["top1"].mean(), len(per_model)]
    per_group = per_group.rename(columns={"mean": "top1", "count": "models"}).astype({"models": int})
    summary = result.summary()
    if pairs is not None:
        summary.update(verification(features, pairs, labels))
    return {"per_model": per_model, "per_group": per_group.reset_index(),
            "summary": pd.DataFrame([summary]), "identification": result}
