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
    assert table.loc["full", "ffd_vs_full"] == 0.0
    assert table["n_compared"].max() == table.loc[table["n_compared"] > 0, "n_compared"].min()
    assert table.loc["untrained (random weights)", "ffd_vs_full_lo"] > 0
    assert "w/o seed" in table.index and table.loc["w/o seed", "n_models"] == len(codes)
