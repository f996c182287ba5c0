import numpy as np
import pytest

from zsattr.attribution.gallery import Gallery, split_support_queries, verification_pairs


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
