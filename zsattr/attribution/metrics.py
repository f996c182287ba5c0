"""Identification (1:N), verification (1:1) and open-set metrics on similarity scores.

Pure numpy; tests compare each against scikit-learn where sklearn has the metric.

Verification threshold honesty: `verification_report` picks its operating threshold on a
*calibration* split of pairs disjoint from the test pairs, and reports the paper's
best-threshold accuracy separately, labelled optimistic (that threshold is chosen on the very
pairs it is scored on; the authors' script did this).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from scipy.stats import t as student_t


def cosine_similarity(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """(Q, D) x (G, D) -> (Q, G) cosine similarities, float64."""
    q = np.asarray(queries, np.float64)
    g = np.asarray(gallery, np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    return q @ g.T


def topk_accuracy(scores: np.ndarray, true_index: np.ndarray, k: int = 1) -> float:
    """Fraction of queries whose true gallery entry is among the k highest scores."""
    scores, true_index = np.asarray(scores), np.asarray(true_index)
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, kth=k - 1)[:, :k]  # along the last axis: the gallery
    return float(np.mean(np.any(top == true_index[:, None], axis=1)))


def confusion_matrix(true_index: np.ndarray, pred_index: np.ndarray, n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(true_index), np.asarray(pred_index)), 1)
    return cm


def macro_f1(true_index: np.ndarray, pred_index: np.ndarray, n_classes: int) -> float:
    """Unweighted mean F1 over the classes present in truth or prediction (sklearn's default)."""
    cm = confusion_matrix(true_index, pred_index, n_classes)
    denom = cm.sum(axis=1) + cm.sum(axis=0)  # support + predicted count, per class
    present = denom > 0
    return float(np.mean(2 * np.diag(cm)[present] / denom[present]))


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count one half)."""
    positive = np.asarray(positive, bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs both positive and negative examples")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_points(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, threshold) for every distinct threshold,
    accepting score >= threshold; starts at (0, 0, +inf)."""
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    order = np.argsort(-scores)  # the order within a run of tied scores is never read
    s, p = scores[order], positive[order]
    last_of_run = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps, fps = np.cumsum(p)[last_of_run], np.cumsum(~p)[last_of_run]
    tpr = np.r_[0.0, tps / max(p.sum(), 1)]
    fpr = np.r_[0.0, fps / max((~p).sum(), 1)]
    return fpr, tpr, np.r_[np.inf, s[last_of_run]]


def equal_error_rate(scores: np.ndarray, positive: np.ndarray) -> float:
    """Where the false acceptance and false rejection rates cross (linear interpolation)."""
    fpr, tpr, _ = roc_points(scores, positive)
    fnr = 1.0 - tpr
    # i >= 1, since the curve starts at FAR 0 < FRR 1; so d0 > 0 >= d1
    i = np.nonzero(fpr >= fnr)[0][0]
    d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
    t = d0 / (d0 - d1)
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def tar_at_far(scores: np.ndarray, positive: np.ndarray, far: float = 0.01) -> float:
    """Highest true acceptance rate among thresholds whose false acceptance rate <= far."""
    fpr, tpr, _ = roc_points(scores, positive)
    return float(tpr[fpr <= far].max())


def accuracy_at(scores: np.ndarray, positive: np.ndarray, threshold: float) -> float:
    return float(np.mean((np.asarray(scores) >= threshold) == np.asarray(positive, bool)))


def best_threshold(scores: np.ndarray, positive: np.ndarray) -> float:
    """The threshold of highest accuracy on these pairs (midpoint between adjacent scores)."""
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    s = np.unique(scores)
    candidates = np.r_[s[0] - 1e-9, (s[:-1] + s[1:]) / 2, s[-1] + 1e-9]
    # Accuracy at every candidate in O(n log n): accepted positives + rejected negatives,
    # counted with searchsorted (side "left": a score equal to a threshold is accepted) on the
    # sorted scores of each class.
    pos, neg = np.sort(scores[positive]), np.sort(scores[~positive])
    true_accepts = len(pos) - np.searchsorted(pos, candidates)
    true_rejects = np.searchsorted(neg, candidates)
    return float(candidates[int(np.argmax(true_accepts + true_rejects))])


def verification_report(test_scores, test_positive, calib_scores, calib_positive,
                        far: float = 0.01) -> dict[str, float]:
    threshold = best_threshold(calib_scores, calib_positive)
    return {
        "roc_auc": roc_auc(test_scores, test_positive),
        "eer": equal_error_rate(test_scores, test_positive),
        f"tar_at_far_{far:g}": tar_at_far(test_scores, test_positive, far),
        "threshold_calibrated": threshold,
        "accuracy_calibrated": accuracy_at(test_scores, test_positive, threshold),
        "accuracy_best_threshold_optimistic": accuracy_at(
            test_scores, test_positive, best_threshold(test_scores, test_positive)),
    }


def open_set_report(known_scores: np.ndarray, known_true: np.ndarray,
                    unknown_scores: np.ndarray) -> dict[str, float]:
    """Open-set identification against a gallery that lacks some models.

    known_scores (Qk, G) with true gallery indices; unknown_scores (Qu, G) for queries of models
    not in the gallery. A query is rejected when its best score is below a threshold.
    - auroc: how well the best score separates known from unknown queries;
    - oscr: area under (correct classification rate of known queries vs false positive rate of
      unknown queries) as the threshold sweeps (Dhamija et al. 2018).
    """
    known_best = known_scores.max(axis=1)
    unknown_best = unknown_scores.max(axis=1)
    correct = known_scores.argmax(axis=1) == np.asarray(known_true)
    is_known = np.r_[np.ones_like(known_best), np.zeros_like(unknown_best)]  # roc_auc reads it as bool
    auroc = roc_auc(np.r_[known_best, unknown_best], is_known)
    thresholds = np.unique(np.r_[known_best, unknown_best])[::-1]
    ccr = np.array([0.0] + [np.mean(correct & (known_best >= t)) for t in thresholds])
    fpr = np.array([0.0] + [np.mean(unknown_best >= t) for t in thresholds])
    oscr = float(np.sum(np.diff(fpr) * (ccr[1:] + ccr[:-1]) / 2))
    return {"open_set_auroc": auroc, "oscr": oscr, "closed_set_accuracy_known": float(correct.mean())}


def rerun_halfwidth(sd: float, n: int, level: float = 0.95) -> float:
    """Half-width of the interval around a mean over `n` seeds (sample sd `sd` between seeds) in
    which a rerun's mean over `n` fresh seeds falls with probability `level`, if seeds are
    independent and roughly normal: the difference of two such means has sd `sd * sqrt(2 / n)`,
    scaled by Student's t with n - 1 degrees of freedom. NaN for n < 2 or an unknown sd.
    (Another machine's float path acts as fresh seeds: training amplifies the differences.)"""
    if n < 2 or not np.isfinite(sd):
        return float("nan")
    return float(student_t.ppf(0.5 + level / 2, n - 1) * sd * np.sqrt(2.0 / n))
