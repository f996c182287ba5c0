import numpy as np
import pytest
from sklearn import metrics as skm

from zsattr.attribution import metrics as am


@pytest.fixture(params=range(4))
def scored(request):
    rng = np.random.default_rng(request.param)
    positive = rng.random(400) < 0.5
    scores = rng.normal(size=400) + 1.2 * positive
    scores[:40] = np.round(scores[:40], 1)  # some ties
    return scores, positive


def test_roc_auc_matches_sklearn(scored):
    s, p = scored
    assert am.roc_auc(s, p) == pytest.approx(skm.roc_auc_score(p, s), abs=1e-12)


def test_roc_points_match_sklearn(scored):
    s, p = scored
    fpr, tpr, thr = am.roc_points(s, p)
    sk_fpr, sk_tpr, _ = skm.roc_curve(p, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)


def _on_polyline(point, xs, ys) -> float:
    """Distance from `point` to the polyline through (xs, ys)."""
    a, b = np.stack([xs[:-1], ys[:-1]], 1), np.stack([xs[1:], ys[1:]], 1)
    ab = b - a
    t = np.clip(np.einsum("ij,ij->i", point - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-300), 0, 1)
    return float(np.min(np.linalg.norm(a + t[:, None] * ab - point, axis=1)))


def test_eer_lies_where_the_roc_curve_crosses_far_equals_frr(scored):
    s, p = scored
    fpr, tpr, _ = skm.roc_curve(p, s, drop_intermediate=False)
    eer = am.equal_error_rate(s, p)
    assert _on_polyline(np.array([eer, 1 - eer]), fpr, tpr) < 1e-12  # (FAR, TAR) = (e, 1 - e) is on sklearn's ROC
    assert am.tar_at_far(s, p, 0.01) == pytest.approx(tpr[fpr <= 0.01].max())


@pytest.mark.parametrize("positives,negatives,eer", [
    # FRR stays 1/3 while FAR steps from 1/4 to 1/2 (threshold between 0.7 and 0.6): they meet at 1/3
    ([0.9, 0.8, 0.4], [0.7, 0.6, 0.3, 0.2], 1 / 3),
    # FAR stays 1/4 while FRR falls from 2/3 to 1/3 to 0: they meet at 1/4
    ([0.9, 0.7, 0.6], [0.8, 0.3, 0.2, 0.1], 1 / 4),
    # a positive and a negative tied at 0.5: one diagonal step from (FAR 0, FRR 1/2) to (1/2, 0), halfway 1/4
    ([0.9, 0.5], [0.5, 0.1], 1 / 4),
])
def test_eer_by_hand(positives, negatives, eer):
    s = np.r_[positives, negatives]
    p = np.r_[np.ones(len(positives), bool), np.zeros(len(negatives), bool)]
    assert am.equal_error_rate(s, p) == pytest.approx(eer, abs=1e-12)


def test_perfect_and_random_verification():
    p = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    s = np.r_[np.linspace(1, 2, 50), np.linspace(-1, 0, 50)]
    assert am.roc_auc(s, p) == 1.0 and am.equal_error_rate(s, p) == 0.0 and am.tar_at_far(s, p) == 1.0
    thr = am.best_threshold(s, p)
    assert am.accuracy_at(s, p, thr) == 1.0 and 0.0 < thr < 1.0


def test_calibrated_threshold_is_not_tuned_on_test_pairs():
    # calibration pairs separate at 0.5; on the test pairs two positives sit below 0.5
    calib_s, calib_p = np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True])
    test_s = np.array([0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.9, 0.95])
    test_p = np.array([False] * 4 + [True] * 4)
    report = am.verification_report(test_s, test_p, calib_s, calib_p)
    assert report["threshold_calibrated"] == pytest.approx(0.5)
    assert report["accuracy_calibrated"] == 0.75  # 0.3 and 0.35 rejected
    assert report["accuracy_best_threshold_optimistic"] == 1.0  # a threshold in (0.25, 0.3) on the test pairs


