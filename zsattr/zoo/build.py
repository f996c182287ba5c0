"""The zoo as one cached artefact, trained model by model with resume.

Layout of the artefact (stage `ZOO`):

    samples/<model>/00000.png ... metadata.json    <- what evaluation reads
    weights/<model>.pt                             <- state_dict, for `load_generator`
    zoo.json                                       <- every model's metadata, in training order

Image-to-image models (`tier` "image_to_image") are trained the same way; their samples are
their outputs on holdout photos and their metadata adds the PSNR check (`zoo.reconstruction`).

Each model trains in its own folder under the store's persistent work directory on the one
training driver and is marked finished last (`zsattr.core.training.mark_finished`); after a
kill, `build_zoo` skips finished models and resumes the interrupted one from its checkpoint.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from pathlib import Path

import torch

from ..core import atomic
from ..core.cache import Artefact, ArtefactStore
from ..core.config import Config
from ..core.device import resolve_device
from ..core.keys import Stage
from ..core.training import finished
from ..images.photos import PHOTO_POOL, gan_training_crops
from . import reconstruction, samples, training
from .reconstruction import IMAGE_TO_IMAGE
from .registry import REGISTRY, entry, training_order

log = logging.getLogger(__name__)

ZOO = Stage("zoo", 2, section="zoo", settings=("seed", "image_size"), reads=(PHOTO_POOL,))
N_MONITOR = 64  # samples compared with real crops before and after training


def model_seed(cfg: Config, name: str) -> int:
    return cfg.seed * 1000 + entry(name).seed


def model_steps(cfg: Config, name: str) -> int:
    return max(1, round(cfg.zoo.steps * entry(name).step_weight))


def training_crops(cfg: Config) -> torch.Tensor:
    """The fixed training set shared by every zoo model: train-split crops in [-1, 1]."""
    return gan_training_crops(cfg, cfg.zoo.train_crops, cfg.seed + 4)


def build_model(cfg: Config, name: str, trained: dict | None = None):
    """An untrained model `name` for `cfg`, given the trained models it requires."""
    trained = trained or {}
    deps = {dep: trained[dep] for dep in entry(name).requires}
    return entry(name).build(cfg, **deps)


def _load_trained(cfg: Config, name: str, weights: Path, trained: dict):
    model = build_model(cfg, name, trained)
    model.load_state_dict(atomic.torch_load(weights))
    return model.eval()


def _train_unconditional(cfg: Config, model, data: torch.Tensor, seed: int, steps: int, folder: Path,
                         n_monitor: int, on_step=None):
    """Train a generator from noise; its samples, and the SWD of samples to real crops and their
    diversity relative to real crops (`samples.relative_diversity`), before and after training.
    The same for the Frechet distance in a fixed random network's features
    (`samples.random_feature_distance`, `fd_*`), which sees texture as well as colour.
    `swd_real_floor` / `fd_real_floor` compare two disjoint sets of real crops (the first and the
    last `n_monitor` training crops): what a perfect generator would score with this many samples.
    A model with a training-only state (a GAN's generator EMA) switches to it after training."""
    model_data = model.training_data(data)
    reference = data[-n_monitor:]  # a fixed set of real crops
    start_file = folder / "swd_start.json"
    if not start_file.exists():  # measured once, on the untrained model
        start = samples.draw(model, n_monitor, seed + 1)
        atomic.write_json(start_file, {"swd": samples.sliced_wasserstein(start, reference),
                                       "diversity": samples.relative_diversity(start, reference),
                                       "fd": samples.random_feature_distance(start, reference)})
    at_start = json.loads(start_file.read_text())
    run = training.train(model, model_data, steps, cfg.zoo.batch_size, seed, folder,
                         cfg.zoo.checkpoint_every, on_step=on_step)
    model.finish_training(seed + 3)
    started = time.perf_counter()
    images = samples.draw(model, cfg.zoo.n_samples, seed + 2)
    sample_seconds = time.perf_counter() - started
    return images, run, {"swd_start": at_start["swd"],
                         "swd_final": samples.sliced_wasserstein(images[:n_monitor], reference),
                         "swd_real_floor": samples.sliced_wasserstein(data[:n_monitor], reference),
                         "diversity_start": at_start.get("diversity"),
                         "diversity": samples.relative_diversity(images[:n_monitor], reference),
                         "fd_start": at_start.get("fd"),
                         "fd_final": samples.random_feature_distance(images[:n_monitor], reference),
                         "fd_real_floor": samples.random_feature_distance(data[:n_monitor], reference),
                         "sample_seconds": round(sample_seconds, 2)}


def train_one(cfg: Config, name: str, data: torch.Tensor, work_dir: Path, trained: dict,
              on_step=None) -> dict:
    """Train, sample and describe one model in `work_dir/<name>/`; skip it if already done.
    An image-to-image model's samples are its outputs on holdout photos (`reconstruction`)."""
    folder = work_dir / name
    record = finished(folder)
    if record is not None:
        log.info("zoo model %s already trained; skipping", name)
        return record
    e, seed, steps = entry(name), model_seed(cfg, name), model_steps(cfg, name)
    device = resolve_device(cfg.device)
    torch.manual_seed(seed)
    model = build_model(cfg, name, trained).to(device)
    n_monitor = min(N_MONITOR, cfg.zoo.n_samples, len(data))
    log.info("training zoo model %s (%d steps)", name, steps)
    if e.tier == IMAGE_TO_IMAGE:
        images, run, measured = reconstruction.train_and_measure(
            cfg, model, data, seed, steps, folder, n_monitor, finetune=e.finetune_of is not None, on_step=on_step)
    else:
        images, run, measured = _train_unconditional(cfg, model, data, seed, steps, folder, n_monitor, on_step)
    metadata = {
        "name": name, "family": e.family, "architecture": e.architecture,
        "upsampling": e.upsampling, "description": e.description,
        "generator_parameters": model.generator_parameters(),
        "total_parameters": model.total_parameters(),
        "seed": seed, "twin_of": e.twin_of, "requires": list(e.requires), "tier": e.tier,
        "finetune_of": e.finetune_of,
        "steps": steps, "batch_size": cfg.zoo.batch_size, "image_size": cfg.image_size,
        "losses": training.loss_summary(run), "monitored_losses": list(model.monitored_losses),
        **measured, "train_seconds": round(run.train_seconds, 2),
        "n_samples": cfg.zoo.n_samples, "device": str(device), "torch": torch.__version__,
        "machine": platform.machine(),
    }
    return samples.finish_unit(folder, images, model.state_dict(), run.series(), metadata)


def _builder(cfg: Config, on_step=None):
    def build(out_dir: Path, work_dir: Path) -> None:
        data = training_crops(cfg)
        trained: dict = {}
        records = []
        for name in training_order(cfg.zoo.models):
            records.append(train_one(cfg, name, data, work_dir, trained, on_step=on_step))
            if any(name in entry(other).requires for other in cfg.zoo.models):
                trained[name] = _load_trained(cfg, name, work_dir / name / samples.WEIGHTS, trained)
        for name in cfg.zoo.models:
            samples.publish_unit(work_dir / name, out_dir, name, "weights")
        atomic.write_json(out_dir / "zoo.json", records)
    return build


def zoo_artefact(cfg: Config, store: ArtefactStore | None = None, on_step=None) -> Artefact:
    """Get or build the whole zoo for `cfg` (see the module docstring for the layout)."""
    training_order(cfg.zoo.models)  # unknown names / missing requirements fail before any work
    store = store or ArtefactStore()
    return store.get_or_build(cfg, ZOO, _builder(cfg, on_step))


def build_zoo(cfg: Config, store: ArtefactStore | None = None) -> Path:
    """The folder of samples (one sub-folder per model), building the zoo if needed."""
    return zoo_artefact(cfg, store).path / "samples"


def load_generator(cfg: Config, name: str, store: ArtefactStore | None = None):
    """A trained zoo model (eval mode, on the CPU); `zsattr.zoo.sample(model, n, seed)` draws more."""
    if name not in cfg.zoo.models:
        raise KeyError(f"{name!r} is not in this preset's zoo; it has {list(cfg.zoo.models)}")
    path = zoo_artefact(cfg, store).path / "weights"
    trained: dict = {}
    for dep in entry(name).requires:
        trained[dep] = _load_trained(cfg, dep, path / f"{dep}.pt", {})
    return _load_trained(cfg, name, path / f"{name}.pt", trained)


def known_models() -> list[str]:
    return list(REGISTRY)
