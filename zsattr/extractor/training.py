"""Training the fingerprint extractor: P x K batches, cross-entropy + batch-hard triplet,
AdamW with cosine warm restarts, atomic checkpoints, exact resume, optional DDP.

Data come from a `BatchSource`: anything with `n_classes` and `batch(rng, p, k)` returning
(inputs (P*K, C, H, W), labels (P*K,)) for P classes with K samples each. The synthetic bank
(fingerprinted crops of P synthetic models) and real-model image folders (the closed-set
baseline) both implement it, so one trainer serves both.

The cross-entropy term is taken over every class (`ce_over="all"`, the paper), over the
batch's classes only ("batch"), or against the batch's leave-one-out class prototypes
("prototypes", `prototype_cross_entropy`): the last trains the gallery's own rule and needs
no per-class weights, which short runs over hundreds of classes cannot learn (README).

Exact resume: the batch of step t is drawn from `np.random.default_rng([seed, t, rank])`, a
pure function of (seed, step, rank); the checkpoint (the one training driver's,
`zsattr.core.training`) holds model, optimiser, scheduler and step. A run killed at any point
and resumed ends with the same weights as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..core import training
from ..core.training import TrainingRun
from .losses import batch_hard_triplet_loss

log = logging.getLogger(__name__)


class BatchSource(Protocol):
    n_classes: int

    def batch(self, rng: np.random.Generator, p: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        ...


@dataclass(frozen=True)
class TrainSettings:
    steps: int
    p: int = 8  # classes per batch
    k: int = 4  # samples per class
    lr: float = 1e-4
    weight_decay: float = 0.01
    ce_weight: float = 1.0
    triplet_weight: float = 1.0
    margin: float = 0.3
    triplet_normalised: bool = True  # triplet distances between L2-normalised embeddings (see train_step)
    ce_over: str = "all"  # "all" classes (paper) | "batch": the batch's P classes | "prototypes" (see train_step)
    prototype_scale: float = 10.0  # cosine-logit scale of the "prototypes" cross-entropy
    clip_norm: float = 1.0
    restart_period: int = 15  # T_0 of CosineAnnealingWarmRestarts, in steps
    restart_mult: int = 2
    eta_min: float = 1e-5
    checkpoint_every: int = 50
    amp: bool = False  # autocast (bf16 on CPU, fp16 with loss scaling on CUDA); off by default on CPU


@dataclass
class StepResult:
    loss: float
    ce: float
    triplet: float
    accuracy: float
    grad_norm: float  # before clipping


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               settings: TrainSettings, scaler: torch.amp.GradScaler | None = None) -> StepResult:
    """One optimisation step in the only correct order: zero_grad, forward, backward, clip, step.

    `scaler` (fp16 autocast on CUDA, see `grad_scaler`): the loss is scaled before backward and the
    gradients unscaled before clipping; a step whose gradients overflowed is skipped and the scale
    lowered, as fp16 training needs. Without one, a step whose gradient norm is not finite is
    skipped with a warning: taking it would silently turn every weight into NaN."""
    optimizer.zero_grad(set_to_none=True)
    device_type = x.device.type
    amp_dtype = torch.bfloat16 if device_type == "cpu" else torch.float16
    with torch.autocast(device_type, dtype=amp_dtype, enabled=settings.amp):
        logits, embedding = model(x)
    logits, embedding = logits.float(), embedding.float()
    if settings.ce_over == "prototypes":
        ce, accuracy = prototype_cross_entropy(embedding, y, settings.prototype_scale)
    elif settings.ce_over == "batch":
        # Sampled softmax over the classes present. With hundreds of classes and a short run
        # each class is drawn a handful of times; a full softmax then mostly chases the
        # classes of the latest batches (measured: its loss rose above chance level).
        present, y_local = torch.unique(y, return_inverse=True)
        ce = nn.functional.cross_entropy(logits[:, present], y_local)
        accuracy = (logits[:, present].argmax(1) == y_local).float().mean()
    else:
        ce = nn.functional.cross_entropy(logits, y)
        accuracy = (logits.argmax(1) == y).float().mean()
    # With unit-norm embeddings the margin has a fixed meaning and the triplet term cannot be
    # met by inflating the feature norm, which, measured from scratch with raw Euclidean
    # distances (the authors' setting), drove the cross-entropy above chance. It is also the
    # geometry the gallery compares fingerprints in (cosine similarity).
    triplet_input = nn.functional.normalize(embedding, dim=1) if settings.triplet_normalised else embedding
    triplet = batch_hard_triplet_loss(triplet_input, y, settings.margin)
    loss = settings.ce_weight * ce + settings.triplet_weight * triplet
    if scaler is None:
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), settings.clip_norm)
        if torch.isfinite(grad_norm):
            optimizer.step()
        else:  # stepping would turn the weights into NaN; the log's grad_norm column shows the skip
            log.warning("gradient norm %s (loss %.4g): step skipped", float(grad_norm), loss.item())
    else:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), settings.clip_norm)
        scaler.step(optimizer)  # skipped when the unscaled gradients hold an inf or NaN
        scaler.update()
    return StepResult(loss.item(), ce.item(), triplet.item(), accuracy.item(), float(grad_norm))


def prototype_cross_entropy(embedding: torch.Tensor, y: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of each sample against the batch's class prototypes (Snell et al. 2017).

    Prototype = mean of the class's L2-normalised embeddings, leaving the sample itself out of
    its own class's mean; logits = scale x cosine. This trains exactly what the gallery does at
    test time (mean fingerprints, cosine similarity) and needs no per-class weights, which a
    short run over hundreds of synthetic models could never train (each class is drawn a few
    times). Classes with a single sample have no leave-one-out prototype and are skipped."""
    e = nn.functional.normalize(embedding, dim=1)
    present, y_local = torch.unique(y, return_inverse=True)
    onehot = nn.functional.one_hot(y_local, len(present)).to(e.dtype)  # (B, P)
    sums, counts = onehot.T @ e, onehot.sum(0)  # (P, D), (P,)
    own = onehot.bool()
    # leave-one-out: a sample's own class prototype excludes the sample
    loo_sums = sums[None, :, :] - own[:, :, None] * e[:, None, :]  # (B, P, D)
    loo_counts = counts[None, :] - own.to(e.dtype)
    valid = (loo_counts > 0).all(1)
    protos = nn.functional.normalize(loo_sums / loo_counts.clamp_min(1)[:, :, None], dim=2)
    logits = scale * torch.einsum("bd,bpd->bp", e, protos)
    if not valid.any():
        return embedding.sum() * 0.0, torch.zeros(())
    ce = nn.functional.cross_entropy(logits[valid], y_local[valid])
    accuracy = (logits[valid].argmax(1) == y_local[valid]).float().mean()
    return ce, accuracy


