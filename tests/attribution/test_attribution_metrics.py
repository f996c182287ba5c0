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


def test_cosine_similarity_is_float64_shape_q_by_g_and_scale_free():
    rng = np.random.default_rng(3)
    q, g = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    sims = am.cosine_similarity(q, g)
    assert sims.shape == (5, 4) and sims.dtype == np.float64
    # float32 embeddings are normalised in float64: agrees with sklearn on the float64 values to 1e-12
    reference_q, reference_g = q.astype(np.float64), g.astype(np.float64)
    reference = skm.pairwise.cosine_similarity(reference_q, reference_g)
    np.testing.assert_allclose(sims, reference, rtol=1e-12, atol=1e-15)
    # short vectors (norm far below 1) have the same cosines as long ones
    np.testing.assert_allclose(am.cosine_similarity(1e-3 * reference_q, 1e-4 * reference_g), sims, rtol=1e-12)


def test_cosine_similarity_of_a_zero_vector_is_zero_not_nan():
    sims = am.cosine_similarity(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 0.0]]))
    np.testing.assert_allclose(sims, [[0.0], [np.sqrt(0.5)]])


def test_topk_accuracy_by_hand_default_k_and_k_beyond_the_gallery():
    scores = np.array([[0.9, 0.5, 0.1],   # true 1: second best
                       [0.2, 0.3, 0.8],   # true 2: best
                       [0.7, 0.6, 0.5]])  # true 2: third
    true = np.array([1, 2, 2])
    assert am.topk_accuracy(scores, true) == pytest.approx(1 / 3)  # k defaults to 1
    assert am.topk_accuracy(scores, true, 2) == pytest.approx(2 / 3)
    assert am.topk_accuracy(scores, true, 3) == 1.0  # k equal to the gallery size
    assert am.topk_accuracy(scores, true, 10) == 1.0  # k larger than the gallery: every entry counts


def test_top1_accuracy_on_a_large_gallery_is_argmax_accuracy():
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(40, 2000))
    true = rng.integers(0, 2000, size=40)
    scores[np.arange(20), true[:20]] += 10.0  # half the queries find their entry
    assert am.topk_accuracy(scores, true, 1) == float(np.mean(scores.argmax(1) == true)) == 0.5


def test_confusion_matrix_counts_integers_rows_true_columns_predicted():
    cm = am.confusion_matrix([0, 0, 0, 2, 1], [0, 0, 1, 2, 1], 3)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, [[2, 1, 0], [0, 1, 0], [0, 0, 1]])


def test_macro_f1_counts_a_class_seen_once_only_in_the_predictions():
    # class 0: F1 1; class 1 (in truth, never predicted): 0; class 2 (predicted once, never true): 0;
    # class 3 appears nowhere and is left out of the mean
    true, pred = np.array([0, 0, 1]), np.array([0, 0, 2])
    assert am.macro_f1(true, pred, 4) == pytest.approx(1 / 3)
    assert am.macro_f1(true, pred, 4) == pytest.approx(skm.f1_score(true, pred, average="macro"))


def test_roc_auc_needs_both_classes():
    for labels in ([True, True, True], [False, False, False]):
        with pytest.raises(ValueError, match="^ROC-AUC needs both positive and negative examples$"):
            am.roc_auc([0.1, 0.5, 0.9], labels)


