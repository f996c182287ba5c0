import numpy as np
import pytest
import torch

from zsattr.images import perturb


@pytest.fixture(scope="module")
def images():
    gen = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(4, 3, 8, 8, generator=gen), size=32, mode="bilinear")
    return (smooth + 0.1 * torch.rand(4, 3, 32, 32, generator=gen)).clamp(0, 1)


def _highfreq_energy(x):
    f = torch.fft.fftshift(torch.fft.fft2(x - x.mean(dim=(-2, -1), keepdim=True)).abs() ** 2, dim=(-2, -1))
    h = x.shape[-1]
    yy, xx = torch.meshgrid(torch.arange(h) - h // 2, torch.arange(h) - h // 2, indexing="ij")
    return float(f[..., (yy**2 + xx**2) > (h // 4) ** 2].sum())


def test_registry_order_shape_range_determinism(images):
    assert list(perturb.PERTURBATIONS) == ["none", "jpeg95", "jpeg75", "jpeg50", "resize0.75", "resize0.5",
                                           "blur0.5", "blur1.0"]
    assert torch.equal(perturb.apply("none", images), images)
    for name in perturb.PERTURBATIONS:
        out = perturb.apply(name, images)
        assert out.shape == images.shape and out.dtype == images.dtype
        assert out.min() >= 0 and out.max() <= 1
        assert torch.equal(out, perturb.apply(name, images)), name
        if name != "none":
            assert not torch.equal(out, images), name
    with pytest.raises(KeyError, match="unknown perturbation"):
        perturb.apply("jpeg10", images)
    with pytest.raises(ValueError, match="expected images"):
        perturb.apply("none", images[0])


def test_jpeg_error_grows_as_quality_falls(images):
    errors = [float((perturb.jpeg(images, q) - images).abs().mean()) for q in (95, 75, 50, 20)]
    assert errors == sorted(errors) and errors[-1] > 2 * errors[0]


def test_resize_and_blur(images):
    assert torch.allclose(perturb.resize_restore(images, 1.0), images, atol=1e-6)
    r75, r50 = (float((perturb.resize_restore(images, s) - images).abs().mean()) for s in (0.75, 0.5))
    assert 0 < r75 < r50
    noise = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))  # energy at all frequencies
    energy = [_highfreq_energy(perturb.gaussian_blur(noise, s)) for s in (0.0, 0.5, 1.0)]
    assert energy[0] == pytest.approx(_highfreq_energy(noise)) and energy[0] > energy[1] > energy[2]
    assert energy[2] < 0.1 * energy[0]  # |H(f)|^2 = exp(-4 pi^2 sigma^2 f^2) < 0.09 beyond f = 1/4
    # a constant image stays constant (the kernel sums to one; reflect padding adds no border)
    flat = torch.full((1, 3, 16, 16), 0.3)
    np.testing.assert_allclose(perturb.gaussian_blur(flat, 1.0).numpy(), 0.3, atol=1e-6)
