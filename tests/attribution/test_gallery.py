import json
import re

import numpy as np
import pytest

from zsattr.attribution.gallery import (
    UNKNOWN,
    Attribution,
    Gallery,
    GalleryError,
    calibrate_rejection,
    split_support_queries,
    verification_pairs,
)


def _clusters(rng, n_classes=4, per_class=20, dim=8):
    centres = rng.normal(size=(n_classes, dim)) * 3
    labels = np.repeat(np.arange(n_classes), per_class)
    return centres[labels] + rng.normal(size=(len(labels), dim)), labels


def test_enrol_identify_verify_and_reload(tmp_path):
    rng = np.random.default_rng(0)
    x, y = _clusters(rng)
    support, queries = split_support_queries(y, 5, rng)
    gallery = Gallery(extractor_id="test")
    for c in range(4):
        gallery.enrol(f"model_{c}", x[support][y[support] == c])
    top = gallery.identify(x[queries], top=2)
    accuracy = np.mean([t[0][0] == f"model_{c}" for t, c in zip(top, y[queries])])
    assert accuracy > 0.95 and len(top[0]) == 2 and top[0][0][1] >= top[0][1][1]
    same = gallery.verify(x[queries][y[queries] == 1], "model_1")
    other = gallery.verify(x[queries][y[queries] == 2], "model_1")
    assert same.mean() > other.mean()
    gallery.save(tmp_path / "g.npz")
    again = Gallery.load(tmp_path / "g.npz")
    assert again.names == gallery.names and again.shots == [5] * 4 and again.extractor_id == "test"
    np.testing.assert_allclose(again.centroids, gallery.centroids)


def test_centroid_is_mean_of_normalised_fingerprints_and_reenrol_replaces():
    g = Gallery()
    g.enrol("a", np.array([[10.0, 0], [0, 1.0]]))
    np.testing.assert_allclose(g.centroids[0], [0.5, 0.5])
    g.enrol("a", np.array([[0, 3.0]]))
    assert g.names == ["a"] and g.shots == [1]
    with pytest.raises(ValueError, match="dimension"):
        g.enrol("b", np.ones((1, 3)))
    with pytest.raises(KeyError, match="not enrolled"):
        g.verify(np.ones((1, 2)), "zzz")
    with pytest.raises(ValueError, match="empty"):
        Gallery().identify(np.ones((1, 2)))


def test_reenrolling_a_model_replaces_its_entry_as_if_enrolled_afresh(tmp_path):
    rng = np.random.default_rng(7)
    def near(axis, n):  # n unit fingerprints close to one axis
        return l2(np.eye(4)[axis] + 0.05 * rng.normal(size=(n, 4)))

    a_old, a_new, b, c = near(0, 3), near(3, 3), near(1, 3), near(2, 2)
    g = Gallery()
    for name, f in (("a", a_old), ("b", b), ("c", c)):
        g.enrol(name, f, [f"{name}{i}" for i in range(len(f))])
    assert g.identify(a_old)[0][0][0] == "a"  # used before the change
    g.enrol("a", a_new, ["new0", "new1", "new2"])
    fresh = Gallery()
    for name, f in (("a", a_new), ("b", b), ("c", c)):
        fresh.enrol(name, f)
    assert g.names == ["a", "b", "c"] and g.hashes("a") == ["new0", "new1", "new2"]
    np.testing.assert_allclose(g.centroids, fresh.centroids)
    np.testing.assert_allclose(g.centroids[0], a_new.mean(axis=0))
    assert g.calibration == fresh.calibration
    assert g.identify(a_new)[0][0][0] == "a" and g.identify(a_old)[0][0][0] != "a"
    g.save(tmp_path / "g.npz")
    np.testing.assert_allclose(Gallery.load(tmp_path / "g.npz").scores(a_old), fresh.scores(a_old))


