"""LoRA tracing: are images of a fine-tuned variant attributed to the model it was tuned from?

The gallery is the zoo as in notebook 05 (k images per zoo model, mean fingerprint; no
variant is enrolled). Each variant image is a query:
- tracing accuracy: share of variant images whose best-scoring gallery entry is their base,
  over seeded gallery draws (chance = 1 / number of zoo models);
- verification: each variant image paired with one image of its base (same) and one image of
  another zoo model (different), seeded; ROC-AUC and accuracy at the method's threshold
  calibrated on the zoo's calibration pairs (the threshold a user of the gallery would have).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..attribution import metrics as am
from ..attribution import protocols
from ..attribution.gallery import l2_normalise, split_support_queries


def trace(zoo_features: np.ndarray, zoo_labels: np.ndarray, variant_features: np.ndarray,
          variant_bases: np.ndarray, k: int, draws: int, seed: int) -> np.ndarray:
    """(draws, n_variant_images) predicted zoo labels of the variant images."""
    zoo_features, zoo_labels = np.asarray(zoo_features, np.float64), np.asarray(zoo_labels)
    classes = np.unique(zoo_labels)
    if not np.isin(variant_bases, classes).all():
        raise ValueError("every variant's base must be a zoo model with gallery images")
    preds = np.empty((draws, len(variant_features)), dtype=np.int64)
    for d in range(draws):
        support, _ = split_support_queries(zoo_labels, k, np.random.default_rng([seed, d]))
        gallery = protocols.enrolled(zoo_features, zoo_labels, support, classes)
        preds[d] = classes[gallery.scores(variant_features).argmax(axis=1)]
    return preds


def base_pairs(zoo_labels: np.ndarray, variant_bases: np.ndarray, seed: int) -> np.ndarray:
    """(2 n, 3) pairs (variant image, zoo image, same-base flag): one positive and one negative
    partner per variant image, drawn with `seed`."""
    rng = np.random.default_rng([seed, 11])
    rows = []
    for v, base in enumerate(variant_bases):
        same, other = np.nonzero(zoo_labels == base)[0], np.nonzero(zoo_labels != base)[0]
        rows += [(v, rng.choice(same), 1), (v, rng.choice(other), 0)]
    return np.asarray(rows, dtype=np.int64)


def tracing_report(zoo_features: np.ndarray, zoo_labels: np.ndarray, pairs: protocols.Pairs,
                   variant_features: np.ndarray, variant_bases: np.ndarray, variant_ids: np.ndarray,
                   variant_names: list[str], k: int, draws: int, seed: int) -> tuple[dict, pd.DataFrame]:
    """One method: overall tracing accuracy, verification of variant-vs-base pairs, and a
    per-variant table (tracing accuracy and the zoo model most often predicted)."""
    preds = trace(zoo_features, zoo_labels, variant_features, variant_bases, k, draws, seed)
    hits = preds == variant_bases[None, :]
    threshold = am.best_threshold(protocols.pair_scores(zoo_features, pairs.calibration),
                                  pairs.calibration[:, 2] == 1)
    vb = base_pairs(zoo_labels, variant_bases, seed)
    scores = np.einsum("nd,nd->n", l2_normalise(variant_features)[vb[:, 0]], l2_normalise(zoo_features)[vb[:, 1]])
    positive = vb[:, 2] == 1
    summary = {"lora_tracing_accuracy": float(hits.mean()), "tracing_std_over_draws": float(hits.mean(axis=1).std()),
               "variant_base_roc_auc": am.roc_auc(scores, positive),
               "variant_base_accuracy_calibrated": am.accuracy_at(scores, positive, threshold)}
    rows = []
    for v, name in enumerate(variant_names):
        sel = variant_ids == v
        values, counts = np.unique(preds[:, sel], return_counts=True)
        rows.append({"variant": name, "images": int(sel.sum()), "traced_to_base": float(hits[:, sel].mean()),
                     "most_predicted": int(values[counts.argmax()])})
    return summary, pd.DataFrame(rows)
