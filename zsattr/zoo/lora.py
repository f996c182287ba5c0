"""Low-rank adapters (LoRA, Hu et al. 2021) for Linear, Conv2d and ConvTranspose2d layers.

Why: the paper traces images of LoRA fine-tunes of Stable Diffusion back to their base model.
To ask the same question of our zoo we need fine-tuned variants that differ from their base by
exactly a low-rank weight update, with everything else (base weights, norm statistics) frozen.

Each chosen layer is replaced in place by a `LoRALayer` that keeps the original layer (frozen)
and two trainable factors. With `fan_in = weight.numel() / out_channels`:

    A: (rank, fan_in), random (Kaiming-uniform, as the reference implementation)
    B: (out, rank), zero, so a fresh adapter changes nothing
    effective weight = W + (alpha / rank) * reshape(B @ A)

For a Conv2d the reshape is to (out, in, kh, kw): A reads a full kernel window into `rank`
channels and B mixes them into `out` (the usual "down conv, then 1x1 up conv" LoRA). For a
ConvTranspose2d, whose weight is stored (in, out, kh, kw), the same product is reshaped to
(out, in, kh, kw) and transposed: A still reads the input channels with the full kernel, B
mixes the `rank` channels into the outputs. Trainable parameters per layer: rank * (fan_in +
out), i.e. rank * (in + out) for Linear and rank * (in * kh * kw + out) for the convolutions.

The layer runs one call of the original operation with the effective weight (the layer's own
stride, padding, dilation, padding mode, output padding), so every shape the base layer
accepts works, and with B = 0 the weight equals W bit for bit and so does the output. Only
`groups=1` is supported (a grouped weight is not one matrix).
"""

from __future__ import annotations

import fnmatch
import math
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
Include = Callable[[str, nn.Module], bool] | Iterable[str] | None


class LoRALayer(nn.Module):
    """A frozen `base` layer plus a trainable rank-`rank` update scaled by alpha / rank."""

    def __init__(self, base: nn.Module, rank: int, alpha: float, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(base, SUPPORTED):
            raise TypeError(f"LoRA supports {[c.__name__ for c in SUPPORTED]}, not {type(base).__name__}")
        if getattr(base, "groups", 1) != 1:
            raise ValueError(f"LoRA needs groups=1, got groups={base.groups}")
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.base = base.requires_grad_(False)
        self.rank, self.alpha, self.scale = int(rank), float(alpha), float(alpha) / rank
        weight = base.weight
        transposed = isinstance(base, nn.ConvTranspose2d)
        self.out_features = weight.shape[1] if transposed else weight.shape[0]
        fan_in = weight.numel() // self.out_features
        bound = 1.0 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)), as nn.Linear's default
        a = (torch.rand(rank, fan_in, generator=generator) * 2 - 1) * bound
        self.lora_A = nn.Parameter(a.to(weight.device, weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, device=weight.device, dtype=weight.dtype))

    def delta_weight(self) -> torch.Tensor:
        """The scaled update in the base weight's layout."""
        w = self.base.weight
        delta = (self.lora_B @ self.lora_A) * self.scale
        if isinstance(self.base, nn.ConvTranspose2d):
            return delta.view(w.shape[1], w.shape[0], *w.shape[2:]).transpose(0, 1)
        return delta.view(w.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base, weight = self.base, self.base.weight + self.delta_weight()
        if isinstance(base, nn.Linear):
            return F.linear(x, weight, base.bias)
        if isinstance(base, nn.Conv2d):
            return base._conv_forward(x, weight, base.bias)
        return F.conv_transpose2d(x, weight, base.bias, base.stride, base.padding,
                                  base.output_padding, base.groups, base.dilation)

    def merged(self) -> nn.Module:
        """The base layer with the update folded into its weight (a plain layer again)."""
        with torch.no_grad():
            self.base.weight.add_(self.delta_weight())
        return self.base

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha:g}"