def test_a_zero_fingerprint_scores_zero_not_nan():
    from zsattr.attribution import metrics, protocols

    zero, e = np.zeros((1, 3)), np.eye(3)
    np.testing.assert_array_equal(metrics.cosine_similarity(zero, e), np.zeros((1, 3)))
    np.testing.assert_array_equal(metrics.cosine_similarity(e, zero), np.zeros((3, 1)))
    np.testing.assert_array_equal(protocols.pair_scores(np.vstack([zero, e]), np.array([[0, 1, 0], [1, 2, 0]])), [0, 0])
    g = Gallery.from_enrolment({"a": e[:1], "b": e[1:2], "blank": np.zeros((2, 3))}, calibrate=False)
    np.testing.assert_array_equal(g.scores(np.vstack([zero, e[2:]])), np.zeros((2, 3)))
    np.testing.assert_array_equal(g.scores(e[:1]), [[1.0, 0.0, 0.0]])
    assert g.attribute(zero, threshold=0.5)[0].decision == UNKNOWN


def test_support_query_split_is_disjoint_and_seeded():
    y = np.repeat(np.arange(3), 6)
    s1, q1 = split_support_queries(y, 2, np.random.default_rng(0))
    s2, q2 = split_support_queries(y, 2, np.random.default_rng(0))
    assert np.array_equal(s1, s2) and not set(s1) & set(q1) and len(s1) + len(q1) == len(y)
    assert all(np.sum(y[s1] == c) == 2 for c in range(3))
    with pytest.raises(ValueError, match="no query"):
        split_support_queries(y, 6, np.random.default_rng(0))


def test_pairs_are_unique_balanced_seeded():
    y = np.repeat(np.arange(5), 10)
    pairs = verification_pairs(y, 300, np.random.default_rng(1))
    assert len(pairs) == 300
    assert len({(i, j) for i, j, _ in pairs}) == 300 and np.all(pairs[:, 0] < pairs[:, 1])
    assert pairs[:, 2].sum() == 150
    assert np.all((y[pairs[:, 0]] == y[pairs[:, 1]]) == pairs[:, 2].astype(bool))
    assert np.array_equal(pairs, verification_pairs(y, 300, np.random.default_rng(1)))


def test_pairs_cap_at_what_exists():
    y = np.array([0, 0, 1])
    pairs = verification_pairs(y, 100, np.random.default_rng(0))
    assert sorted(map(tuple, pairs[:, :2].tolist())) == [(0, 1), (0, 2), (1, 2)]


# -- format 2: open set, removal, the file's checks ----------------------------------------------


def test_rejection_threshold_by_hand():
    # two models on a circle; fingerprints are unit vectors at these angles (degrees)
    def unit(*degrees):
        r = np.radians(degrees)
        return np.stack([np.cos(r), np.sin(r)], axis=1)

    a, b = unit(0, 10, 20), unit(90, 100)
    report = calibrate_rejection([a, b], far=0.2)
    # impostors: a's images against b's entry (at 95 deg), b's against a's (at 10 deg)
    impostor = np.cos(np.radians([95, 85, 75, 80, 90]))
    # floor(0.2 * 5) = 1: the threshold is the second-highest impostor score, so 1 of 5 exceeds it
    assert report["threshold"] == pytest.approx(np.sort(impostor)[::-1][1])
    assert report["far_measured"] == pytest.approx(0.2) and report["impostor_images"] == 5
    # leave-one-out: a's images vs the mean of the other two (at 15, 10, 5 deg away), b's at 10 deg
    genuine = np.cos(np.radians([15, 0, 15, 10, 10]))
    assert report["known_images"] == 5
    assert report["known_accepted"] == pytest.approx(np.mean(genuine > report["threshold"]))
    assert calibrate_rejection([a], 0.05)["threshold"] is None
    assert "two images" in calibrate_rejection([a[:1], b[:1]], 0.05)["reason"]


