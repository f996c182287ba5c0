"""The zoo as one cached artefact, trained model by model with resume.

Layout of the artefact (`ArtefactStore` key over the fields in `FIELDS`):

    samples/<model>/00000.png ... metadata.json    <- what evaluation reads
    weights/<model>.pt                             <- state_dict, for `load_generator`
    zoo.json                                       <- every model's metadata, in training order

Each model trains in its own folder under the store's persistent work directory and writes a
`done.json` marker last; after a kill, `build_zoo` skips finished models and resumes the
interrupted one from its checkpoint.
"""

from __future__ import annotations

import logging
import platform
import shutil
import time
from pathlib import Path

import torch

from .. import atomic
from ..cache import Artefact, ArtefactStore
from ..config import Config, resolve_device
from ..photos import gan_training_crops
from . import samples, train
from .registry import REGISTRY, entry, training_order

log = logging.getLogger(__name__)

STAGE, VERSION = "zoo", 1
FIELDS = ("seed", "image_size", "photo_downscale", "holdout_fraction", "real_image_dir",
          "zoo_models", "zoo_steps", "zoo_batch_size", "zoo_width", "zoo_train_crops",
          "zoo_n_samples", "zoo_ddim_steps", "zoo_checkpoint_every")
DONE = "done.json"
N_MONITOR = 64  # samples compared with real crops before and after training


def model_seed(cfg: Config, name: str) -> int:
    return cfg.seed * 1000 + entry(name).seed


def model_steps(cfg: Config, name: str) -> int:
    return max(1, round(cfg.zoo_steps * entry(name).step_weight))


def training_crops(cfg: Config) -> torch.Tensor:
    """The fixed training set shared by every zoo model: train-split crops in [-1, 1]."""
    return gan_training_crops(cfg, cfg.zoo_train_crops, cfg.seed + 4)


def build_model(cfg: Config, name: str, trained: dict | None = None):
    """An untrained model `name` for `cfg`, given the trained models it requires."""
    trained = trained or {}
    deps = {dep: trained[dep] for dep in entry(name).requires}
    return entry(name).build(cfg, **deps)


def _load_trained(cfg: Config, name: str, weights: Path, trained: dict):
    model = build_model(cfg, name, trained)
    model.load_state_dict(atomic.torch_load(weights))
    return model.eval()


def train_one(cfg: Config, name: str, data: torch.Tensor, work_dir: Path, trained: dict,
              on_step=None) -> dict:
    """Train, sample and describe one model in `work_dir/<name>/`; skip it if already done."""
    folder = work_dir / name
    if (folder / DONE).exists():
        import json

        log.info("zoo model %s already trained; skipping", name)
        return json.loads((folder / DONE).read_text())
    e, seed, steps = entry(name), model_seed(cfg, name), model_steps(cfg, name)
    device = resolve_device(cfg.device)
    torch.manual_seed(seed)
    model = build_model(cfg, name, trained).to(device)
    model_data = model.training_data(data)
    n_monitor = min(N_MONITOR, cfg.zoo_n_samples, len(data))
    reference = data[-n_monitor:]  # a fixed set of real crops
    start_file = folder / "swd_start.json"
    if not start_file.exists():  # measured once, on the untrained model
        atomic.write_json(start_file, {"swd": samples.sliced_wasserstein(
            samples.draw(model, n_monitor, seed + 1), reference)})
    import json

    swd_start = json.loads(start_file.read_text())["swd"]
    log.info("training zoo model %s (%d steps)", name, steps)
    result = train.train(model, model_data, steps, cfg.zoo_batch_size, seed, folder,
                         cfg.zoo_checkpoint_every, on_step=on_step)
    started = time.perf_counter()
    images = samples.draw(model, cfg.zoo_n_samples, seed + 2)
    sample_seconds = time.perf_counter() - started
    samples.write_pngs(images, folder / "images")
    atomic.torch_save(model.state_dict(), folder / "weights.pt")
    metadata = {
        "name": name, "family": e.family, "architecture": e.architecture,
        "upsampling": e.upsampling, "description": e.description,
        "generator_parameters": model.generator_parameters(),
        "total_parameters": model.total_parameters(),
        "seed": seed, "twin_of": e.twin_of, "requires": list(e.requires),
        "steps": steps, "batch_size": cfg.zoo_batch_size, "image_size": cfg.image_size,
        "losses": train.loss_summary(result.history), "monitored_losses": list(model.monitored_losses),
        "swd_start": swd_start, "swd_final": samples.sliced_wasserstein(images[:n_monitor], reference),
        "train_seconds": round(result.seconds, 2), "sample_seconds": round(sample_seconds, 2),
        "n_samples": cfg.zoo_n_samples, "device": str(device), "torch": torch.__version__,
        "machine": platform.machine(),
    }
    atomic.write_json(folder / "loss_history.json", result.history)
    samples.write_metadata(folder / "images", metadata)
    atomic.write_json(folder / DONE, metadata)
    return metadata


def _builder(cfg: Config, on_step=None):
    def build(out_dir: Path, work_dir: Path) -> None:
        data = training_crops(cfg)
        trained: dict = {}
        records = []
        for name in training_order(cfg.zoo_models):
            records.append(train_one(cfg, name, data, work_dir, trained, on_step=on_step))
            if any(name in entry(other).requires for other in cfg.zoo_models):
                trained[name] = _load_trained(cfg, name, work_dir / name / "weights.pt", trained)
        for name in cfg.zoo_models:
            shutil.copytree(work_dir / name / "images", out_dir / "samples" / name)
            (out_dir / "weights").mkdir(exist_ok=True)
            shutil.copy2(work_dir / name / "weights.pt", out_dir / "weights" / f"{name}.pt")
            shutil.copy2(work_dir / name / "loss_history.json", out_dir / "samples" / name / "loss_history.json")
        atomic.write_json(out_dir / "zoo.json", records)
    return build


def zoo_artefact(cfg: Config, store: ArtefactStore | None = None, on_step=None) -> Artefact:
    """Get or build the whole zoo for `cfg` (see the module docstring for the layout)."""
    training_order(cfg.zoo_models)  # unknown names / missing requirements fail before any work
    store = store or ArtefactStore()
    return store.get_or_build(cfg, STAGE, VERSION, FIELDS, _builder(cfg, on_step))


def build_zoo(cfg: Config, store: ArtefactStore | None = None) -> Path:
    """The folder of samples (one sub-folder per model), building the zoo if needed."""
    return zoo_artefact(cfg, store).path / "samples"


def load_generator(cfg: Config, name: str, store: ArtefactStore | None = None):
    """A trained zoo model (eval mode, on the CPU); `zsattr.zoo.sample(model, n, seed)` draws more."""
    if name not in cfg.zoo_models:
        raise KeyError(f"{name!r} is not in this preset's zoo; it has {list(cfg.zoo_models)}")
    path = zoo_artefact(cfg, store).path / "weights"
    trained: dict = {}
    for dep in entry(name).requires:
        trained[dep] = _load_trained(cfg, dep, path / f"{dep}.pt", {})
    return _load_trained(cfg, name, path / f"{name}.pt", trained)


def known_models() -> list[str]:
    return list(REGISTRY)
