import pytest
import torch

from zsattr.extractor.network import FingerprintExtractor


@pytest.mark.parametrize("backbone,dim", [("resnet18", 512), ("resnet50", 2048)])
def test_one_forward_returns_logits_and_embedding(backbone, dim):
    torch.manual_seed(0)
    model = FingerprintExtractor(n_classes=7, backbone=backbone)
    calls = []
    model.trunk.register_forward_hook(lambda *a: calls.append(1))
    logits, emb = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 7) and emb.shape == (2, dim) and len(calls) == 1
    assert torch.allclose(logits, model.head(emb))


def test_embed_is_deterministic_in_eval_mode_and_restores_training():
    torch.manual_seed(0)
    model = FingerprintExtractor(n_classes=3, backbone="resnet18")
    x = torch.randn(5, 3, 32, 32)
    a, b = model.embed(x, batch_size=2), model.embed(x, batch_size=5)
    assert torch.allclose(a, b, atol=1e-5) and model.training and not a.requires_grad


def test_no_pretrained_weights_and_bad_arguments():
    torch.manual_seed(0)
    m1 = FingerprintExtractor(2, "resnet18")
    torch.manual_seed(1)
    m2 = FingerprintExtractor(2, "resnet18")
    assert not torch.equal(m1.trunk.conv1.weight, m2.trunk.conv1.weight)  # random init, seeded
    with pytest.raises(ValueError, match="unknown backbone"):
        FingerprintExtractor(2, "vit")
    assert FingerprintExtractor(2, "resnet18", in_channels=1)(torch.randn(2, 1, 32, 32))[0].shape == (2, 2)


@pytest.mark.parametrize("stem,final_side", [("standard", 1), ("no_maxpool", 2), ("stride1", 4)])
def test_stems_keep_more_of_the_spectrum_layout(stem, final_side):
    model = FingerprintExtractor(3, "resnet18", stem=stem)
    sides = []
    model.trunk.layer4.register_forward_hook(lambda m, i, o: sides.append(o.shape[-1]))
    logits, emb = model(torch.randn(2, 3, 32, 32))
    assert sides == [final_side] and emb.shape == (2, 512)
    with pytest.raises(ValueError, match="unknown stem"):
        FingerprintExtractor(3, "resnet18", stem="wide")
