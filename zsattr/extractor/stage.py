"""The cached extractor stage: train (or reuse) the fingerprint extractor for a preset.

`train_extractor(cfg)` trains the ResNet on the synthetic bank minus its held-out models
(`data.holdout_split`), P x K batches synthesised on the fly, and caches the
weights, the per-step log and a summary. `space` picks a named slice of the model space
(`synthesis.ablation_subsets`: "full", "w/o U", "w/o seed", ...) for the diversity
ablations; `steps` overrides the preset's budget (ablations may run shorter, and say so).

Under `torchrun --nproc_per_node N` every rank trains in the stage's persistent work
directory (rank 0 writes the checkpoints), then rank 0 publishes the artefact; the build
itself only resumes the finished checkpoint, so no step is trained twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core import atomic
from ..core.cache import ArtefactStore
from ..core.config import Config
from ..core.device import resolve_device
from ..core.keys import Stage, stage_key
from ..fingerprint.chain import INPUT_CHAIN, input_chain
from ..images.photos import PHOTO_POOL, PhotoPool, to_tensor
from ..synthesis.bank import BANK, Bank, load_bank
from ..synthesis.codes import ablation_subsets
from . import training
from .data import HoldoutSplit, ImageSetSource, SyntheticSource, holdout_split
from .network import FingerprintExtractor

log = logging.getLogger(__name__)

# The extractor trained on synthetic models (a model space and a step count are its extra inputs).
EXTRACTOR = Stage("extractor", 2, section="extractor", settings=("seed", "image_size"),
                  reads=(BANK, INPUT_CHAIN, PHOTO_POOL))
# The closed-set baseline: the same network and losses on given real-model images (named by
# the caller's data id, an extra input).
CLOSED_SET_EXTRACTOR = Stage("closed_set_extractor", 2, section="extractor", settings=("seed",),
                             reads=(INPUT_CHAIN,))
FINAL_SHARE = 0.1  # final_loss is the mean loss over this last share of the steps (one step is noisy)


def settings_for(cfg: Config, steps: int | None = None) -> training.TrainSettings:
    """The preset's training settings; the paper's schedule (T_0 = 15 of 40 epochs, T_mult 2,
    eta_min = lr / 10) expressed in steps."""
    steps = cfg.extractor.steps if steps is None else steps
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if cfg.extractor.p < 2 or cfg.extractor.k < 2:
        raise ValueError("P x K batches need extractor.p >= 2 and extractor.k >= 2 (the triplet "
                         f"loss needs positives and negatives); got P={cfg.extractor.p}, K={cfg.extractor.k}")
    return training.TrainSettings(
        steps=steps, p=cfg.extractor.p, k=cfg.extractor.k, lr=cfg.extractor.lr,
        weight_decay=cfg.extractor.weight_decay, triplet_normalised=cfg.extractor.triplet_normalised,
        ce_over=cfg.extractor.ce_over,
        restart_period=max(1, round(cfg.extractor.restart_fraction * steps)), restart_mult=2,
        eta_min=cfg.extractor.lr / 10, checkpoint_every=cfg.extractor.checkpoint_every,
        amp=cfg.extractor.amp)


def training_crops(cfg: Config) -> torch.Tensor:
    """The real crops the synthetic models fingerprint during training (train-split photos)."""
    pool = PhotoPool.from_config(cfg)
    return to_tensor(pool.sample_crops(cfg.extractor.crop_pool, cfg.image_size, "train", rng=[cfg.seed, 6]))


def split_of(cfg: Config, bank: Bank) -> HoldoutSplit:
    return holdout_split(bank.entries, cfg.extractor.heldout_codes, cfg.extractor.heldout_seeds, cfg.seed,
                         cfg.extractor.heldout_seeds_per_code)


def split_table(bank: Bank, split: HoldoutSplit) -> pd.DataFrame:
    """One row per part of the split: models and architectures in it."""
    parts = {"train": split.train, "unseen seed": split.unseen_seed, "unseen code": split.unseen_code}
    return pd.DataFrame([{"part": name, "models": len(ix), "architectures": len({bank.entries[i][0] for i in ix})}
                         for name, ix in parts.items()])


def space_indices(bank: Bank, split: HoldoutSplit, space: str) -> list[int]:
    """Training models of `space` (an ablation subset of the bank's codes), held-out ones excluded."""
    subsets = ablation_subsets(bank.codes)
    if space not in subsets:
        raise ValueError(f"unknown model space {space!r}; choose one of {list(subsets)}")
    chosen = subsets[space].select([bank.entries[i] for i in split.train])
    keep = set(chosen)
    return [i for i in split.train if bank.entries[i] in keep]


@dataclass
class TrainedExtractor:
    model: FingerprintExtractor  # eval mode, on the CPU
    history: pd.DataFrame  # one row per step: loss, ce, triplet, accuracy, lr, times
    summary: dict  # space, steps, n_classes, train_seconds, samples_per_second, final_loss, ...
    split: HoldoutSplit | None  # None for a closed-set (real-model) extractor
    train_indices: list[int]
    built_now: bool
    path: Path


def _summary(space: str, settings: training.TrainSettings, n_classes: int, history: list[dict],
             world_size: int, device: str, backbone: str) -> dict:
    seconds = float(sum(h["step_seconds"] for h in history))
    tail = history[-max(1, round(FINAL_SHARE * len(history))):]
    return {"space": space, "backbone": backbone, "steps": len(history), "n_classes": n_classes,
            "batch": settings.p * settings.k * world_size, "world_size": world_size, "device": device,
            "train_seconds": round(seconds, 2),
            "samples_per_second": round(len(history) * settings.p * settings.k * world_size / seconds, 2),
            "batch_share": round(sum(h["batch_seconds"] for h in history) / seconds, 4),
            "final_loss": float(np.mean([h["loss"] for h in tail])),
            "final_accuracy": float(np.mean([h["accuracy"] for h in tail]))}


def run_seed(cfg: Config, training_seed: int) -> int:
    """The seed of one training run (initial weights and batches); training seeds 0, 1, ... of
    one preset give independent runs on the same data, whose spread the comparisons report."""
    if training_seed < 0:
        raise ValueError(f"training_seed must be >= 0, got {training_seed}")
    return cfg.seed * 1000 + training_seed


def train_extractor(cfg: Config, space: str = "full", steps: int | None = None,
                    store: ArtefactStore | None = None, rank: int = 0, world_size: int = 1,
                    training_seed: int = 0) -> TrainedExtractor:
    """Get-or-build the extractor trained on `space` for `steps` (default: the preset's), from
    training seed `training_seed` (see `run_seed`)."""
    store = store or ArtefactStore()
    settings = settings_for(cfg, steps)
    if world_size > 1 and rank != 0:
        torch.distributed.barrier()  # rank 0 builds the bank (if needed) first
    bank = load_bank(cfg, store)
    if world_size > 1 and rank == 0:
        torch.distributed.barrier()
    split = split_of(cfg, bank)
    indices = space_indices(bank, split, space)
    # world_size is not part of the key: notebook 04 (one process) reuses an extractor that
    # `torchrun ... zsattr train-extractor` trained; its summary records the world size.
    extra = {"space": space, "steps": settings.steps, "training_seed": training_seed}
    device = resolve_device(cfg.device)
    seed = run_seed(cfg, training_seed)

    def fit(work_dir: Path, rank: int, world_size: int):
        torch.manual_seed(seed)
        model = _new_model(cfg, len(indices))
        source = SyntheticSource(bank, indices, training_crops(cfg), input_chain(cfg, store),
                                 cfg.extractor.seeds_per_code)
        result = training.train(model, source, settings, work_dir, seed, device, rank, world_size)
        return model, result

    def build(out_dir: Path, work_dir: Path) -> None:
        # After a distributed run the checkpoint is complete: this only reloads it (one process).
        model, result = fit(work_dir, 0, 1) if world_size > 1 else fit(work_dir, rank, world_size)
        _save_run(out_dir, model, result.history, _summary(
            space, settings, len(indices), result.history, world_size, device, cfg.extractor.backbone))

    key = stage_key(cfg, EXTRACTOR, extra)
    if world_size > 1 and not store.is_complete(key):
        fit(store.work_dir(key), rank, world_size)  # all ranks train together; rank 0 checkpoints
        torch.distributed.barrier()
    if rank == 0:
        art = store.get_or_build(cfg, EXTRACTOR, build, extra)
    if world_size > 1:
        torch.distributed.barrier()
        art = store.load(key) if rank else art
    return load_trained(art.path, cfg, split, indices, art.built_now)


def _new_model(cfg: Config, n_classes: int) -> FingerprintExtractor:
    return FingerprintExtractor(n_classes, cfg.extractor.backbone, stem=cfg.extractor.stem)


def _save_run(out_dir: Path, model: FingerprintExtractor, history: list[dict], summary: dict) -> None:
    """The artefact of a training run: weights, per-step log, summary (read by load_trained)."""
    atomic.torch_save(model.cpu().state_dict(), out_dir / "weights.pt")
    pd.DataFrame(history).to_csv(out_dir / "history.csv", index=False)
    atomic.write_json(out_dir / "summary.json", summary)


def load_trained(path: Path, cfg: Config, split: HoldoutSplit | None, indices: list[int],
                 built_now: bool = False) -> TrainedExtractor:
    model = _new_model(cfg, len(indices))
    model.load_state_dict(atomic.torch_load(path / "weights.pt"))
    return TrainedExtractor(model.eval(), pd.read_csv(path / "history.csv"),
                            json.loads((path / "summary.json").read_text()), split, indices,
                            built_now, path)


def closed_set_settings(cfg: Config, n_classes: int, steps: int) -> training.TrainSettings:
    """The synthetic run's settings with the same batch size: P = min(P, classes), K grows."""
    base = settings_for(cfg, steps)
    p = min(base.p, n_classes)
    return training.TrainSettings(**{**base.__dict__, "p": p, "k": max(base.k, base.p * base.k // p)})


def train_closed_set(cfg: Config, images: torch.Tensor, labels, steps: int, data_id: str,
                     store: ArtefactStore | None = None, training_seed: int = 0) -> TrainedExtractor:
    """The "existing approach": the same ResNet, losses and trainer, learning to tell apart the
    real models whose images are given (labels 0..C-1), closed-set. `data_id` names the image
    set in the cache key (e.g. the zoo artefact and the file list's hash)."""
    store = store or ArtefactStore()
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    n_classes = int(labels.max()) + 1
    settings = closed_set_settings(cfg, n_classes, steps)
    device = resolve_device(cfg.device)

    seed = run_seed(cfg, training_seed)

    def build(out_dir: Path, work_dir: Path) -> None:
        torch.manual_seed(seed)
        model = _new_model(cfg, n_classes)
        source = ImageSetSource(images, labels, input_chain(cfg, store))
        result = training.train(model, source, settings, work_dir, seed, device)
        _save_run(out_dir, model, result.history, _summary(
            "closed set", settings, n_classes, result.history, 1, device, cfg.extractor.backbone))

    art = store.get_or_build(cfg, CLOSED_SET_EXTRACTOR, build,
                             {"data": data_id, "steps": steps, "n_images": len(labels),
                              "training_seed": training_seed})
    return load_trained(art.path, cfg, None, list(range(n_classes)), art.built_now)


def heldout_images(cfg: Config, n: int) -> torch.Tensor:
    """`n` crops of the holdout photos (never seen by the bank or the extractor), shared by all
    held-out models so that only the fingerprint differs between their images."""
    pool = PhotoPool.from_config(cfg)
    return to_tensor(pool.sample_crops(n, cfg.image_size, "holdout", rng=[cfg.seed, 7]))


def heldout_images_of(cfg: Config, bank: Bank, indices: list[int]) -> tuple[torch.Tensor, np.ndarray]:
    """`extractor_heldout_images` holdout crops fingerprinted by each model in `indices`
    (images in [0, 1]); labels are positions in `indices`."""
    crops = heldout_images(cfg, cfg.extractor.heldout_images)
    images = torch.cat([bank.apply(i, crops) for i in indices])
    return images, np.repeat(np.arange(len(indices)), len(crops))