def _gallery(rng, n_models=4, k=6, dim=16):
    x, y = _clusters(rng, n_models, k, dim)
    g = Gallery(extractor_id="ext-1", extractor={"name": "toy"})
    for c in range(n_models):
        g.enrol(f"m{c}", x[y == c], [f"h{c}-{i}" for i in range(k)])
    return g, x, y


def test_unknown_queries_are_rejected_and_known_ones_kept():
    rng = np.random.default_rng(3)
    g, x, y = _gallery(rng)
    assert g.threshold is not None and g.calibration["far_target"] == 0.05
    known = g.centroids[2][None] + 0.01 * rng.normal(size=(1, 16))
    # a stranger orthogonal to every entry: similarity 0 to all, below this gallery's threshold
    basis, _ = np.linalg.qr(g.centroids.T)
    stranger = rng.normal(size=(1, 16))
    stranger -= (stranger @ basis) @ basis.T
    assert g.threshold > 0.05
    answers = g.attribute(np.vstack([known, stranger]), top=2)
    assert answers[0].decision == "m2" and len(answers[0].candidates) == 2
    assert answers[0].margin == pytest.approx(answers[0].candidates[0][1] - answers[0].candidates[1][1])
    assert answers[1].decision == UNKNOWN and abs(answers[1].candidates[0][1]) < 1e-9
    assert g.attribute(stranger, threshold=None)[0].decision != UNKNOWN
    assert g.attribute(known, threshold=1.0)[0].decision == UNKNOWN
    with pytest.raises(GalleryError, match=r"\[-1, 1\]"):
        g.attribute(known, threshold=3.0)


def test_adding_and_removing_models_recalibrates():
    rng = np.random.default_rng(4)
    g, x, y = _gallery(rng, n_models=3)
    before = dict(g.calibration)
    g.enrol("m3", rng.normal(size=(5, 16)))
    assert g.calibration["impostor_images"] == before["impostor_images"] + 5 and g.names[-1] == "m3"
    g.remove("m3")
    assert g.calibration == before and g.names == ["m0", "m1", "m2"]
    g.remove("m1")
    g.remove("m2")
    assert g.threshold is None and "two enrolled models" in g.calibration["reason"]
    with pytest.raises(GalleryError, match="no calibrated rejection threshold"):
        g.attribute(x[:1])
    with pytest.raises(KeyError, match="not enrolled"):
        g.remove("m1")


def test_gallery_file_keeps_everything_and_refuses_damage(tmp_path):
    rng = np.random.default_rng(5)
    g, x, y = _gallery(rng)
    path = tmp_path / "g.gallery"
    g.save(path)
    again = Gallery.load(path)
    assert again.names == g.names and again.shots == g.shots and again.hashes("m1") == g.hashes("m1")
    assert again.calibration == g.calibration and again.extractor == {"name": "toy"}
    np.testing.assert_array_equal(again.scores(x), g.scores(x))
    again.check_extractor("ext-1")
    with pytest.raises(GalleryError, match="enrolled with extractor"):
        again.check_extractor("ext-2")
    with pytest.raises(GalleryError, match="dimension"):
        again.scores(np.ones((1, 5)))

    def rewrite(name, change):
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays.pop("meta")))
        change(meta, arrays)
        out = tmp_path / name
        with open(out, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
        return out

    cases = [
        ("newer", lambda m, a: m.update(format=3), "Upgrade zsattr"),
        ("v1", lambda m, a: m.update(format=1), "Re-enrol"),
        ("names", lambda m, a: m["names"].append("extra"), "do not match the stored arrays"),
        ("shots", lambda m, a: m["shots"].__setitem__(0, 99), "do not match the stored arrays"),
        ("dup", lambda m, a: m["names"].__setitem__(1, m["names"][0]), "do not match the stored arrays"),
        ("extra", lambda m, a: a.update(f0009=np.zeros((1, 16))), "do not match the stored arrays"),
    ]
    for name, change, message in cases:
        with pytest.raises(GalleryError, match=message):
            Gallery.load(rewrite(name, change))
    (tmp_path / "cut").write_bytes(path.read_bytes()[:200])
    with pytest.raises(GalleryError, match="not a readable gallery"):
        Gallery.load(tmp_path / "cut")
    with pytest.raises(GalleryError, match="does not exist"):
        Gallery.load(tmp_path / "nothing")


def test_verification_threshold_from_the_enrolment_images():
    from zsattr.attribution.gallery import calibrate_verification

    rng = np.random.default_rng(6)
    # two tight models far apart: same-model pairs score ~1, different-model pairs ~0
    a = l2([[1, 0, 0]] + 0.01 * rng.normal(size=(5, 3)))
    b = l2([[0, 1, 0]] + 0.01 * rng.normal(size=(5, 3)))
    report = calibrate_verification([a, b])
    assert report["pairs"] == 2 * 2 * 10 and report["accuracy"] == 1.0 and report["eer"] == 0.0
    assert 0.1 < report["threshold"] < 0.9
    assert calibrate_verification([a[:1], b[:1]])["threshold"] is None
    g = Gallery()
    g.enrol("a", a)
    g.enrol("b", b)
    assert g.calibration["verification"] == report


def l2(x):
    x = np.asarray(x, float)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# -- exact behaviour: normalisation, the calibration reports, decisions, messages, the file ------


def unit(*degrees):
    """Unit fingerprints in the plane at these angles (degrees)."""
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1)


