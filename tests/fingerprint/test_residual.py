import numpy as np
import torch

from zsattr.fingerprint import residual


def test_smooth_gradient_leaves_almost_no_residual():
    y, x = np.mgrid[:32, :32] / 31.0
    img = torch.from_numpy(np.stack([x, y, (x + y) / 2])[None]).float()
    res = residual.HighPass(3)(img)
    assert res[..., 1:-1, 1:-1].abs().max() < 1e-6
    assert res.abs().mean() < 0.01 * img.abs().mean()
    noisy = img + 0.05 * torch.randn_like(img)
    assert residual.HighPass(3)(noisy).std() > 0.03


def test_highpass_residual_agrees_on_arrays_and_tensors_away_from_the_border():
    """Inside the image both paths are the same box filter; at the border they differ (scipy's
    "reflect" repeats the edge pixel, torch's does not), so only the interior is compared."""
    images = np.random.default_rng(0).random((2, 12, 12, 3)).astype(np.float32)
    from_array = residual.highpass_residual(images)
    from_tensor = residual.highpass_residual(torch.from_numpy(images).permute(0, 3, 1, 2))
    np.testing.assert_allclose(from_tensor.permute(0, 2, 3, 1).numpy()[:, 1:-1, 1:-1],
                               from_array[:, 1:-1, 1:-1], atol=1e-6)
