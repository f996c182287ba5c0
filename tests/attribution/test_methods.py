import numpy as np
import pytest
import torch

from zsattr.attribution import methods, protocols
from zsattr.extractor.network import FingerprintExtractor
from zsattr.fingerprint import chain, residual


def _generated(n_per_model=12, size=32, seed=0):
    """Three fake 'models': shared random content plus a model-specific periodic trace, the
    kind of spectral peak an upsampling layer leaves."""
    gen = torch.Generator().manual_seed(seed)
    content = torch.nn.functional.interpolate(torch.rand(3 * n_per_model, 3, 8, 8, generator=gen), size=size,
                                              mode="bilinear")
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    traces = [torch.cos(np.pi * xx), torch.cos(np.pi * yy), torch.cos(np.pi * (xx + yy) / 2)]
    labels = np.repeat(np.arange(3), n_per_model)
    images = content * 0.8 + 0.06 * torch.stack([traces[c] for c in labels])[:, None]
    images = images + 0.01 * torch.randn(images.shape, generator=gen)
    return images.clamp(0, 1), labels


def test_spectrum_correlation_is_pearson_and_attributes_periodic_traces():
    images, labels = _generated()
    method = methods.SpectrumCorrelation(chain.InputChain(residual.HighPass(3)), batch_size=7)
    feats = method.features(images)
    assert feats.shape == (len(images), 3 * (32 * 32 - 1)) and method.name == "spectrum_correlation"
    np.testing.assert_allclose(feats.mean(axis=1), 0, atol=1e-9)
    cos = protocols.pair_scores(feats, np.array([[0, 1, 1], [0, 20, 0]]))
    np.testing.assert_allclose(cos, [np.corrcoef(feats[0], feats[1])[0, 1], np.corrcoef(feats[0], feats[20])[0, 1]])
    raw_chain = chain.InputChain(residual.HighPass(3), "raw")  # the baseline reads |DFT| whatever the view
    np.testing.assert_allclose(methods.SpectrumCorrelation(raw_chain).features(images), feats)
    assert protocols.identification(feats, labels, k=3, draws=2).top1.min() == 1.0


def test_extractor_method_matches_direct_embedding_in_any_batch_size():
    images, _ = _generated(n_per_model=3, size=32)
    to_input = chain.InputChain(residual.HighPass(3))
    a = methods.random_init_method(5, "resnet18", seed=3, chain=to_input, batch_size=4)
    b = methods.random_init_method(5, "resnet18", seed=3, chain=to_input, batch_size=64)
    fa = a.features(images)
    assert fa.shape == (9, 512) and a.name == "random_init" and isinstance(fa, np.ndarray)
    np.testing.assert_allclose(fa, b.features(images), rtol=1e-4, atol=1e-5)
    direct = a.model.embed(to_input(images)).double().numpy()
    np.testing.assert_allclose(fa, direct, rtol=1e-4, atol=1e-5)
    c = methods.random_init_method(5, "resnet18", seed=4, chain=to_input)
    assert not np.allclose(fa, c.features(images))
    assert not any(p.requires_grad and p.grad is not None for p in a.model.parameters())


def test_random_init_leaves_the_global_rng_alone_and_bad_input_fails():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    method = methods.random_init_method(2, "resnet18", seed=0, chain=chain.InputChain(residual.HighPass(3)))
    assert torch.equal(torch.rand(3), expected)
    with pytest.raises(ValueError, match="expected images"):
        method.features(torch.rand(2, 1, 32, 32))
    extractor = FingerprintExtractor(2, "resnet18")
    ours = methods.ExtractorMethod("ours", extractor, chain.InputChain(residual.HighPass(3)))
    assert ours.name == "ours" and ours.features(torch.rand(2, 3, 32, 32)).shape == (2, 512)