def test_l2_normalise_scales_the_last_axis_to_unit_length_in_float64():
    from zsattr.attribution.gallery import l2_normalise

    np.testing.assert_allclose(l2_normalise([3, 4]), [0.6, 0.8])  # one vector, not a batch
    out = l2_normalise(np.array([[3, 4], [0, 0]], np.float32))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [[0.6, 0.8], [0, 0]])


def test_rejection_report_values_when_leave_one_out_and_top1_matter():
    # a's two images lie 80 deg apart, so without itself each scores only cos 80 against a's entry,
    # and a's 80-deg image is closer to b's entry (100 deg) than to a's: identified wrongly
    a, b = unit(0, 80), unit(90, 100, 110)
    report = calibrate_rejection([a, b], far=0.2)
    # impostors: a's images vs b (100 deg): cos 100, cos 20; b's vs a (40 deg): cos 50, 60, 70
    assert report["threshold"] == pytest.approx(np.cos(np.radians(50)))  # the second highest
    assert report == {"threshold": report["threshold"], "far_target": 0.2, "far_measured": 0.2,
                      "known_accepted": 0.6, "loo_top1": 0.6, "impostor_images": 5, "known_images": 5,
                      "reason": ""}
    # far 0.9: floor(0.9 * 5) = 4, the lowest impostor score; the other four exceed it
    loose = calibrate_rejection([a, b], far=0.9)
    assert loose["threshold"] == pytest.approx(np.cos(np.radians(100)))
    assert (loose["far_measured"], loose["known_accepted"], loose["loo_top1"]) == (0.8, 1.0, 0.8)


def test_rejection_calibration_counts_a_score_equal_to_the_threshold_as_rejected():
    # as in `attribute` ("at or below the threshold is unknown"): b's image e0 scores exactly 1 against
    # a's entry, so the threshold is 1.0, and a's images (1.0 against their own entry) are not kept
    e = np.eye(2)
    report = calibrate_rejection([e[[0, 0]], e[[0, 1]]], far=0.05)
    assert report["threshold"] == 1.0
    assert (report["far_measured"], report["known_accepted"], report["loo_top1"]) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("far", [0.0, 1.0, 1.5, -0.1])
def test_rejection_refuses_a_false_accept_rate_outside_the_open_unit_interval(far):
    with pytest.raises(GalleryError, match=r"false-accept rate must be in \(0, 1\), got"):
        calibrate_rejection([unit(0, 10), unit(90, 100)], far)


