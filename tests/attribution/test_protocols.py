import json

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
    hand = protocols.Pairs(np.array([[0, 1, 1], [0, 2, 0], [1, 3, 0]]), np.array([[2, 3, 1], [0, 3, 0]]),
                           np.array([0, 0, 1, 1]), 0, {})
    with pytest.raises(ValueError, match="no same-model or no different-model test pair"):
        protocols.restrict_pairs(hand, np.array([True, False, True, True]))  # test keeps only (0, 2): different
    with pytest.raises(ValueError, match="mask over"):
        protocols.restrict_pairs(pairs, keep[:5])


# --- gallery entries, inputs and naming ---------------------------------------------------------

def test_centroids_are_the_mean_of_each_models_normalised_support_images():
    x = np.array([[3.0, 4.0], [0.0, 2.0], [9.0, 9.0], [1.0, 0.0], [0.0, -5.0], [7.0, 7.0]])
    y = np.array([0, 0, 0, 1, 1, 1])
    support = np.array([0, 1, 3, 4])  # rows 2 and 5 are queries and must not move the entries
    expected = np.array([[(0.6 + 0.0) / 2, (0.8 + 1.0) / 2], [(1.0 + 0.0) / 2, (0.0 - 1.0) / 2]])
    np.testing.assert_allclose(protocols.centroids(x, y, support, np.array([0, 1])), expected)
    gallery = protocols.enrolled(x, y, support, np.array([0, 1]))
    assert gallery.names == ["0", "1"] and gallery.shots == [2, 2]
    assert gallery.threshold is None and gallery.calibration == {}  # closed set: nothing calibrated


def test_models_without_names_are_named_by_their_label():
    x, y = _clusters(n_classes=3, per_class=4)
    y = np.array([3, 7, 9])[y]  # labels need not be 0..n-1
    result = protocols.identification(x, y, k=2, draws=1)
    assert result.names == ["3", "7", "9"] and list(result.per_model.index) == ["3", "7", "9"]
    with pytest.raises(ValueError, match=r"k=4 support images per model leave no query for model\(s\) "
                                         r"\{'3': 4, '7': 4, '9': 4\}"):
        protocols.identification(x, y, k=4)


def test_features_that_are_not_a_finite_n_by_d_matrix_are_rejected():
    x, y = _clusters(n_classes=2, per_class=4)
    with pytest.raises(ValueError, match=r"features must be \(N, D\) with N = len\(labels\) = 8, got \(8,\)"):
        protocols.identification(x[:, 0], y, k=1)  # one number per image: right length, wrong rank
    for bad in (np.nan, np.inf):
        broken = x.copy()
        broken[5, 1] = bad
        with pytest.raises(ValueError, match="features contain NaN or infinite values"):
            protocols.identification(broken, y, k=1)
        with pytest.raises(ValueError, match="NaN or infinite"):
            protocols.open_set(np.vstack([broken, x]), np.r_[y, y + 2], [0, 1], k=1)


def test_k_plus_one_images_per_model_is_the_smallest_valid_input():
    x, y = _clusters(n_classes=3, per_class=3)
    result = protocols.identification(x, y, k=2, draws=2)  # one query per model and draw
    assert (result.per_model["queries"] == 1).all() and result.confusion.sum() == 3 * 2
    assert protocols.identification(x, y, k=1, draws=1).top1.tolist() == [1.0]
    for k, draws in ((0, 1), (1, 0)):
        with pytest.raises(ValueError, match=f"k and draws must be >= 1, got k={k}, draws={draws}"):
            protocols.identification(x, y, k=k, draws=draws)


# --- identification -------------------------------------------------------------------------------

def test_query_features_are_scored_against_the_gallery_enrolled_from_features():
    x, y = _clusters(n_classes=4, per_class=6)
    next_model = x[(np.arange(len(x)) + 6) % len(x)]  # each image's query looks like the next model
    shifted = protocols.identification(x, y, k=2, draws=3, seed=1, query_features=next_model)
    assert shifted.top1.tolist() == [0.0] * 3
    np.testing.assert_array_equal(shifted.confusion, 3 * 4 * np.roll(np.eye(4, dtype=int), 1, axis=1))
    same = protocols.identification(x, y, k=2, draws=3, seed=1, query_features=x.copy())
    np.testing.assert_array_equal(same.confusion, protocols.identification(x, y, k=2, draws=3, seed=1).confusion)
    with pytest.raises(ValueError, match=r"query_features \(23, 16\) must match features \(24, 16\)"):
        protocols.identification(x, y, k=2, query_features=x[:-1])


