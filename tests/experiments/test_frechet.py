import re

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


def test_two_vectors_are_enough_for_a_covariance_and_one_is_not():
    mu, cov = gaussian_stats([[0.0], [2.0]])  # the smallest valid input: N = 2 > D = 1
    np.testing.assert_array_equal(mu, [1.0])
    np.testing.assert_array_equal(cov, [[2.0]])  # unbiased: ((0-1)^2 + (2-1)^2) / (2-1)
    with pytest.raises(ValueError, match="^need at least 2 vectors to estimate a covariance$"):
        gaussian_stats([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"expected an \(N, D\) array of vectors, got shape \(3,\)"):
        gaussian_stats([1.0, 2.0, 3.0])


def test_as_many_vectors_as_dimensions_is_still_singular():
    """N == D: the centred vectors span at most N - 1 dimensions, and the message says so."""
    x = np.random.default_rng(5).normal(size=(3, 3))
    message = ("3 vectors of dimension 3 give a singular covariance (rank <= 2); "
               "pass shrinkage='ledoit-wolf' (or a float in [0, 1]) or use fewer dimensions")
    with pytest.raises(RankDeficientCovarianceError, match=re.escape(message)):
        gaussian_stats(x)
    assert gaussian_stats(np.random.default_rng(5).normal(size=(4, 3)))[1].shape == (3, 3)


def test_float32_vectors_give_float64_statistics():
    x32 = np.random.default_rng(6).normal(size=(40, 4)).astype(np.float32)
    mu, cov = gaussian_stats(x32)
    assert mu.dtype == np.float64 and cov.dtype == np.float64
    np.testing.assert_array_equal(mu, x32.astype(np.float64).mean(axis=0))


def test_shrinkage_endpoints_are_the_sample_covariance_and_a_scaled_identity():
    x = np.random.default_rng(7).normal(size=(4, 6)) * np.arange(1, 7)  # N < D is fine with shrinkage
    sample = np.cov(x, rowvar=False)
    for none in (0.0, 0):
        np.testing.assert_allclose(gaussian_stats(x, shrinkage=none)[1], sample, rtol=1e-15)
    for full in (1.0, 1):
        np.testing.assert_allclose(gaussian_stats(x, shrinkage=full)[1], np.trace(sample) / 6 * np.eye(6),
                                   rtol=1e-15)
    for bad in (-0.1, 1.5, "oas"):
        with pytest.raises(ValueError, match="shrinkage must be None, 'ledoit-wolf' or a float in"):
            gaussian_stats(x, shrinkage=bad)


def test_float32_inputs_are_computed_in_float64():
    rng = np.random.default_rng(9)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = _random_spd(rng, 6), _random_spd(rng, 6, 3.0)
    as32 = [a.astype(np.float32) for a in (mu1, s1, mu2, s2)]
    as64 = [a.astype(np.float64) for a in as32]  # the same numbers, exactly
    assert frechet_distance(*as32) == pytest.approx(frechet_distance(*as64), rel=1e-13)


def test_errors_name_the_offending_covariance():
    ok, bad_psd = np.eye(2), np.diag([1.0, -1.0])
    with pytest.raises(ValueError, match=r"sigma1 has shape \(3, 3\), expected \(2, 2\)"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), ok)
    with pytest.raises(ValueError, match="sigma2 is not positive semi-definite"):
        frechet_distance(np.zeros(2), ok, np.zeros(2), bad_psd)
    with pytest.raises(ValueError, match="sigma1 has non-finite entries"):
        frechet_distance(np.zeros(2), np.diag([1.0, np.nan]), np.zeros(2), ok)
    with pytest.raises(ValueError, match=r"mean shapes differ: \(2,\) vs \(3,\)"):
        frechet_distance(np.zeros(2), ok, np.zeros(3), ok)
    with pytest.raises(RankDeficientCovarianceError, match="sigma2 is rank-deficient"):
        frechet_distance(np.zeros(2), ok, np.zeros(2), np.diag([1.0, 0.0]))


def test_a_zero_covariance_is_refused_even_when_singular_ones_are_allowed():
    for zero_or_negative in (np.zeros((2, 2)), -np.eye(2)):
        with pytest.raises(RankDeficientCovarianceError, match="sigma1 is zero or negative definite"):
            frechet_distance(np.zeros(2), zero_or_negative, np.zeros(2), np.eye(2), allow_singular=True)


def test_negative_eigenvalues_down_to_1e_8_of_the_largest_count_as_rounding():
    """The tolerance is relative: -1e-8 x the largest eigenvalue passes (the boundary), less fails."""
    largest = 4.0
    rounding = np.diag([largest, -1e-8 * largest])
    value = frechet_distance(np.zeros(2), rounding, np.zeros(2), np.diag([largest, 0.0]), allow_singular=True)
    assert value == pytest.approx(0.0, abs=1e-12)  # the negative eigenvalue is clipped to 0
    with pytest.raises(ValueError, match="not positive semi-definite"):
        frechet_distance(np.zeros(2), np.diag([largest, -2e-8 * largest]), np.zeros(2), np.eye(2),
                         allow_singular=True)


def test_rtol_bounds_the_eigenvalue_ratio_inclusively_and_is_scale_free():
    mu = np.zeros(2)
    message = ("sigma1 is rank-deficient (condition number > 1e+02); estimate it with "
               "gaussian_stats(..., shrinkage='ledoit-wolf') or pass allow_singular=True")
    for scale in (1.0, 1000.0):
        with pytest.raises(RankDeficientCovarianceError, match=re.escape(message)):
            frechet_distance(mu, scale * np.diag([1.0, 0.01]), mu, np.eye(2), rtol=0.01)
        value = frechet_distance(mu, scale * np.diag([1.0, 0.04]), mu, np.eye(2), rtol=0.01)
        expected = (np.sqrt(scale) - 1) ** 2 + (np.sqrt(0.04 * scale) - 1) ** 2
        assert value == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(mu, np.diag([1.0, 0.01]), mu, np.eye(2), allow_singular=True, rtol=0.01) == \
        pytest.approx(0.81, rel=1e-12)