def test_rejection_report_when_the_gallery_cannot_calibrate_says_why():
    blank = {"threshold": None, "far_target": 0.05, "far_measured": None, "known_accepted": None,
             "loo_top1": None, "impostor_images": 0, "known_images": 0}
    assert calibrate_rejection([unit(0, 10)], 0.05) == {**blank, "reason": "needs at least two enrolled models"}
    assert calibrate_rejection([unit(0), unit(90)], 0.05) == {
        **blank, "reason": "needs a model enrolled from at least two images"}


def test_verification_calibration_pairs_each_models_own_images_whatever_their_sizes():
    from zsattr.attribution.gallery import calibrate_verification

    rng = np.random.default_rng(6)
    # three tight models of 2, 3 and 4 images: 1 + 3 + 6 same-model pairs and as many others
    blocks = [l2(np.eye(3)[i] + 0.01 * rng.normal(size=(n, 3))) for i, n in enumerate((2, 3, 4))]
    report = calibrate_verification(blocks)
    assert report["pairs"] == 20 and report["accuracy"] == 1.0 and report["eer"] == 0.0
    assert 0.1 < report["threshold"] < 0.9 and report["reason"] == ""
    # two images per model is enough
    small = calibrate_verification([blocks[0], blocks[1][:2]])
    assert small["pairs"] == 4 and small["accuracy"] == 1.0
    # a cap that does not bind changes nothing; one that binds keeps that many same-model pairs
    assert calibrate_verification(blocks, max_pairs=10) == report
    capped = calibrate_verification(blocks, max_pairs=3)
    assert capped["pairs"] == 6 and capped["accuracy"] == 1.0 and 0.1 < capped["threshold"] < 0.9
    assert calibrate_verification([blocks[0][:1], blocks[1][:1]]) == {
        "threshold": None, "accuracy": None, "eer": None, "pairs": 0,
        "reason": "needs two models and a model with two images"}


def test_attribution_row_lists_the_decision_and_every_candidate():
    row = Attribution([("a", 0.9), ("b", 0.5)], 0.4, "a", 0.3).as_row()
    assert row == {"decision": "a", "similarity": 0.9, "margin": 0.4, "threshold": 0.3,
                   "top1": "a", "top1_similarity": 0.9, "top2": "b", "top2_similarity": 0.5}


def test_attribute_decides_at_the_threshold_and_reports_margin_and_threshold():
    e = np.eye(3)
    g = Gallery.from_enrolment({"a": e[:1], "b": e[1:2], "c": e[2:], "d": l2([[1, 1, 1]])}, calibrate=False)
    (exact,) = g.attribute(e[:1], threshold=1.0)  # scores exactly 1.0: at the threshold is unknown
    assert exact.decision == UNKNOWN and exact.threshold == 1.0
    (kept,) = g.attribute(e[:1], threshold=0.5)
    assert kept.decision == "a" and kept.threshold == 0.5
    assert [n for n, _ in kept.candidates] == ["a", "d", "b"]  # three by default
    assert kept.margin == pytest.approx(1 - 1 / np.sqrt(3))
    (never,) = g.attribute(-e[:1], threshold="none")
    # scores -1, 0, 0, -1/sqrt(3): b and c tie, and b was enrolled first
    assert never.decision == "b" and never.threshold is None
    assert g.identify(e[:1]) == [[("a", 1.0)]]  # one candidate by default
    two = Gallery.from_enrolment({"a": e[:1], "b": e[1:2]}, calibrate=False)
    assert two.attribute(unit(30) @ np.eye(2, 3), threshold=None)[0].margin == pytest.approx(
        np.cos(np.radians(30)) - np.sin(np.radians(30)))
    one = Gallery.from_enrolment({"a": e[:1]}, calibrate=False)
    (alone,) = one.attribute(e[:1], threshold=None)
    assert alone.decision == "a" and np.isnan(alone.margin)  # no runner-up