def expected_parameters(layer: nn.Module, rank: int) -> int:
    """rank * (fan_in + out): the trainable parameters LoRA adds to `layer`."""
    w = layer.weight
    out = w.shape[1] if isinstance(layer, nn.ConvTranspose2d) else w.shape[0]
    return rank * (w.numel() // out + out)


def _selector(include: Include) -> Callable[[str, nn.Module], bool]:
    if include is None:
        return lambda name, module: True
    if callable(include):
        return include
    patterns = list(include)
    return lambda name, module: any(fnmatch.fnmatchcase(name, p) for p in patterns)


def add_lora(module: nn.Module, rank: int, alpha: float, seed: int = 0, include: Include = None,
             freeze: bool = True) -> list[str]:
    """Wrap the chosen Linear/Conv2d/ConvTranspose2d layers of `module` in `LoRALayer`s, in place.

    `include`: None (every supported layer), fnmatch patterns over qualified layer names (e.g.
    `["blocks.*"]`), or a callable (name, layer) -> bool. `freeze=True` also freezes every other
    parameter of `module` (norm scales, embeddings), so only the adapters train. Factors A are
    drawn from a generator seeded with `seed`, in module order. Returns the wrapped names.
    The output projection inside an nn.MultiheadAttention is skipped: attention reads its
    `.weight` directly, bypassing the module's forward.
    """
    if lora_layers(module):
        raise ValueError("module already has LoRA adapters")
    select = _selector(include)
    targets = [(name, m) for name, m in module.named_modules()
               if isinstance(m, SUPPORTED) and name and select(name, m)
               and not isinstance(_parent(module, name), nn.MultiheadAttention)]
    if not targets:
        raise ValueError("no Linear/Conv2d/ConvTranspose2d layer matched `include`")
    if freeze:
        module.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    for name, layer in targets:
        setattr(_parent(module, name), name.rpartition(".")[2], LoRALayer(layer, rank, alpha, generator))
    return [name for name, _ in targets]


def _parent(module: nn.Module, name: str) -> nn.Module:
    parent_name = name.rpartition(".")[0]
    return module.get_submodule(parent_name) if parent_name else module


def lora_layers(module: nn.Module) -> dict[str, LoRALayer]:
    return {name: m for name, m in module.named_modules() if isinstance(m, LoRALayer)}


def lora_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The adapter factors of `module`, in module order (what the optimiser trains)."""
    return [p for layer in lora_layers(module).values() for p in (layer.lora_A, layer.lora_B)]


def lora_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter factors, keyed `<layer>.lora_A` / `<layer>.lora_B`: a variant is its
    base model plus this (small) dict."""
    return {f"{name}.{factor}": getattr(layer, factor).detach().clone()
            for name, layer in lora_layers(module).items() for factor in ("lora_A", "lora_B")}


def load_lora_state_dict(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load adapter factors saved by `lora_state_dict` into a module with the same adapters."""
    own = lora_state_dict(module)
    if set(own) != set(state):
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        raise KeyError(f"LoRA keys differ: missing {missing[:4]}, unexpected {unexpected[:4]}")
    layers = lora_layers(module)
    with torch.no_grad():
        for key, value in state.items():
            name, _, factor = key.rpartition(".")
            target = getattr(layers[name], factor)
            if target.shape != value.shape:
                raise ValueError(f"{key}: shape {tuple(value.shape)} != {tuple(target.shape)}")
            target.copy_(value)


def merge_lora(module: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight and put the plain layers back, in place."""
    for name, layer in lora_layers(module).items():
        setattr(_parent(module, name), name.rpartition(".")[2], layer.merged())
    return module


def freeze_norm_statistics(module: nn.Module) -> None:
    """Keep every batch-norm layer of `module` in eval mode, even after `module.train()`.

    A LoRA variant should differ from its base only by the low-rank updates. A batch norm in
    train mode would also move its running statistics (and normalise by batch statistics),
    a change outside the adapters; a forward pre-hook puts the norms back in eval mode before
    every forward, so fine-tuning optimises exactly the function that sampling uses.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def hook(_module, _args):
        for m in norms:
            m.train(False)

    module.register_forward_pre_hook(hook)