def test_one_positive_and_one_negative_by_hand():
    s, p = np.array([0.9, 0.1]), np.array([True, False])
    assert am.roc_auc(s, p) == 1.0 and am.roc_auc(s[::-1], p) == 0.0 and am.roc_auc([0.5, 0.5], p) == 0.5
    fpr, tpr, thr = am.roc_points(s, p)
    np.testing.assert_array_equal(fpr, [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(tpr, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.1])


def test_integer_labels_mean_the_same_as_booleans(scored):
    s, p = scored
    labels = p.astype(int)  # 0/1, as sklearn accepts them
    assert am.roc_auc(s, labels) == am.roc_auc(s, p)
    for got, want in zip(am.roc_points(s, labels), am.roc_points(s, p)):
        np.testing.assert_array_equal(got, want)
    assert am.equal_error_rate(s, labels) == am.equal_error_rate(s, p)
    assert am.best_threshold(s, labels) == am.best_threshold(s, p)


def test_hard_decisions_as_scores_give_one_roc_point():
    """Boolean scores (a detector's accept/reject) are a valid score with two levels."""
    decisions = np.array([True, True, False, True, False, False])
    positive = np.array([True, True, True, False, False, False])
    fpr, tpr, thr = am.roc_points(decisions, positive)
    np.testing.assert_allclose(fpr, [0.0, 1 / 3, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 2 / 3, 1.0])
    np.testing.assert_array_equal(thr, [np.inf, 1.0, 0.0])


def test_eer_of_a_constant_scorer_is_one_half():
    # every pair ties: the ROC is the single diagonal step (0, 0) -> (1, 1)
    assert am.equal_error_rate(np.zeros(6), np.array([True, False] * 3)) == pytest.approx(0.5)


def test_tar_at_far_includes_a_threshold_whose_far_equals_the_limit():
    negatives = np.arange(100) / 100  # 0.00 ... 0.99: each accepted negative adds 1 % FAR
    positives = np.array([1.5, 0.985, 0.975, 0.5])
    s = np.r_[positives, negatives]
    p = np.r_[np.ones(4, bool), np.zeros(100, bool)]
    assert am.tar_at_far(s, p, 0.0) == 0.25  # only 1.5 is above every negative
    assert am.tar_at_far(s, p) == 0.5  # default FAR 1 %: accepting 0.99 (a negative) and 0.985
    assert am.tar_at_far(s, p, 0.02) == 0.75


def test_accuracy_at_accepts_a_score_equal_to_the_threshold():
    assert am.accuracy_at([0.5, 0.4], [True, False], 0.5) == 1.0


def test_best_threshold_sits_just_outside_the_scores_when_accepting_or_rejecting_all_is_best():
    # accept all (3/4) ties the threshold 1.5 (3/4); the first best, accept all, is returned
    accept_all = am.best_threshold([0.0, 2.0, 3.0, 1.0], [True, True, True, False])
    assert accept_all < 0.0 and accept_all == pytest.approx(0.0, abs=1e-6)
    # a positive below two negatives: rejecting all (2/3) is the only best
    reject_all = am.best_threshold([1.0, 2.0, 3.0], [True, False, False])
    assert reject_all > 3.0 and reject_all == pytest.approx(3.0, abs=1e-6)


def test_best_threshold_of_8_bit_scores_is_their_midpoint():
    """Integer scores are averaged in float64: 200 and 250 in uint8 must not wrap around."""
    assert am.best_threshold(np.array([200, 250], np.uint8), [False, True]) == 225.0


def test_verification_report_by_hand():
    # the pairs of the EER example: positives 0.9 0.8 0.4, negatives 0.7 0.6 0.3 0.2
    test_s = np.array([0.9, 0.8, 0.4, 0.7, 0.6, 0.3, 0.2])
    test_p = np.array([True] * 3 + [False] * 4)
    calib_s, calib_p = np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True])
    report = am.verification_report(test_s, test_p, calib_s, calib_p, far=0.5)
    assert report == pytest.approx({
        "roc_auc": 10 / 12,  # 10 of the 12 (positive, negative) pairs are ordered right
        "eer": 1 / 3,
        "tar_at_far_0.5": 1.0,  # at FAR 1/2 (0.6 accepted) all positives are in
        "threshold_calibrated": 0.5,
        "accuracy_calibrated": 4 / 7,  # 0.7, 0.6 accepted and 0.4 rejected wrongly
        "accuracy_best_threshold_optimistic": 6 / 7,  # a threshold in (0.7, 0.8): only 0.4 wrong
    })
    default = am.verification_report(test_s, test_p, calib_s, calib_p)
    assert default["tar_at_far_0.01"] == pytest.approx(2 / 3) and "tar_at_far_0.5" not in default


def test_open_set_report_by_hand():
    known = np.array([[0.9, 0.1],   # true 0: right, best 0.9
                      [0.3, 0.6],   # true 0: wrong, best 0.6
                      [0.2, 0.5]])  # true 1: right, best 0.5
    unknown = np.array([[0.7, 0.0], [0.1, 0.4]])  # best 0.7 and 0.4
    r = am.open_set_report(known, np.array([0, 0, 1]), unknown)
    assert r == pytest.approx({
        "open_set_auroc": 4 / 6,  # known bests above unknown bests in 4 of 6 pairs
        # (FPR, CCR): (0, 1/3) at 0.9, (1/2, 1/3) at 0.7 and 0.6, (1/2, 2/3) at 0.5, (1, 2/3) at 0.4
        "oscr": 0.5 * 1 / 3 + 0.5 * 2 / 3,
        "closed_set_accuracy_known": 2 / 3,
    })


def test_oscr_counts_the_false_positives_above_every_known_query():
    """An unknown query scoring highest opens the curve with FPR 1/2 at a CCR of 0."""
    known = np.array([[0.9, 0.1], [0.3, 0.6], [0.2, 0.5]])  # bests 0.9 (right), 0.6 (wrong), 0.5 (right)
    unknown = np.array([[0.95, 0.0], [0.1, 0.4]])  # bests 0.95 and 0.4
    r = am.open_set_report(known, np.array([0, 0, 1]), unknown)
    # (FPR, CCR): (1/2, 0) at 0.95, (1/2, 1/3) at 0.9 and 0.6, (1/2, 2/3) at 0.5, (1, 2/3) at 0.4
    assert r["oscr"] == pytest.approx(0.5 * 2 / 3)
    assert r["open_set_auroc"] == pytest.approx(3 / 6)


def test_rerun_halfwidth_of_an_infinite_sd_is_nan():
    """A diverged seed (an infinite sd between seeds) leaves the interval unknown, not infinite."""
    assert np.isnan(am.rerun_halfwidth(float("inf"), 3))