def test_tied_models_are_ranked_in_enrolment_order():
    # twenty models enrolled from three fingerprints (e.g. one model under several names): equal
    # scores keep the enrolment order, in identify and attribute alike
    e = np.eye(3)
    directions = [(7 * i) % 3 for i in range(20)]
    g = Gallery.from_enrolment({f"m{i:02d}": e[d:d + 1] for i, d in enumerate(directions)}, calibrate=False)
    query = np.array([[1.0, 0.5, 0.0]])
    expected = [f"m{i:02d}" for d in (0, 1, 2) for i in range(20) if directions[i] == d]
    assert [n for n, _ in g.identify(query, top=20)[0]] == expected
    assert [n for n, _ in g.attribute(query, top=20, threshold=None)[0].candidates] == expected


def test_threshold_values_and_why_auto_is_unavailable():
    g = Gallery.from_enrolment({"a": unit(0, 10), "b": unit(90, 100)}, calibrate=False)
    assert g.resolve_threshold(-1.0) == -1.0 and g.resolve_threshold("0.25") == 0.25
    assert g.resolve_threshold("none") is None and g.resolve_threshold(None) is None
    for bad in (-1.5, 1.5):
        with pytest.raises(GalleryError, match=r"threshold lies in \[-1, 1\], got"):
            g.resolve_threshold(bad)
    with pytest.raises(GalleryError, match="^no calibrated rejection threshold: the gallery is empty; pass a value"):
        Gallery().resolve_threshold("auto")
    one = Gallery()
    one.enrol("a", unit(0, 10))
    with pytest.raises(GalleryError, match="threshold: needs at least two enrolled models; pass a value or 'none'"):
        one.attribute(unit(5))


def test_enrolment_refuses_bad_input_and_says_why():
    g = Gallery()
    for name in ("", 123, None):
        with pytest.raises(GalleryError, match="a model needs a non-empty name, got"):
            g.enrol(name, unit(0))
    with pytest.raises(GalleryError, match="no fingerprints to enrol 'a' from"):
        g.enrol("a", np.zeros((0, 2)))
    with pytest.raises(GalleryError, match="the fingerprints of 'a' are not all finite"):
        g.enrol("a", [[1.0, np.nan]])
    with pytest.raises(GalleryError, match="1 image hashes for 2 fingerprints of 'a'"):
        g.enrol("a", unit(0, 10), ["h0"])
    assert g.names == []
    g.enrol("a", [[3, 4], [0, 2]])  # integers are fine; no hashes given: empty ones
    assert g.hashes("a") == ["", ""]
    stored = g.fingerprints("a")
    np.testing.assert_allclose(stored, [[0.6, 0.8], [0, 1]])
    stored[:] = 0  # a copy: the gallery is unchanged
    np.testing.assert_allclose(g.centroids, [[0.3, 0.9]])
    with pytest.raises(KeyError, match="'b' is not enrolled; enrolled: \\['a'\\]"):
        g.fingerprints("b")


def test_enrolling_many_at_once_calibrates_like_one_at_a_time_and_far_can_change():
    a, b, c = unit(0, 10, 20), unit(90, 100), unit(200, 210)
    many = Gallery.from_enrolment({"a": a, "b": b, "c": c})
    single = Gallery()
    for name, f in (("a", a), ("b", b), ("c", c)):
        single.enrol(name, f)
    assert many.calibration == single.calibration and many.threshold is not None
    report = many.recalibrate(far=0.3)
    assert many.far == 0.3 and report["far_target"] == 0.3 and many.calibration is report
    assert report["threshold"] == pytest.approx(calibrate_rejection([a, b, c], 0.3)["threshold"])
    for name in ("a", "b", "c"):
        many.remove(name)
    assert many.calibration == {} and many.threshold is None


