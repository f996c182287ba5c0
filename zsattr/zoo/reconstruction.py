"""The image-to-image tier: the photos it is trained and evaluated on, and its quality check.

Data. Like every zoo model, a tier model trains on the zoo's fixed train-split crops; a
fine-tuned variant continues on a fresh draw of crops of only 3 train photos
(`finetune_crops`), a narrower domain than its parent's. Its evaluation images are its outputs
on crops of the *holdout* photos, which neither the synthetic bank nor the extractor ever sees:
a model's samples are "what it does to photos nobody trained on". The crops (and the
denoiser's noise) come from the model's own seed, so `tier_inputs` rebuilds exactly the inputs
behind the PNGs in the model's folder.

Quality. PSNR in dB of the saved (8-bit) outputs against the clean holdout crops, pooled over
all pixels of all samples: 10 log10(1 / MSE) with images in [0, 1]. Pooling (rather than the
mean of per-image PSNRs) keeps easy, flat crops from hiding hard, textured ones. Next to it:
the model's PSNR before training (`psnr_start_db`) and the no-learning answer
(`psnr_input_db`: bicubic x2 upsampling of the super-resolvers' input, the noisy image for the
denoiser; none for an autoencoder). The bar (`cfg.zoo.psnr_bar`, 25 dB at `cpu`) is a check,
not a filter: a model below it stays in the zoo and is shown as failed.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from ..core import atomic
from ..core.config import Config
from ..images.photos import PhotoPool, _crops_of, to_tensor
from . import samples, training
from .image_to_image import Degradation, ImageToImage, quantize

log = logging.getLogger(__name__)

IMAGE_TO_IMAGE = "image_to_image"  # the registry's tier name
FINETUNE_PHOTOS = 3  # train photos a fine-tuned variant continues on
START_FILE = "quality_start.json"  # measured once, before training (survives a resume)


def holdout_source(cfg: Config):
    """`source(n, seed)`: `n` holdout crops at `cfg.image_size` in [-1, 1], reproducible from
    `seed`; the pool is opened on first use, so building a model reads no photo."""
    pool: list[PhotoPool] = []

    def source(n: int, seed: int) -> torch.Tensor:
        if not pool:
            pool.append(PhotoPool.from_config(cfg))
        return to_tensor(pool[0].sample_crops(n, cfg.image_size, "holdout", rng=seed)) * 2 - 1
    return source


def tier_inputs(cfg: Config, degradation: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean holdout crops, degraded inputs) behind a model's `cfg.zoo.n_samples` samples, from
    its metadata's `degradation` and `seed`: what its PNGs were made from, in their order."""
    clean = holdout_source(cfg)(cfg.zoo.n_samples, seed + 2)
    torch.manual_seed(seed + 3)
    return clean, Degradation(degradation)(clean)


def finetune_photos(cfg: Config, seed: int) -> list[str]:
    """The few train photos a fine-tuned variant continues on, chosen by its seed."""
    names = PhotoPool.from_config(cfg).names_in("train")
    picks = np.random.default_rng(seed).choice(len(names), size=min(FINETUNE_PHOTOS, len(names)), replace=False)
    return [names[i] for i in sorted(picks)]


def finetune_crops(cfg: Config, seed: int) -> tuple[torch.Tensor, list[str]]:
    """A quarter of the zoo's training-set size of crops, split over `finetune_photos`."""
    pool, names = PhotoPool.from_config(cfg), finetune_photos(cfg, seed)
    n = max(len(names), cfg.zoo.train_crops // 4)
    parts = [_crops_of(pool, name, n // len(names) + (i < n % len(names)), cfg.image_size, seed + i)
             for i, name in enumerate(names)]
    return to_tensor(np.concatenate(parts)) * 2 - 1, names


def psnr(outputs: torch.Tensor, reference: torch.Tensor) -> float:
    """Pooled PSNR (dB) of `outputs`, as saved (8-bit), against `reference`; both in [-1, 1]."""
    mse = ((quantize(outputs.float()) - reference.float()) / 2).pow(2).mean().item()
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def passes(psnr_db: float, bar: float | None) -> bool | None:
    """The check: None when the preset states no bar (`smoke`), else PSNR >= bar."""
    return None if bar is None else bool(psnr_db >= bar)


def _measure(model: ImageToImage, inputs: torch.Tensor, clean: torch.Tensor,
             n_monitor: int) -> tuple[torch.Tensor, dict]:
    outputs = model.translate(inputs)
    return outputs, {"psnr_db": psnr(outputs, clean),
                     "swd": samples.sliced_wasserstein(outputs[:n_monitor], clean[:n_monitor])}


def train_and_measure(cfg: Config, model: ImageToImage, data: torch.Tensor, seed: int, steps: int,
                      folder: Path, n_monitor: int, finetune: bool = False, on_step=None):
    """Train one tier model in `folder` (resumable) and measure it on its holdout inputs.

    Returns (its outputs on the holdout inputs: the samples, the training run, the tier's
    metadata fields). A fine-tuned variant (`finetune`, the model already holding its parent's
    weights) trains on `finetune_crops` instead of `data`."""
    clean, inputs = tier_inputs(cfg, model.degradation.kind, seed)
    start_file = folder / START_FILE
    if not start_file.exists():  # measured once, on the model before this training
        folder.mkdir(parents=True, exist_ok=True)
        start_out, start = _measure(model, inputs, clean, n_monitor)
        atomic.torch_save(start_out, folder / "outputs_start.pt")
        atomic.write_json(start_file, start)  # last: its presence means both are there
    start = json.loads(start_file.read_text())
    start_out = atomic.torch_load(folder / "outputs_start.pt")
    photos: list[str] = []
    if finetune:
        data, photos = finetune_crops(cfg, seed)
    run = training.train(model, data, steps, cfg.zoo.batch_size, seed, folder, cfg.zoo.checkpoint_every,
                         on_step=on_step)
    started = time.perf_counter()
    outputs, final = _measure(model, inputs, clean, n_monitor)
    sample_seconds = time.perf_counter() - started
    baseline = None if model.degradation.kind == "identity" else psnr(model.degradation.baseline(inputs), clean)
    passed = passes(final["psnr_db"], cfg.zoo.psnr_bar)
    if passed is False:  # kept in the zoo and shown as failed, never dropped
        log.warning("image-to-image model in %s: PSNR %.2f dB is below the %.1f dB bar", folder.name,
                    final["psnr_db"], cfg.zoo.psnr_bar)
    fields = {
        "tier": IMAGE_TO_IMAGE, "degradation": model.degradation.kind, "inputs": "holdout photos",
        "psnr_db": final["psnr_db"], "psnr_start_db": start["psnr_db"], "psnr_input_db": baseline,
        "psnr_bar_db": cfg.zoo.psnr_bar, "psnr_passed": passed,
        "swd_start": start["swd"], "swd_final": final["swd"],
        # how far this training moved the outputs (for a fine-tune: away from its parent's)
        "mean_abs_change": float((outputs - start_out).abs().mean()),
        "finetune_photos": photos, "sample_seconds": round(sample_seconds, 2),
    }
    return outputs, run, fields