def test_per_model_table_and_summary_are_means_and_spreads_over_draws():
    x, y = _clusters(n_classes=4, per_class=12, spread=1.5, seed=3)  # overlapping: draws differ
    names = ["a", "b", "c", "d"]
    r = protocols.identification(x, y, k=3, draws=4, seed=0, names=names)
    assert r.per_model_draws.shape == (4, 4) and r.per_model_draws.std(axis=0).max() > 0
    np.testing.assert_allclose(r.per_model["top1"], r.per_model_draws.mean(axis=0))
    np.testing.assert_allclose(r.per_model["top1_std"], r.per_model_draws.std(axis=0))
    assert list(r.per_model.columns) == ["top1", "top1_std", "queries"] and r.per_model.index.name == "model"
    assert r.confusion.dtype.kind == "i" and r.confusion.sum() == 4 * 4 * 9  # counts of queries
    expected = {"k": 3, "draws": 4}
    for key in ("top1", "top3", "macro_f1"):
        expected[f"{key}_mean"], expected[f"{key}_std"] = getattr(r, key).mean(), getattr(r, key).std()
    assert r.summary() == pytest.approx(expected) and set(r.summary()) == set(expected)
    assert 0 < r.top1.std() and r.top1.mean() < r.top3.mean() < 1


def test_confusion_frame_normalises_each_true_model_row():
    names = ["a", "b", "c"]
    counts = np.array([[3, 1, 0], [0, 0, 0], [0, 1, 0]])  # b was never queried; c only once
    r = protocols.Identification(names, 1, np.zeros(1), np.zeros(1), np.zeros(1), pd.DataFrame(), counts)
    frame = r.confusion_frame()
    np.testing.assert_allclose(frame.to_numpy(), [[0.75, 0.25, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert list(frame.index) == names and list(frame.columns) == names
    assert frame.index.name == "true" and frame.columns.name == "predicted"
    raw = r.confusion_frame(normalise=False)
    assert raw.to_numpy().tolist() == counts.tolist() and raw.index.name == "true"
    assert raw.columns.name == "predicted" and raw.to_numpy().dtype == np.float64


def test_defaults_are_the_documented_ones():
    """k=10, draws=5, seed=0 (and calibration_fraction=0.5) when not given."""
    x, y = _random(n_classes=4, per_class=20)  # random features: every draw and seed scores differently
    default = protocols.identification(x, y)
    assert default.k == 10 and len(default.top1) == 5
    np.testing.assert_array_equal(default.top1, protocols.identification(x, y, 10, 5, 0).top1)
    pd.testing.assert_frame_equal(protocols.kshot_sweep(x, y, ks=(3,)),
                                  protocols.kshot_sweep(x, y, ks=(3,), draws=5, seed=0))
    out = protocols.evaluate_method(x, y, list("abcd"), {})
    np.testing.assert_array_equal(out["identification"].top1, default.top1)
    assert out["summary"].loc[0, "k"] == 10 and out["summary"].loc[0, "draws"] == 5
    xo, yo = _random(n_classes=5, per_class=20)
    assert protocols.open_set(xo, yo, [0, 1, 2]) == protocols.open_set(xo, yo, [0, 1, 2], k=10, seed=0)
    models = [f"m{i}" for i in range(10)]
    assert protocols.choose_unknown(models, 0.5) == protocols.choose_unknown(models, 0.5, seed=0)
    pairs = protocols.make_pairs(y, 40)
    np.testing.assert_array_equal(pairs.test, protocols.make_pairs(y, 40, seed=0, calibration_fraction=0.5).test)
    assert pairs.seed == 0 and pairs.meta == {"n_pairs": 40, "calibration_fraction": 0.5}


def test_kshot_sweep_rows_are_identification_runs_with_the_same_draws(caplog):
    x, y = _clusters(per_class=12, spread=1.2, seed=4)
    with caplog.at_level("INFO", logger="zsattr.attribution.protocols"):
        table = protocols.kshot_sweep(x, y, ks=(12, 2, 20, 4), draws=3, seed=3)
    assert list(table.columns) == ["k", "top1_mean", "top1_std", "skipped"]
    assert table["skipped"].tolist() == [True, False, True, False]  # a skipped k does not end the sweep
    assert table.loc[[0, 2], ["top1_mean", "top1_std"]].isna().all().all()
    for row, k in ((1, 2), (3, 4)):
        top1 = protocols.identification(x, y, k, 3, 3).top1
        assert table.loc[row, "top1_mean"] == top1.mean() and table.loc[row, "top1_std"] == top1.std()
    messages = [r.getMessage() for r in caplog.records]
    assert any("k=12 skipped" in m and "has 12 images" in m for m in messages)
    assert any("k=20 skipped" in m for m in messages)


# --- open set --------------------------------------------------------------------------------------

def test_choose_unknown_leaves_at_least_one_out_and_never_repeats_a_model():
    assert len(protocols.choose_unknown(list("abcdef"), 0.01)) == 1  # rounds to none: still one
    three = protocols.choose_unknown(["a", "b", "c"], 0.5)  # the smallest open set: 2 known, 1 unknown
    assert len(three) == 1 and three[0] in "abc"
    models = [f"m{i}" for i in range(10)]
    for seed in range(5):
        chosen = protocols.choose_unknown(models, 0.8, seed=seed)
        assert len(chosen) == 8 and len(set(chosen)) == 8 and chosen == sorted(chosen)


def test_open_set_needs_support_images_only_for_known_models():
    x, y = _clusters(n_classes=4, per_class=8)
    few = np.r_[np.nonzero(y < 3)[0], np.nonzero(y == 3)[0][:2]]  # unknown model 3 has 2 images
    report = protocols.open_set(x[few], y[few], [0, 1, 2], k=5)
    assert report["n_unknown_models"] == 1 and report["open_set_auroc"] == 1.0
    with pytest.raises(ValueError, match=r"k=8 support images per model leave no query for model\(s\) "
                                         r"\{'0': 8, '1': 8\}"):
        protocols.open_set(x, y, [0, 1], k=8)
    with pytest.raises(ValueError, match=r"known label\(s\) \[7, 9\] have no images"):
        protocols.open_set(x, y, [0, 9, 7], k=2)


def test_open_set_support_draw_follows_the_seed():
    x, y = _random(n_classes=5, per_class=20)
    runs = [protocols.open_set(x, y, [0, 1, 2], k=5, seed=s) for s in (0, 0, 1)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


# --- verification pairs ----------------------------------------------------------------------------

def test_make_pairs_records_its_settings_and_rejects_fractions_outside_0_1():
    _, y = _clusters(n_classes=3, per_class=10)
    pairs = protocols.make_pairs(y, 30, seed=4, calibration_fraction=0.3)
    assert pairs.seed == 4 and pairs.meta == {"n_pairs": 30, "calibration_fraction": 0.3}
    assert (np.bincount(y[np.unique(pairs.calibration[:, :2])], minlength=3) <= 3).all()
    for fraction in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(ValueError, match=rf"calibration_fraction must be in \(0, 1\), got {fraction}"):
            protocols.make_pairs(y, 30, calibration_fraction=fraction)


def test_pairs_load_refuses_other_formats_and_pickled_files(tmp_path):
    _, y = _clusters(n_classes=3, per_class=6)
    pairs = protocols.make_pairs(y, 10, seed=0)
    pairs.save(tmp_path / "p.json")
    data = json.loads((tmp_path / "p.json").read_text())
    data["format"] = 2
    (tmp_path / "p2.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"p2\.json holds pairs of format 2; this version reads 1"):
        protocols.Pairs.load(tmp_path / "p2.json")
    # an .npz whose arrays hold pickled objects could run code on load: it must be refused
    np.savez(tmp_path / "evil.npz", test=pairs.test, calibration=pairs.calibration, labels=pairs.labels,
             meta=np.array([{"format": 1, "seed": 0, "meta": {}}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        protocols.Pairs.load(tmp_path / "evil.npz")


def test_empty_pair_parts_round_trip_as_integer_index_arrays(tmp_path):
    empty = protocols.Pairs(np.zeros((0, 3), np.int64), np.zeros((0, 3), np.int64), np.zeros(0, np.int64))
    for suffix in (".json", ".npz"):
        empty.save(tmp_path / f"e{suffix}")
        loaded = protocols.Pairs.load(tmp_path / f"e{suffix}")
        for part in (loaded.test, loaded.calibration):
            assert part.shape == (0, 3) and part.dtype == np.int64
        assert loaded.labels.shape == (0,) and loaded.labels.dtype == np.int64


def test_restrict_pairs_keeps_the_image_set_and_says_which_part_falls_short():
    labels = np.repeat(np.arange(4), 10)
    pairs = protocols.make_pairs(labels, 200, seed=3)
    keep = labels >= 2
    sub = protocols.restrict_pairs(pairs, keep)
    np.testing.assert_array_equal(sub.labels, labels)
    assert sub.seed == 3 and sub.meta == {**pairs.meta, "restricted_to_images": 20}
    as_ints = protocols.restrict_pairs(pairs, keep.astype(int))  # a 0/1 mask means the same
    np.testing.assert_array_equal(as_ints.test, sub.test)
    np.testing.assert_array_equal(as_ints.calibration, sub.calibration)
    # test pairs of both kinds, calibration pairs of one model only
    lopsided = protocols.Pairs(np.array([[0, 1, 1], [0, 10, 0]]), np.array([[2, 3, 1]]), labels)
    with pytest.raises(ValueError, match="no same-model or no different-model calibration pair"):
        protocols.restrict_pairs(lopsided, np.ones(40, bool))
    with pytest.raises(ValueError, match="no same-model or no different-model test pair"):
        protocols.restrict_pairs(lopsided, labels == 0)
    with pytest.raises(ValueError, match="mask over 39 images for pairs over 40"):
        protocols.restrict_pairs(pairs, keep[1:])


def test_verification_refuses_pairs_drawn_for_other_labels_and_counts_both_parts():
    x, y = _clusters(n_classes=3, per_class=10)
    pairs = protocols.make_pairs(y, 40, seed=0)
    report = protocols.verification(x, pairs, y)
    assert report["n_test_pairs"] == 40 and report["n_calibration_pairs"] == 40
    relabelled = y[::-1]  # same number of images, other models
    with pytest.raises(ValueError, match=r"these pairs were drawn for a different image set \(labels or count"):
        protocols.verification(x, pairs, relabelled)
    with pytest.raises(ValueError, match="different image set"):
        protocols.evaluate_method(x, relabelled, ["a", "b", "c"], {}, pairs, k=2, draws=1)


# --- evaluate_method -------------------------------------------------------------------------------

def test_evaluate_method_groups_outside_the_split_come_last_in_first_seen_order():
    x, y = _clusters(n_classes=5, per_class=6)
    names = ["a", "b", "c", "d", "e"]
    groups = {"a": "zeta", "b": "alpha", "c": "unseen_family", "e": "real_training"}  # d: no group
    out = protocols.evaluate_method(x, y, names, groups, k=2, draws=1)
    per_model = out["per_model"]
    assert list(per_model.columns) == ["model", "group", "top1", "top1_std", "queries"]
    assert per_model["group"].tolist() == ["zeta", "alpha", "unseen_family", "unknown", "real_training"]
    per_group = out["per_group"]
    assert per_group["group"].tolist() == ["real_training", "unseen_family", "zeta", "alpha", "unknown", "all"]
    assert per_group["models"].tolist() == [1, 1, 1, 1, 1, 5] and per_group["models"].dtype.kind == "i"
    assert list(per_group.columns) == ["group", "top1", "models"]
    assert set(out) == {"per_model", "per_group", "summary", "identification"}
    assert "roc_auc" not in out["summary"].columns  # no pairs: no verification columns
