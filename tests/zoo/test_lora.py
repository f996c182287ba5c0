"""LoRA adapters: a fresh adapter is exactly the base, only adapters train, the update is low
rank and has the expected size, every layer shape works, adapters save and load, merge."""

import pytest
import torch
from torch import nn

from zsattr.zoo import lora
from zsattr.zoo.diffusion import UNet
from zsattr.zoo.gan import DCGANGenerator

LAYERS = {
    "linear": (lambda: nn.Linear(12, 7), (5, 12)),
    "conv3x3": (lambda: nn.Conv2d(4, 6, 3, 1, 1), (2, 4, 9, 9)),
    "conv_strided": (lambda: nn.Conv2d(4, 6, 3, 2, 1), (2, 4, 9, 9)),
    "conv_dilated_nopad_nobias": (lambda: nn.Conv2d(3, 5, 3, 1, 0, dilation=2, bias=False), (2, 3, 11, 11)),
    "conv_reflect_rect": (lambda: nn.Conv2d(3, 5, (3, 5), 1, (1, 2), padding_mode="reflect"), (2, 3, 8, 10)),
    "conv1x1": (lambda: nn.Conv2d(8, 3, 1), (2, 8, 5, 5)),
    "tconv_dcgan": (lambda: nn.ConvTranspose2d(6, 3, 4, 2, 1), (2, 6, 4, 4)),
    "tconv_outpad": (lambda: nn.ConvTranspose2d(4, 5, 3, 2, 1, output_padding=1), (2, 4, 5, 5)),
}


def wrapped(kind, rank=2, alpha=4.0, seed=0):
    make, shape = LAYERS[kind]
    torch.manual_seed(1)
    model = nn.Sequential(make())
    x = torch.randn(*shape)
    base_out = model(x)
    lora.add_lora(model, rank, alpha, seed)
    return model, x, base_out


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_fresh_adapter_is_exactly_the_base_and_update_is_low_rank(kind):
    model, x, base_out = wrapped(kind)
    assert isinstance(model[0], lora.LoRALayer)
    assert torch.equal(model(x), base_out), "B = 0 must leave the output bit-identical"
    layer = model[0]
    assert lora.lora_parameters(model) == [layer.lora_A, layer.lora_B]
    assert sum(p.numel() for p in lora.lora_parameters(model)) == lora.expected_parameters(layer.base, 2)
    with torch.no_grad():
        layer.lora_B.normal_()
    out = model(x)
    assert out.shape == base_out.shape and not torch.allclose(out, base_out)
    delta = layer.delta_weight()
    assert delta.shape == layer.base.weight.shape
    # the update is a genuine rank-2 map from input (with kernel) to output channels
    out_dim = 1 if isinstance(layer.base, nn.ConvTranspose2d) else 0
    matrix = delta.movedim(out_dim, 0).flatten(1)
    assert torch.linalg.matrix_rank(matrix) == 2
    # and it is what the layer applies: reference op with the summed weight
    ref = type(layer.base)(**_ctor_args(layer.base))
    ref.load_state_dict(layer.base.state_dict())
    with torch.no_grad():
        ref.weight.add_(delta)
    torch.testing.assert_close(out, ref(x))


def _ctor_args(m):
    if isinstance(m, nn.Linear):
        return dict(in_features=m.in_features, out_features=m.out_features, bias=m.bias is not None)
    args = dict(in_channels=m.in_channels, out_channels=m.out_channels, kernel_size=m.kernel_size,
                stride=m.stride, padding=m.padding, dilation=m.dilation, bias=m.bias is not None)
    if isinstance(m, nn.ConvTranspose2d):
        args["output_padding"] = m.output_padding
    else:
        args["padding_mode"] = m.padding_mode
    return args


def test_expected_parameter_formula_by_hand():
    assert lora.expected_parameters(nn.Linear(12, 7), 3) == 3 * (12 + 7)
    assert lora.expected_parameters(nn.Conv2d(4, 6, 3), 2) == 2 * (4 * 9 + 6)
    assert lora.expected_parameters(nn.ConvTranspose2d(6, 3, 4), 2) == 2 * (6 * 16 + 3)


