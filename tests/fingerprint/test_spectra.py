import numpy as np
import torch

from zsattr.fingerprint import chain, spectra


def test_periodic_pattern_peaks_at_its_frequency():
    n, period = 32, 4
    y, x = np.mgrid[:n, :n]
    img = np.cos(2 * np.pi * x / period)[None, None].repeat(3, 1)
    mag = chain.dft_magnitude(torch.from_numpy(img)).numpy()[0, 0]
    peak = np.unravel_index(np.argmax(mag), mag.shape)
    assert peak in {(0, n // period), (0, n - n // period)}
    prof = spectra.radial_spectrum(img, log=False)
    assert np.argmax(prof) == n // period


def test_nearest_upsampling_replicates_the_spectrum():
    rng = np.random.default_rng(0)
    small = rng.random((1, 1, 16, 16))
    up = small.repeat(2, axis=2).repeat(2, axis=3)
    mag = np.abs(np.fft.fft2(up[0, 0]))
    # nearest = zero-insertion (spectrum tiled 2x2) times the 2x2 box's response: the copy at
    # (u + 16, v) has the magnitude of (u, v) scaled by |H(u+16)| / |H(u)|
    h = np.abs(np.fft.fft(np.r_[1.0, 1.0], 32))
    expected = np.abs(np.fft.fft2(small[0, 0]))
    tiled = np.tile(expected, (2, 2)) * h[:, None] * h[None, :]
    assert np.allclose(mag, tiled, atol=1e-9)


def test_radially_symmetric_pattern_integrates_to_its_profile():
    h = w = 32
    bins = spectra.radial_bins(h, w)
    g = np.arange(17, dtype=float) ** 2 + 1
    power = np.where(bins >= 0, g[np.clip(bins, 0, None)], 123.0)  # corners: ignored
    assert np.allclose(spectra.radial_profile(power), g)
    # a Gaussian blob's power spectrum is a Gaussian in radius (closed form up to binning)
    sigma = 2.0
    y, x = np.mgrid[:h, :w]
    blob = np.exp(-((y - 16.0) ** 2 + (x - 16.0) ** 2) / (2 * sigma**2))
    prof = spectra.radial_profile(np.abs(np.fft.fft2(blob)) ** 2)
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    r = np.hypot(fy, fx)
    closed = (2 * np.pi * sigma**2) ** 2 * np.exp(-4 * np.pi**2 * sigma**2 * r**2)
    expected = [closed[np.abs(r * 32 - k) < 0.5].mean() for k in range(8)]
    assert np.allclose(prof[:8], expected, rtol=0.02)
    assert np.all(np.diff(prof) < 0)


def test_radial_bins_count_and_shape():
    assert spectra.radial_profile(np.ones((2, 3, 16, 24))).shape == (2, 3, 9)
    assert spectra.radial_bins(8, 8)[0, 0] == 0 and spectra.radial_bins(8, 8).max() == 4


def test_log_magnitude_spectrum_is_centred():
    pattern = np.cos(2 * np.pi * np.arange(16) / 4)[None, :].repeat(16, 0)
    spec = spectra.log_magnitude_spectrum(np.repeat(pattern[None, :, :, None], 3, axis=3))
    assert np.unravel_index(np.argmax(spec), spec.shape) in {(8, 12), (8, 4)}
