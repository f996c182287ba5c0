"""Training a zoo model (or a LoRA variant of one) on the project's one training driver.

Exact resume (`zsattr.core.training`): step t reseeds torch with `step_seed(seed, t)` before
drawing its batch indices, flips and the model's own noise or latents, so nothing random
carries over between steps and a run killed after its checkpoint at step s and resumed there
makes the same updates as one never killed (on the CPU, given the same torch build).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from ..core import training
from ..core.training import TrainingRun
from .base import ZooModel


def step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7_919 + 12_345) % (2**63 - 1)


class ZooTask:
    """A `ZooModel` learning from batches of `data` (N, C, H, W), half of each mirrored
    left-right unless the model says otherwise."""

    kind = "zoo model"

    def __init__(self, model: ZooModel, data: torch.Tensor, batch_size: int, seed: int):
        self.model, self.batch_size, self.seed = model, batch_size, seed
        self.optimizers = model.make_optimizers()
        self.data = data.to(model.device)
        model.train()

    def settings(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "seed": self.seed, "n_data": len(self.data)}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(),
                "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])

    def step(self, step: int) -> dict[str, float]:
        device = self.model.device
        torch.manual_seed(step_seed(self.seed, step))
        batch = self.data[torch.randint(len(self.data), (self.batch_size,), device=device)]
        if self.model.flip_augment:
            flip = torch.rand(self.batch_size, device=device) < 0.5
            batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
        return {key: float(value) for key, value in self.model.train_step(batch, self.optimizers).items()}


def train(model: ZooModel, data: torch.Tensor, steps: int, batch_size: int, seed: int, work_dir: Path,
          checkpoint_every: int, on_step: Callable[[int], None] | None = None) -> TrainingRun:
    """Train `model` for `steps` steps in `work_dir` (checkpoint.pt, log.csv), resuming a checkpoint."""
    task = ZooTask(model, data, batch_size, seed)
    return training.run(task, work_dir, steps, checkpoint_every, on_step=on_step, desc=type(model).__name__)


def loss_summary(run: TrainingRun, fraction: float = 0.1) -> dict[str, dict[str, float]]:
    """Mean of each loss over the first and the last `fraction` of the steps."""
    out = {}
    for key, values in run.series().items():
        k = max(1, int(len(values) * fraction))
        out[key] = {"first": sum(values[:k]) / k, "final": sum(values[-k:]) / k}
    return out
