"""Several models of ONE architecture run as one network with grouped convolutions.

Why: a synthetic model is tiny, so on a CPU a training step is dominated by per-operator
overhead, not arithmetic. M models of the same code (different seeds) become one network with
M times the channels and `groups=M` in every convolution; batch norm, instance norm,
activations, pooling and upsampling already act per channel, so the M models stay exactly
independent: model m's channels are the m-th contiguous slice of every layer. One step then
trains M models for little more than the overhead of one.

`pack` builds the grouped network from M ordinary `SynModel`s (so initialisation stays the
deterministic per-(code, seed) one) and `unpack` slices model m back out as an ordinary
`SynModel` state dict. Every parameter and buffer splits into M equal chunks along dim 0.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .model import SynModel


def _group_module(module: nn.Module, m: int) -> nn.Module:
    """A copy of a leaf module widened to m independent groups (weights left to `pack`)."""
    if isinstance(module, nn.ConvTranspose2d):
        return nn.ConvTranspose2d(module.in_channels * m, module.out_channels * m,
                                  module.kernel_size, module.stride, groups=m)
    if isinstance(module, nn.Conv2d):
        return nn.Conv2d(module.in_channels * m, module.out_channels * m, module.kernel_size,
                         padding=module.padding, groups=m)
    if isinstance(module, nn.BatchNorm2d):
        return nn.BatchNorm2d(module.num_features * m)
    if isinstance(module, nn.InstanceNorm2d):
        return nn.InstanceNorm2d(module.num_features * m, affine=True)
    return copy.deepcopy(module)  # parameter-free and channel-wise


def _widen(module: nn.Module, m: int) -> nn.Module:
    if len(list(module.children())) == 0:
        return _group_module(module, m)
    wide = copy.copy(module)
    wide._modules = {name: _widen(child, m) for name, child in module._modules.items()}
    return wide


class GroupedSynModel(nn.Module):
    """M same-code models; input (B, M*3, H, W) (model m reads channels 3m:3m+3)."""

    def __init__(self, models: list[SynModel]):
        super().__init__()
        codes = {str(mo.code) for mo in models}
        if len(codes) != 1:
            raise ValueError(f"a grouped model holds one architecture, got {sorted(codes)}")
        self.n = len(models)
        self.code = models[0].code
        template = models[0]
        self.down = _widen(template.down, self.n)
        self.up = _widen(template.up, self.n)
        states = [mo.state_dict() for mo in models]
        merged = {k: torch.cat([s[k] for s in states], dim=0) if states[0][k].dim() > 0
                  else states[0][k].clone() for k in states[0]}
        self.load_state_dict(merged)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))

    def unpack(self, i: int) -> dict[str, torch.Tensor]:
        """Model i's state dict, loadable into `SynModel(code)`."""
        out = {}
        for k, v in self.state_dict().items():
            if v.dim() == 0:
                out[k] = v.clone()
            else:
                size = v.shape[0] // self.n
                out[k] = v[i * size:(i + 1) * size].clone()
        return out

    def per_model_grad_norms(self) -> torch.Tensor:
        """(M,) gradient L2 norm of each model separately."""
        total = torch.zeros(self.n)
        for p in self.parameters():
            if p.grad is not None:
                total += p.grad.detach().reshape(self.n, -1).pow(2).sum(1)
        return total.sqrt()

    def clip_per_model(self, max_norm: float) -> torch.Tensor:
        """Clip each model's gradient to `max_norm` on its own (models stay independent)."""
        norms = self.per_model_grad_norms()
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for p in self.parameters():
            if p.grad is not None:
                p.grad.mul_(scale.repeat_interleave(p.grad.shape[0] // self.n)
                            .view(-1, *([1] * (p.grad.dim() - 1))))
        return norms


def pack(models: list[SynModel]) -> GroupedSynModel:
    return GroupedSynModel(models)
