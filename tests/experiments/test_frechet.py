import numpy as np
import pytest
from scipy import linalg
from sklearn.covariance import ledoit_wolf, shrunk_covariance

from zsattr.experiments.frechet import RankDeficientCovarianceError, frechet_distance, gaussian_stats


def _random_spd(rng, d, scale=1.0):
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.5 * np.eye(d))


def _scipy_reference(mu1, s1, mu2, s2):
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def test_identical_inputs_give_zero():
    rng = np.random.default_rng(0)
    mu, s = rng.normal(size=6), _random_spd(rng, 6)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)


def test_equal_covariances_give_squared_mean_difference():
    rng = np.random.default_rng(1)
    s = _random_spd(rng, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    assert frechet_distance(mu1, s, mu2, s) == pytest.approx(np.sum((mu1 - mu2) ** 2), rel=1e-9)


def test_diagonal_covariances_match_closed_form():
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, 2.0])
    expected = 5.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_symmetric_nonnegative_rotation_invariant_and_agrees_with_scipy(seed):
    rng = np.random.default_rng(seed)
    d = 8
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d, 2.0)
    value = frechet_distance(mu1, s1, mu2, s2)
    assert value == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-10)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    rotated = frechet_distance(q @ mu1, q @ s1 @ q.T, q @ mu2, q @ s2 @ q.T)
    assert rotated == pytest.approx(value, rel=1e-9)
    assert value == pytest.approx(_scipy_reference(mu1, s1, mu2, s2), rel=1e-7)
    assert isinstance(value, float) and np.isfinite(value)


def test_vectors_give_a_d_by_d_covariance():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 7))
    mu, cov = gaussian_stats(x)
    assert mu.shape == (7,) and cov.shape == (7, 7) and cov.dtype == np.float64
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False))


@pytest.mark.parametrize("n,d", [(6, 10), (40, 5)])
def test_ledoit_wolf_shrinkage_equals_sklearns(n, d):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(n, d)) * np.linspace(0.5, 3, d) + rng.normal(size=d)  # unequal variances
    sk_cov, alpha = ledoit_wolf(x)
    assert abs(alpha - 0.5) > 0.05  # so swapping the two weights would show
    mu, cov = gaussian_stats(x, shrinkage="ledoit-wolf")
    # sklearn shrinks the biased (1/n) covariance; ours shrinks the unbiased one, a factor n/(n-1)
    np.testing.assert_allclose(cov * (n - 1) / n, sk_cov, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(mu, x.mean(axis=0))
    fixed = gaussian_stats(x, shrinkage=0.3)[1]
    np.testing.assert_allclose(fixed, shrunk_covariance(np.cov(x, rowvar=False), 0.3), rtol=1e-12)


def test_rank_deficient_needs_shrinkage():
    rng = np.random.default_rng(4)
    few = rng.normal(size=(5, 20))  # 5 models, 20 radial bins: singular covariance
    with pytest.raises(RankDeficientCovarianceError, match="shrinkage"):
        gaussian_stats(few)
    mu, singular = np.zeros(20), np.cov(few, rowvar=False)
    with pytest.raises(RankDeficientCovarianceError, match="rank-deficient"):
        frechet_distance(mu, singular, mu, np.eye(20))
    mu_a, cov_a = gaussian_stats(few, shrinkage="ledoit-wolf")
    mu_b, cov_b = gaussian_stats(rng.normal(size=(6, 20)), shrinkage=0.3)
    value = frechet_distance(mu_a, cov_a, mu_b, cov_b)
    assert np.isfinite(value) and value > 0
    assert frechet_distance(mu, singular, mu, singular, allow_singular=True) == pytest.approx(0, abs=1e-9)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="positive semi-definite"):
        frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="shrinkage"):
        gaussian_stats(np.zeros((3, 2)) + np.arange(6).reshape(3, 2), shrinkage=2.0)