def make_optimizer(model: nn.Module, settings: TrainSettings):
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=settings.restart_period, T_mult=settings.restart_mult, eta_min=settings.eta_min)
    return optimizer, scheduler


def grad_scaler(settings: TrainSettings, device: str) -> torch.amp.GradScaler | None:
    """Loss scaling for fp16 autocast (CUDA): without it small gradients underflow to zero in
    fp16. bf16 (the CPU's autocast type) has fp32's range and needs none."""
    if settings.amp and torch.device(device).type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


def step_rng(seed: int, step: int, rank: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, step, rank])


class ExtractorTask:
    """The extractor learning from a `BatchSource` (one P x K batch per step, drawn from
    `step_rng(seed, step, rank)`); under DDP, `model` is the wrapped module and `module` the
    plain one whose state is checkpointed."""

    kind = "extractor"

    def __init__(self, module: nn.Module, model: nn.Module, source: BatchSource, settings: TrainSettings,
                 seed: int, device: str, rank: int):
        self.module, self.model, self.source, self.train_settings = module, model, source, settings
        self.seed, self.device, self.rank = seed, device, rank
        self.optimizer, self.scheduler = make_optimizer(module, settings)
        self.scaler = grad_scaler(settings, device)

    def settings(self) -> dict:
        return asdict(self.train_settings)

    def state_dict(self) -> dict:
        state = {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict()}
        if self.scaler is not None:  # the loss scale is state: exact resume needs it
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    def step(self, step: int) -> dict:
        t0 = time.perf_counter()
        st = self.train_settings
        x, y = self.source.batch(step_rng(self.seed, step, self.rank), st.p, st.k)
        batch_seconds = time.perf_counter() - t0
        result = train_step(self.model, self.optimizer, x.to(self.device), y.to(self.device), st, self.scaler)
        self.scheduler.step()
        return {"lr": self.optimizer.param_groups[0]["lr"], **asdict(result), "batch_seconds": batch_seconds}


def train(model: nn.Module, source: BatchSource, settings: TrainSettings, work_dir: str | Path,
          seed: int, device: str = "cpu", rank: int = 0, world_size: int = 1,
          stop_after: int | None = None) -> TrainingRun:
    """Train (or resume) in `work_dir` (checkpoint.pt, log.csv) for `settings.steps` steps, on
    the one training driver (`zsattr.core.training`).

    `stop_after` ends this call early after that many steps in total, as a kill would (tests).
    With world_size > 1, torch.distributed must already be initialised (see
    zsattr.core.distributed); only rank 0 writes files."""
    torch.manual_seed(seed)
    model.to(device)
    wrapped = model
    if world_size > 1:
        # The prototype loss never reads the classification head, so DDP must expect parameters
        # without gradients there.
        wrapped = DistributedDataParallel(model, device_ids=None if device == "cpu" else [device],
                                          find_unused_parameters=settings.ce_over == "prototypes")
    task = ExtractorTask(model, wrapped, source, settings, seed, device, rank)
    model.train()
    return training.run(task, work_dir, settings.steps, settings.checkpoint_every, stop_after=stop_after,
                        rank=rank, world_size=world_size, desc="train")
