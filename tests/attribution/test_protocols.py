import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from zsattr.attribution import metrics as am
from zsattr.attribution import protocols


def _clusters(n_classes=5, per_class=30, dim=16, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    labels = np.repeat(np.arange(n_classes), per_class)
    return centres[labels] + spread * rng.normal(size=(len(labels), dim)), labels


def best_accuracy_by_enumeration(s, p) -> float:
    """Every decision a threshold can make: accept the pairs scoring >= each observed score, or none."""
    decisions = [s >= v for v in np.unique(s)] + [np.zeros(len(s), bool)]
    return max(float(np.mean(d == p)) for d in decisions)


def _random(n_classes=5, per_class=60, dim=32, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_classes * per_class, dim)), np.repeat(np.arange(n_classes), per_class)


def test_identification_separated_clusters_is_perfect():
    x, y = _clusters()
    names = [f"m{i}" for i in range(5)]
    result = protocols.identification(x, y, k=5, draws=3, seed=0, names=names)
    assert result.top1.tolist() == [1.0] * 3 and result.macro_f1.min() == 1.0 and result.top3.min() == 1.0
    assert list(result.per_model.index) == names and (result.per_model["top1"] == 1.0).all()
    assert (result.per_model["queries"] == 25).all()
    np.testing.assert_array_equal(result.confusion, np.diag([75] * 5))
    s = result.summary()
    assert s["top1_mean"] == 1.0 and s["top1_std"] == 0.0 and s["k"] == 5 and s["draws"] == 3
    assert np.allclose(result.confusion_frame().to_numpy(), np.eye(5))


def test_identification_random_features_are_at_chance_and_deterministic():
    x, y = _random()
    a = protocols.identification(x, y, k=10, draws=5, seed=7)
    b = protocols.identification(x, y, k=10, draws=5, seed=7)
    np.testing.assert_array_equal(a.top1, b.top1)
    np.testing.assert_array_equal(a.confusion, b.confusion)
    assert abs(a.top1.mean() - 0.2) < 0.08 and abs(a.top3.mean() - 0.6) < 0.1
    assert not np.array_equal(a.top1, protocols.identification(x, y, k=10, draws=5, seed=8).top1)
    assert a.confusion.sum() == 5 * 5 * 50


def test_identification_metrics_agree_with_sklearn():
    from sklearn.metrics.pairwise import cosine_similarity

    from zsattr.attribution.gallery import split_support_queries

    x, y = _clusters(spread=1.5, seed=3)  # overlapping clusters: some errors
    r = protocols.identification(x, y, k=4, draws=1, seed=2)
    support, queries = split_support_queries(y, 4, np.random.default_rng([2, 0]))  # draw 0's support
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    centroids = np.stack([unit[support][y[support] == c].mean(axis=0) for c in range(5)])
    scores = cosine_similarity(x[queries], centroids)
    true, pred = y[queries], scores.argmax(axis=1)
    assert r.top1[0] == pytest.approx(skm.accuracy_score(true, pred))
    assert r.top3[0] == pytest.approx(skm.top_k_accuracy_score(true, scores, k=3))
    assert r.macro_f1[0] == pytest.approx(skm.f1_score(true, pred, average="macro"))
    np.testing.assert_array_equal(r.confusion, skm.confusion_matrix(true, pred))
    assert 0.3 < r.top1[0] < 1.0


def test_too_few_images_is_a_clear_error():
    x, y = _clusters(per_class=6)
    with pytest.raises(ValueError, match=r"leave no query for model\(s\) \{'m0'"):
        protocols.identification(x, y, k=6, names=[f"m{i}" for i in range(5)])
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        protocols.identification(x[:-1], y)


def test_kshot_sweep_rises_with_k_and_skips_impossible_k():
    x, y = _clusters(per_class=12, spread=1.2, seed=4)
    table = protocols.kshot_sweep(x, y, ks=(1, 5, 11, 12), draws=4, seed=0)
    assert isinstance(table, pd.DataFrame) and table["k"].tolist() == [1, 5, 11, 12]
    assert table["skipped"].tolist() == [False, False, False, True] and np.isnan(table["top1_mean"].iloc[3])
    assert table["top1_mean"].iloc[1] > table["top1_mean"].iloc[0]


