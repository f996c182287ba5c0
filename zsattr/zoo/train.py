"""The shared training driver: one loop for every zoo model, with atomic checkpoints and an
exact resume.

Resume is exact because nothing random carries over between steps: step `s` reseeds torch
with `step_seed(seed, s)` before drawing its batch indices, flips and noise, so a run killed
after its checkpoint at step `s` and resumed there makes the same updates as one never killed
(on the CPU, single-threaded or not, given the same torch build).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .. import atomic
from .base import ZooModel

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"


def step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7_919 + 12_345) % (2**63 - 1)


@dataclass
class TrainResult:
    steps: int
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0  # wall time summed over all runs that contributed (resumes included)
    resumed_from: int = 0


def train(model: ZooModel, data: torch.Tensor, steps: int, batch_size: int, seed: int,
          work_dir: Path, checkpoint_every: int,
          on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Train `model` for `steps` steps on batches drawn from `data` (N, C, H, W).

    Checkpoints (model, optimisers, loss history, elapsed time) go to `work_dir/checkpoint.pt`
    every `checkpoint_every` steps and at the end; an existing checkpoint is resumed from.
    `on_step(step)` runs after each step (tests use it to simulate a kill).
    """
    from ..progress import progress

    work_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = work_dir / CHECKPOINT
    opts = model.make_optimizers()
    result = TrainResult(steps=steps)
    if ckpt_path.exists():
        state = atomic.torch_load(ckpt_path)
        model.load_state_dict(state["model"])
        for name, opt in opts.items():
            opt.load_state_dict(state["optimizers"][name])
        result.history, result.seconds = state["history"], state["seconds"]
        result.resumed_from = state["step"]
        log.info("resuming from step %d of %d (%s)", state["step"], steps, ckpt_path)
    device = model.device
    data = data.to(device)
    model.train()
    started = time.perf_counter()

    def save(done: int) -> None:
        atomic.torch_save({"model": model.state_dict(),
                           "optimizers": {k: o.state_dict() for k, o in opts.items()},
                           "history": result.history, "step": done,
                           "seconds": result.seconds + time.perf_counter() - started}, ckpt_path)

    bar = progress(range(result.resumed_from, steps))
    for s in bar:
        torch.manual_seed(step_seed(seed, s))
        idx = torch.randint(len(data), (batch_size,), device=device)
        batch = data[idx]
        if model.flip_augment:
            flip = torch.rand(batch_size, device=device) < 0.5
            batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
        losses = model.train_step(batch, opts)
        for key, value in losses.items():
            result.history.setdefault(key, []).append(float(value))
        done = s + 1
        if done % checkpoint_every == 0 or done == steps:
            save(done)
        if on_step is not None:
            on_step(done)
    if result.resumed_from >= steps and not ckpt_path.exists():
        save(steps)
    result.seconds += time.perf_counter() - started
    return result


def loss_summary(history: dict[str, list[float]], fraction: float = 0.1) -> dict[str, dict[str, float]]:
    """Mean of each loss over the first and the last `fraction` of the steps."""
    out = {}
    for key, values in history.items():
        k = max(1, int(len(values) * fraction))
        out[key] = {"first": sum(values[:k]) / k, "final": sum(values[-k:]) / k}
    return out
