import numpy as np
import pytest
import torch

from zsattr.experiments import ffd
from zsattr.fingerprint.residual import HighPass
from zsattr.synthesis import all_codes


def test_zero_sum_basis_is_orthonormal_and_orthogonal_to_ones():
    b = ffd._zero_sum_basis(7)
    assert b.shape == (7, 6)
    np.testing.assert_allclose(b.T @ b, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(np.ones(7) @ b, 0, atol=1e-12)


def test_ffd_is_zero_for_identical_sets_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(16, 10))
    real -= real.mean(1, keepdims=True)
    same = ffd.ffd(real, real)
    shifted = real + np.linspace(-1, 1, 10)  # still zero-sum: a change of spectral shape
    assert same == pytest.approx(0, abs=1e-8)
    assert ffd.ffd(real, shifted) > 1.0


def test_coverage_known_answers():
    real = np.array([[0.0, 0], [1, 0], [0, 1], [10, 10], [11, 10], [10, 11]])
    near_both = np.array([[0.2, 0.2], [10.2, 10.2]])
    near_one = np.array([[0.2, 0.2]])
    assert ffd.coverage(real, near_both, k=2) == 1.0
    assert ffd.coverage(real, near_one, k=2) == 0.5
    assert ffd.coverage(real, np.array([[100.0, 100]]), k=2) == 0.0


def test_spectrum_vector_sees_nearest_upsampling_as_low_pass():
    g = torch.Generator().manual_seed(0)
    white = torch.rand(8, 3, 32, 32, generator=g)
    upsampled = torch.nn.functional.interpolate(torch.rand(8, 3, 16, 16, generator=g), scale_factor=2)
    residual = HighPass(3)
    v_white, v_up = ffd.spectrum_vector(white, residual), ffd.spectrum_vector(upsampled, residual)
    assert v_white.shape == (16,) and abs(v_white.sum()) < 1e-9
    # nearest upsampling puts a zero of its frequency response at Nyquist
    assert v_up[-1] - v_up[len(v_up) // 2] < v_white[-1] - v_white[len(v_white) // 2] - 5


def test_table_compares_rows_at_equal_size_with_paired_differences():
    rng = np.random.default_rng(1)
    codes = all_codes()[::12]  # 24 codes spread over the space
    entries = [(str(c), s) for c in codes for s in (0, 1)]
    vectors = {"entries": entries, "real": rng.normal(size=(12, 8)),
               "trained": rng.normal(size=(len(entries), 8)),
               "untrained": rng.normal(size=(len(entries), 8)) + np.linspace(-3, 3, 8)}  # a change of shape
    table = ffd.ffd_table(vectors, n_draws=10, k=3, seed=0, min_models=4)
    assert table["n_compared"].max() == table.loc[table["n_compared"] > 0, "n_compared"].min()
    assert table.loc["untrained (random weights)", "ffd_vs_full_lo"] > 0
    assert "w/o seed" in table.index and table.loc["w/o seed", "n_models"] == len(codes)


def test_ffd_vs_full_is_the_paired_difference_a_known_shift_makes():
    """Real and trained vectors vary in the first 5 bins only; the untrained row is the trained one
    shifted by delta in the last 3 bins. Compared at the full size (every row's own models, so the
    same covariance) against the same real draw, the shift adds exactly |delta|^2 to FFD in every
    draw: |mu_r - mu_t - delta|^2 = |mu_r - mu_t|^2 + |delta|^2 as delta is orthogonal to both."""
    rng = np.random.default_rng(2)
    entries = [(str(c), s) for c in all_codes()[::12] for s in (0, 1)]

    def zero_sum_in_first_five(n):
        v = rng.normal(size=(n, 5))
        return np.hstack([v - v.mean(axis=1, keepdims=True), np.zeros((n, 3))])

    delta = np.array([0, 0, 0, 0, 0, 1.0, -2.0, 1.0]) * 0.7
    trained = zero_sum_in_first_five(len(entries))
    vectors = {"entries": entries, "real": zero_sum_in_first_five(12), "trained": trained, "untrained": trained + delta}
    table = ffd.ffd_table(vectors, n_draws=6, k=3, seed=0, min_models=len(entries))  # only full-size rows
    row = table.loc["untrained (random weights)"]
    assert row["n_compared"] == len(entries) == table.loc["full", "n_compared"]
    for column in ("ffd_vs_full", "ffd_vs_full_lo", "ffd_vs_full_hi"):
        assert row[column] == pytest.approx(delta @ delta, rel=1e-9)
    assert row["ffd"] == pytest.approx(table.loc["full", "ffd"] + delta @ delta, rel=1e-9)
    assert ffd.ffd(vectors["real"], vectors["real"] + delta) == pytest.approx(delta @ delta, rel=1e-9)