def test_pairs_deduplicated_disjoint_halves_and_persisted(tmp_path):
    _, y = _clusters(per_class=20)
    pairs = protocols.make_pairs(y, n_pairs=150, seed=5)
    for part in (pairs.test, pairs.calibration):
        assert part.shape == (150, 3) and (part[:, 0] < part[:, 1]).all()
        assert len({(i, j) for i, j, _ in part}) == len(part)
        assert part[:, 2].sum() == 75
        np.testing.assert_array_equal(part[:, 2], y[part[:, 0]] == y[part[:, 1]])
    test_images, calib_images = set(pairs.test[:, :2].ravel()), set(pairs.calibration[:, :2].ravel())
    assert not test_images & calib_images
    calib_per_model = np.bincount(y[sorted(calib_images)], minlength=5)
    assert (calib_per_model <= 10).all()
    again = protocols.make_pairs(y, n_pairs=150, seed=5)
    np.testing.assert_array_equal(again.test, pairs.test)
    assert not np.array_equal(protocols.make_pairs(y, 150, seed=6).test, pairs.test)
    for suffix in (".json", ".npz"):
        pairs.save(tmp_path / f"pairs{suffix}")
        loaded = protocols.Pairs.load(tmp_path / f"pairs{suffix}")
        np.testing.assert_array_equal(loaded.test, pairs.test)
        np.testing.assert_array_equal(loaded.calibration, pairs.calibration)
        np.testing.assert_array_equal(loaded.labels, y)
        assert loaded.seed == 5 and loaded.meta == pairs.meta
    with pytest.raises(ValueError, match="json or .npz"):
        pairs.save(tmp_path / "pairs.txt")


def test_verification_separated_random_and_sklearn():
    x, y = _clusters(per_class=20)
    pairs = protocols.make_pairs(y, 200, seed=0)
    good = protocols.verification(x, pairs, y)
    assert good["roc_auc"] == 1.0 and good["eer"] == 0.0 and good["accuracy_calibrated"] == 1.0
    assert good["tar_at_far_0.01"] == 1.0 and good["n_test_pairs"] == 200
    xr, yr = _random(per_class=40)
    pairs_r = protocols.make_pairs(yr, 1000, seed=0)
    chance = protocols.verification(xr, pairs_r)
    assert abs(chance["roc_auc"] - 0.5) < 0.06 and abs(chance["accuracy_calibrated"] - 0.5) < 0.08
    scores = protocols.pair_scores(xr, pairs_r.test)
    # the threshold is the best one on the calibration pairs; the optimistic accuracy the best on the test pairs
    calib_scores, calib_same = protocols.pair_scores(xr, pairs_r.calibration), pairs_r.calibration[:, 2] == 1
    threshold = chance["threshold_calibrated"]
    assert am.accuracy_at(calib_scores, calib_same, threshold) == best_accuracy_by_enumeration(calib_scores, calib_same)
    assert chance["accuracy_calibrated"] == am.accuracy_at(scores, pairs_r.test[:, 2] == 1, threshold)
    assert chance["accuracy_best_threshold_optimistic"] == best_accuracy_by_enumeration(scores, pairs_r.test[:, 2] == 1)
    assert chance["roc_auc"] == pytest.approx(skm.roc_auc_score(pairs_r.test[:, 2], scores))
    x_unit = xr / np.linalg.norm(xr, axis=1, keepdims=True)
    np.testing.assert_allclose(scores, np.sum(x_unit[pairs_r.test[:, 0]] * x_unit[pairs_r.test[:, 1]], axis=1))
    with pytest.raises(ValueError, match="different image set"):
        protocols.verification(x, pairs_r)


