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


def test_eer_and_tar_against_sklearn_curve(scored):
    s, p = scored
    fpr, tpr, _ = skm.roc_curve(p, s)
    i = np.argmin(np.abs(fpr - (1 - tpr)))
    assert am.equal_error_rate(s, p) == pytest.approx((fpr[i] + 1 - tpr[i]) / 2, abs=0.02)
    assert am.tar_at_far(s, p, 0.01) == pytest.approx(tpr[fpr <= 0.01].max())


def test_perfect_and_random_verification():
    p = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    s = np.r_[np.linspace(1, 2, 50), np.linspace(-1, 0, 50)]
    assert am.roc_auc(s, p) == 1.0 and am.equal_error_rate(s, p) == 0.0 and am.tar_at_far(s, p) == 1.0
    thr = am.best_threshold(s, p)
    assert am.accuracy_at(s, p, thr) == 1.0 and 0.0 < thr < 1.0


def test_calibrated_threshold_is_not_tuned_on_test_pairs():
    rng = np.random.default_rng(0)
    p = rng.random(200) < 0.5
    calib_s, test_s = rng.normal(size=200) + p, rng.normal(size=200) + p + 5.0  # a shifted test set
    report = am.verification_report(test_s, p, calib_s, p)
    assert report["accuracy_calibrated"] < report["accuracy_best_threshold_optimistic"]
    assert report["threshold_calibrated"] == am.best_threshold(calib_s, p)


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


def test_best_threshold_equals_the_exhaustive_search():
    rng = np.random.default_rng(7)
    for n in (5, 40, 300):
        s = np.round(rng.normal(size=n), 1)  # many ties
        p = rng.random(n) < 0.5
        u = np.unique(s)
        candidates = np.r_[u[0] - 1e-9, (u[:-1] + u[1:]) / 2, u[-1] + 1e-9]
        accs = [am.accuracy_at(s, p, t) for t in candidates]
        assert am.best_threshold(s, p) == candidates[int(np.argmax(accs))]


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
