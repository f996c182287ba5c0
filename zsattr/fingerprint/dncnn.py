"""Training the DnCNN residual filter: Gaussian denoising of real crops, cached per preset.

The network predicts the noise it is given: minimise |DnCNN(x + n) - n|^2 with n Gaussian and
its std drawn uniformly in [0, dncnn.sigma_max] per crop; Adam, cosine decay. Batches and
noise come from one seeded generator whose state is checkpointed with the weights, so a
killed build resumes exactly (`zsattr.core.training`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..core import atomic, training
from ..core.cache import ArtefactStore
from ..core.config import Config
from ..core.keys import Stage
from ..images.photos import PHOTO_POOL, PhotoPool, to_tensor
from .residual import DnCNN

DNCNN = Stage("dncnn", 1, section="dncnn", reads=(PHOTO_POOL,))
CROPS_SEED = 8001


class DenoisingTask:
    """One DnCNN learning to predict the Gaussian noise added to real crops."""

    kind = "dncnn"

    def __init__(self, cfg: Config, crops: torch.Tensor, seed: int = 0):
        self.cfg, self.crops = cfg.dncnn, crops
        self.generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.model = DnCNN(self.cfg.depth, self.cfg.width).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, self.cfg.steps, eta_min=1e-4)

    def settings(self) -> dict[str, Any]:
        return self.cfg.keyed()

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])

    def step(self, step: int) -> dict[str, float]:
        x = self.crops[torch.randint(len(self.crops), (self.cfg.batch,), generator=self.generator)]
        sigma = torch.rand(len(x), 1, 1, 1, generator=self.generator) * self.cfg.sigma_max
        noise = torch.randn(x.shape, generator=self.generator) * sigma
        self.optimizer.zero_grad(set_to_none=True)
        loss = (self.model(x + noise) - noise).pow(2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.scheduler.step()
        return {"loss": loss.item()}


def training_crops(cfg: Config) -> torch.Tensor:
    pool = PhotoPool.from_config(cfg)
    n = max(256, cfg.dncnn.batch * 8)
    return to_tensor(pool.sample_crops(n, cfg.dncnn.crop, "train", rng=CROPS_SEED))


def load_dncnn(cfg: Config, store: ArtefactStore | None = None) -> DnCNN:
    """Get-or-build the preset's trained DnCNN (cached weights; eval mode, no gradients).
    `model.train_losses` and `model.train_seconds` describe its training."""
    store = store or ArtefactStore()

    def build(out_dir: Path, work_dir: Path) -> None:
        task = DenoisingTask(cfg, training_crops(cfg))
        run = training.run(task, work_dir, cfg.dncnn.steps, checkpoint_every=max(1, cfg.dncnn.steps // 4),
                           desc="DnCNN")
        atomic.torch_save(task.model.eval().state_dict(), out_dir / "dncnn.pt")
        atomic.write_json(out_dir / "losses.json", run.series()["loss"])

    art = store.get_or_build(cfg, DNCNN, build)
    model = DnCNN(cfg.dncnn.depth, cfg.dncnn.width)
    model.load_state_dict(atomic.torch_load(art.path / "dncnn.pt"))
    model.train_losses = json.loads((art.path / "losses.json").read_text())
    model.train_seconds = float(art.manifest.get("build_seconds", float("nan")))
    return model.eval().requires_grad_(False)