def test_identification_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    true = rng.integers(0, 6, size=300)
    scores = rng.normal(size=(300, 6))
    scores[np.arange(300), true] += 1.0
    pred = scores.argmax(1)
    assert am.topk_accuracy(scores, true, 1) == pytest.approx(skm.accuracy_score(true, pred))
    assert am.topk_accuracy(scores, true, 3) == pytest.approx(skm.top_k_accuracy_score(true, scores, k=3))
    assert am.macro_f1(true, pred, 6) == pytest.approx(skm.f1_score(true, pred, average="macro"))
    np.testing.assert_array_equal(am.confusion_matrix(true, pred, 6), skm.confusion_matrix(true, pred, labels=range(6)))


def test_macro_f1_with_absent_class_matches_sklearn():
    true, pred = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    assert am.macro_f1(true, pred, 5) == pytest.approx(skm.f1_score(true, pred, average="macro"))


def test_cosine_similarity():
    q = np.array([[1.0, 0], [0, 2]])
    g = np.array([[3.0, 0], [1, 1]])
    np.testing.assert_allclose(am.cosine_similarity(q, g), skm.pairwise.cosine_similarity(q, g))


def test_open_set_extremes():
    known = np.array([[0.9, 0.1], [0.2, 0.8]])
    unknown = np.array([[0.3, 0.2], [0.1, 0.4]])
    r = am.open_set_report(known, np.array([0, 1]), unknown)
    assert r["open_set_auroc"] == 1.0 and r["oscr"] == pytest.approx(1.0)
    r = am.open_set_report(known, np.array([1, 0]), unknown)  # every known query misidentified
    assert r["oscr"] == 0.0 and r["closed_set_accuracy_known"] == 0.0


def best_accuracy_by_enumeration(s, p) -> float:
    """Every decision a threshold can make: accept the pairs scoring >= each observed score, or none."""
    decisions = [s >= v for v in np.unique(s)] + [np.zeros(len(s), bool)]
    return max(float(np.mean(d == p)) for d in decisions)


def test_best_threshold_reaches_the_best_accuracy_of_any_decision():
    rng = np.random.default_rng(7)
    for n in (5, 40, 300):
        s = np.round(rng.normal(size=n), 1)  # many ties
        p = rng.random(n) < 0.5
        threshold = am.best_threshold(s, p)
        assert am.accuracy_at(s, p, threshold) == best_accuracy_by_enumeration(s, p)
        assert threshold not in s  # between two scores, never on one (a tie would decide by rounding)


def test_rerun_halfwidth_values_and_coverage():
    # t(0.975, 1 df) = 12.706: two seeds give a wide interval; one seed none
    assert am.rerun_halfwidth(1.0, 2) == pytest.approx(12.7062, rel=1e-4)
    assert am.rerun_halfwidth(0.1, 4) == pytest.approx(3.1824 * 0.1 * np.sqrt(0.5), rel=1e-4)
    assert np.isnan(am.rerun_halfwidth(0.1, 1)) and np.isnan(am.rerun_halfwidth(float("nan"), 3))
    # coverage: a first run of n normal seeds states mean +/- halfwidth; a second run's mean lands inside
    rng = np.random.default_rng(0)
    n, trials = 3, 4000
    first, second = rng.normal(0.8, 0.1, (trials, n)), rng.normal(0.8, 0.1, (trials, n))
    half = np.array([am.rerun_halfwidth(s, n) for s in first.std(axis=1, ddof=1)])
    inside = np.abs(second.mean(axis=1) - first.mean(axis=1)) <= half
    assert inside.mean() == pytest.approx(0.95, abs=0.015)
    naive = np.abs(second.mean(axis=1) - first.mean(axis=1)) <= first.std(axis=1, ddof=1)
    assert naive.mean() < 0.85, "mean +/- sd alone is not a rerun interval"
