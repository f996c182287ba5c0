"""The shallow synthetic autoencoder of PAPER.md section 4, one architecture per `ArchCode`.

Structure (kernel 3, padding 1, 32 base channels):
- K down-blocks, fixed: avg-pool 2 -> conv3x3 -> BN -> ReLU -> conv3x3 -> BN.
  Channels 3->32 (K=1) or 3->32->64 (K=2).
- K up-blocks, mirrored: 32->3 (K=1) or 64->32->3 (K=2). Each up-block has L layers; the
  first layer upsamples. With L=2 the first layer keeps the channel count and the second
  changes it (paper). A layer is, by order S,
    post: [upsample] conv -> norm -> act      pre: norm -> act -> [upsample] conv
  so in `post` order the final 3-channel output also passes norm and act.
- Upsampling U: bilinear (align_corners=False), nearest, or a learned
  ConvTranspose2d(c, c, kernel 2, stride 2) in place of the fixed upsampler, followed by the
  layer's 3x3 conv like the other two (decision: the paper lists the transposed conv as an
  *upsampling* choice, so it replaces the upsampler, not the conv).
- Norm N: none, BatchNorm2d, InstanceNorm2d(affine=True). Decision: affine instance norm,
  because with PyTorch's default (affine=False) a `post`-order output layer would be forced to
  zero mean, unit variance per channel and could not reconstruct any image.

Input scaling (decision): images stay in [0, 1], the range of the photo pool. Every output
activation covers [0, 1] (ReLU: [0, inf), Sigmoid: (0, 1), Tanh: (-1, 1), none: R), so
every architecture can reconstruct; with [-1, 1] inputs a ReLU or Sigmoid output could not.

Initialisation is deterministic per (code, seed): `build_model` seeds a private generator
from both and draws every parameter from it, independent of the global RNG state.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from .codes import ArchCode

BASE_CHANNELS = 32
KERNEL = 3


def _norm(kind: int, channels: int) -> nn.Module:
    if kind == 0:
        return nn.Identity()
    if kind == 1:
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=True)


def _act(kind: int) -> nn.Module:
    return (nn.Identity(), nn.ReLU(), nn.Sigmoid(), nn.Tanh())[kind]


def _upsampler(kind: int, channels: int) -> nn.Module:
    if kind == 0:
        return nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    if kind == 1:
        return nn.Upsample(scale_factor=2, mode="nearest")
    return nn.ConvTranspose2d(channels, channels, kernel_size=2, stride=2)


def _up_layer(code: ArchCode, c_in: int, c_out: int, upsample: bool) -> nn.Sequential:
    conv = nn.Conv2d(c_in, c_out, KERNEL, padding=KERNEL // 2)
    up = [_upsampler(code.U, c_in)] if upsample else []
    if code.S == 0:  # post: [upsample] conv norm act
        return nn.Sequential(*up, conv, _norm(code.N, c_out), _act(code.A))
    return nn.Sequential(_norm(code.N, c_in), _act(code.A), *up, conv)  # pre


def _down_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.AvgPool2d(2),
        nn.Conv2d(c_in, c_out, KERNEL, padding=KERNEL // 2), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.Conv2d(c_out, c_out, KERNEL, padding=KERNEL // 2), nn.BatchNorm2d(c_out),
    )


class SynModel(nn.Module):
    """image (B, 3, H, W) in [0, 1] -> fingerprinted image (B, 3, H, W); H, W divisible by 2**K."""

    def __init__(self, code: ArchCode | str):
        super().__init__()
        self.code = ArchCode.parse(code)
        widths = [3] + [BASE_CHANNELS * 2**i for i in range(self.code.K + 1)]  # 3, 32[, 64]
        self.down = nn.Sequential(*(_down_block(widths[i], widths[i + 1])
                                    for i in range(self.code.K + 1)))
        ups = []
        for i in range(self.code.K + 1, 0, -1):
            c_in, c_out = widths[i], widths[i - 1]
            if self.code.L == 0:
                ups.append(_up_layer(self.code, c_in, c_out, upsample=True))
            else:
                ups.append(nn.Sequential(_up_layer(self.code, c_in, c_in, upsample=True),
                                         _up_layer(self.code, c_in, c_out, upsample=False)))
        self.up = nn.Sequential(*ups)

    @property
    def factor(self) -> int:
        return 2 ** (self.code.K + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) images, got shape {tuple(x.shape)}")
        if x.shape[-1] % self.factor or x.shape[-2] % self.factor:
            raise ValueError(f"architecture {self.code} needs H and W divisible by {self.factor}, "
                             f"got {tuple(x.shape[-2:])}")
        return self.up(self.down(x))


def init_seed(code: ArchCode | str, seed: int) -> int:
    """A 63-bit seed from (code, seed): stable across processes and Python versions."""
    digest = hashlib.sha256(f"{ArchCode.parse(code)}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def build_model(code: ArchCode | str, seed: int) -> SynModel:
    """A freshly initialised model, identical for identical (code, seed) in any process."""
    code = ArchCode.parse(code)
    generator = torch.Generator().manual_seed(init_seed(code, seed))
    model = SynModel(code)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                # fan-in per output pixel; a k2/s2 transposed conv sees one input pixel
                fan_in = (module.weight[0].numel() if isinstance(module, nn.Conv2d)
                          else module.weight.shape[0])
                bound = (3.0 / fan_in) ** 0.5  # LeCun-uniform: unit gain, variance-preserving
                module.weight.uniform_(-bound, bound, generator=generator)
                b = 1.0 / fan_in**0.5
                module.bias.uniform_(-b, b, generator=generator)
    return model