def test_open_set_known_answers():
    x, y = _clusters(n_classes=6, per_class=20)
    unknown = protocols.choose_unknown([f"m{i}" for i in range(6)], 0.34, seed=0)
    assert len(unknown) == 2 and unknown == protocols.choose_unknown([f"m{i}" for i in range(6)], 0.34, seed=0)
    known = [i for i in range(6) if f"m{i}" not in unknown]
    good = protocols.open_set(x, y, known, k=5, seed=0)
    assert good["open_set_auroc"] == 1.0 and good["closed_set_accuracy_known"] == 1.0
    assert good["oscr"] == pytest.approx(1.0) and good["n_known_models"] == 4 and good["n_unknown_models"] == 2
    xr, yr = _random(n_classes=6, per_class=60)
    chance = protocols.open_set(xr, yr, known, k=10, seed=0)
    assert abs(chance["open_set_auroc"] - 0.5) < 0.1 and chance["oscr"] < 0.4
    with pytest.raises(ValueError, match="at least one unknown"):
        protocols.open_set(x, y, range(6))
    with pytest.raises(ValueError, match="at least 3 models"):
        protocols.choose_unknown(["a", "b"], 0.5)
    assert len(protocols.choose_unknown(list("abcd"), 0.9)) == 2  # two always stay known


def test_evaluate_method_tables():
    x, y = _clusters(n_classes=4, per_class=15)
    names = ["a", "b", "c", "d"]
    groups = {"a": "real_training", "b": "real_training", "c": "unseen_family", "d": "unseen_same_family"}
    out = protocols.evaluate_method(x, y, names, groups, protocols.make_pairs(y, 60, seed=0), k=3, draws=2)
    assert out["per_model"][["model", "group"]].values.tolist() == [[n, groups[n]] for n in names]
    assert out["per_group"]["group"].tolist() == ["real_training", "unseen_same_family", "unseen_family", "all"]
    per_group = out["per_group"].set_index("group")
    assert per_group.loc["real_training", "models"] == 2 and per_group.loc["all", "top1"] == 1.0
    summary = out["summary"].iloc[0]
    assert summary["top1_mean"] == 1.0 and summary["roc_auc"] == 1.0 and len(out["summary"]) == 1


def test_subset_top1_is_the_per_draw_mean_over_the_chosen_models():
    x, y = _clusters(n_classes=4, per_class=20, spread=0.05)
    x[y == 3] = x[y == 2][::-1] + 0.01 * np.random.default_rng(3).normal(size=x[y == 2].shape)  # d sits on c
    names = ["a", "b", "c", "d"]
    result = protocols.identification(x, y, k=3, draws=4, seed=0, names=names)
    subset = result.subset_top1(["a", "c", "d"])
    assert subset.shape == (4,)
    assert np.allclose(subset, result.per_model_draws[:, [0, 2, 3]].mean(axis=1))
    assert np.allclose(result.subset_top1(["a"]), 1.0) and subset.mean() < 1.0
    assert result.subset_top1(["a", "b"]).mean() == pytest.approx(result.per_model.loc[["a", "b"], "top1"].mean())


def test_restrict_pairs_keeps_only_pairs_inside_the_mask():
    labels = np.repeat(np.arange(4), 10)
    pairs = protocols.make_pairs(labels, 200, seed=0)
    keep = labels >= 2
    sub = protocols.restrict_pairs(pairs, keep)
    for part, full in ((sub.test, pairs.test), (sub.calibration, pairs.calibration)):
        assert keep[part[:, :2]].all() and 0 < len(part) < len(full)
        inside = full[keep[full[:, 0]] & keep[full[:, 1]]]
        np.testing.assert_array_equal(part, inside)  # every pair inside the mask is kept
    with pytest.raises(ValueError, match="no same-model or no different-model"):
        protocols.restrict_pairs(pairs, labels == 1)  # one model: no different-model pair
    with pytest.raises(ValueError, match="mask over"):
        protocols.restrict_pairs(pairs, keep[:5])
