import json

import numpy as np
import pytest

from zsattr.attribution.gallery import (
    UNKNOWN,
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
