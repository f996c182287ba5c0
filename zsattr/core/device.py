"""Where torch work runs: `resolve_device("auto")` picks CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch


def resolve_device(device: str = "auto") -> str:
    """'auto' picks CUDA, then Apple MPS, then the CPU; anything else is passed through."""
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