def test_extractor_mismatch_names_both_extractors():
    g = Gallery(extractor_id="0123456789abcdef", extractor={"name": "toy"})
    g.check_extractor("0123456789abcdef")
    message = ("this gallery was enrolled with extractor 0123456789ab (toy); the one given is fedcba987654. "
               "Fingerprints of different extractors cannot be compared: use the gallery's extractor "
               "or enrol a new gallery.")
    with pytest.raises(GalleryError) as error:
        g.check_extractor("fedcba9876543210")
    assert str(error.value) == message
    with pytest.raises(GalleryError, match=r"extractor 0123456789ab \(another extractor\);"):
        Gallery(extractor_id="0123456789abcdef").check_extractor("x")
    Gallery().check_extractor("anything")  # a gallery without an extractor id accepts any


def _rewrite(path, out, change):
    """Copy the gallery file at `path` to `out`, with `change(meta, arrays)` applied."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    change(meta, arrays)
    with open(out, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
    return out


def test_gallery_file_keeps_crop_and_far_and_fills_in_missing_metadata(tmp_path):
    g = Gallery.from_enrolment({"a": unit(0, 10), "b": unit(90, 100)}, crop="none", extractor_id="x1")
    g.recalibrate(far=0.3)
    g.save(tmp_path / "g.npz")
    again = Gallery.load(tmp_path / "g.npz")
    assert (again.crop, again.far, again.extractor_id, again.calibration) == ("none", 0.3, "x1", g.calibration)

    def strip(meta, arrays):
        for key in ("extractor_id", "extractor", "crop", "far", "calibration"):
            del meta[key]
        arrays["f0000"] = arrays["f0000"].astype(np.float32)

    old = Gallery.load(_rewrite(tmp_path / "g.npz", tmp_path / "old.npz", strip))
    assert (old.extractor_id, old.extractor, old.crop, old.far, old.calibration) == ("", {}, "centre", 0.05, {})
    assert old.fingerprints("a").dtype == np.float64
    old.check_extractor("any")


def test_gallery_file_refuses_every_mismatch_between_metadata_and_arrays(tmp_path):
    g = Gallery.from_enrolment({"a": unit(0, 10), "b": unit(90, 100, 110)}, calibrate=False)
    path = tmp_path / "g.npz"
    g.save(path)
    cases = {
        "hashes": lambda m, a: m["hashes"].append([]),  # one hash list too many
        "hashcount": lambda m, a: m["hashes"][1].pop(),  # b has 3 images but 2 hashes
        "rank": lambda m, a: a.update(f0000=np.zeros(2)),  # a's block is one vector, not (2, D)
        "width": lambda m, a: a.update(f0001=np.zeros((3, 5))),  # b's fingerprints are 5-dimensional
    }
    damaged = re.escape("do not match the stored arrays; the file is damaged. Re-create the gallery.") + "$"
    for name, change in cases.items():
        with pytest.raises(GalleryError, match=damaged):
            Gallery.load(_rewrite(path, tmp_path / name, change))
    with pytest.raises(GalleryError, match=re.escape("(create one with `zsattr gallery create`)")):
        Gallery.load(tmp_path / "nothing")
    newer = _rewrite(path, tmp_path / "newer", lambda m, a: m.update(format=3))
    with pytest.raises(GalleryError, match=re.escape(f"{newer} is a gallery file of format 3; this version")):
        Gallery.load(newer)
    with pytest.raises(GalleryError, match=r"reads format 2\. Re-enrol the models with this version\.$"):
        Gallery.load(_rewrite(path, tmp_path / "older", lambda m, a: m.update(format=1)))


def test_scoring_an_empty_gallery_says_to_enrol_first():
    with pytest.raises(ValueError, match="^the gallery is empty: enrol at least one model first$"):
        Gallery().scores(unit(0))


def test_verification_pairs_need_two_classes_and_a_class_with_two_samples():
    for labels in ([0, 0, 0], [0, 1]):
        with pytest.raises(ValueError, match="^verification pairs need at least two classes and one class with 2"):
            verification_pairs(np.array(labels), 4, np.random.default_rng(0))
    none = verification_pairs(np.array([0, 0, 1]), 0, np.random.default_rng(0))
    assert none.shape == (0, 3) and none.dtype == np.int64