def test_training_moves_only_the_adapters():
    torch.manual_seed(0)
    gen = DCGANGenerator(16, 4, "tconv")
    z = torch.randn(4, 64)
    gen.eval()
    before_out = gen(z)
    base_state = {k: v.clone() for k, v in gen.state_dict().items()}
    names = lora.add_lora(gen, rank=2, alpha=2.0, seed=3)
    assert names == ["fc", "blocks.2", "blocks.5"]
    trainable = [n for n, p in gen.named_parameters() if p.requires_grad]
    assert trainable == [f"{n}.lora_{f}" for n in names for f in "AB"], "only adapters train (BN frozen too)"
    expected = sum(lora.expected_parameters(gen.get_submodule(n).base, 2) for n in names)
    assert sum(p.numel() for p in lora.lora_parameters(gen)) == expected
    lora.freeze_norm_statistics(gen)
    opt = torch.optim.Adam(lora.lora_parameters(gen), lr=1e-2)
    gen.train()
    for _ in range(3):
        opt.zero_grad()
        gen(z).pow(2).mean().backward()
        opt.step()
    gen.eval()
    assert not torch.allclose(gen(z), before_out, atol=1e-4), "training changed the output"
    after = {k.replace(".base.", "."): v for k, v in gen.state_dict().items() if "lora_" not in k}
    assert after.keys() == base_state.keys()
    for key, value in base_state.items():
        assert torch.equal(after[key], value), f"{key} moved (base weights and BN statistics are frozen)"


def test_unet_layers_and_include_patterns():
    torch.manual_seed(0)
    net = UNet(3, 8, mults=(1, 2))
    kinds = {type(m) for m in net.modules() if isinstance(m, lora.SUPPORTED)}
    assert kinds == {nn.Conv2d, nn.Linear}
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([3, 500])
    base_out = net(x, t)
    names = lora.add_lora(net, 2, 2.0, include=["up_blocks.*", "out.*"])
    assert names and all(n.startswith(("up_blocks.", "out.")) for n in names)
    assert torch.equal(net(x, t), base_out)
    with pytest.raises(ValueError, match="already"):
        lora.add_lora(net, 2, 2.0)
    with pytest.raises(ValueError, match="matched"):
        lora.add_lora(nn.Sequential(nn.ReLU()), 2, 2.0)
    with pytest.raises(ValueError, match="groups"):
        lora.add_lora(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), 2, 2.0)
    with pytest.raises(ValueError, match="rank"):
        lora.add_lora(nn.Sequential(nn.Linear(3, 3)), 0, 2.0)


def test_seeded_init_save_load_round_trip_and_merge():
    def make(seed):
        torch.manual_seed(0)
        gen = DCGANGenerator(16, 4, "tconv").eval()
        lora.add_lora(gen, 2, 2.0, seed=seed)
        return gen

    a, b, other = make(5), make(5), make(6)
    assert all(torch.equal(a.get_submodule(n).lora_A, b.get_submodule(n).lora_A) for n in lora.lora_layers(a))
    assert not torch.equal(a.fc.lora_A, other.fc.lora_A)
    with torch.no_grad():
        for p in lora.lora_parameters(a):
            p.normal_(0, 0.1)
    z = torch.randn(3, 64)
    state = lora.lora_state_dict(a)
    assert set(state) == {f"{n}.lora_{f}" for n in ("fc", "blocks.2", "blocks.5") for f in "AB"}
    lora.load_lora_state_dict(other, state)
    torch.testing.assert_close(other(z), a(z), rtol=0, atol=0)
    with pytest.raises(KeyError, match="missing"):
        lora.load_lora_state_dict(other, {k: v for k, v in state.items() if "fc" not in k})
    expected = a(z)
    merged = lora.merge_lora(a)
    assert not lora.lora_layers(merged) and isinstance(merged.fc, nn.Linear)
    torch.testing.assert_close(merged(z), expected, rtol=1e-5, atol=1e-6)
