"""LoRA variants of zoo models: fine-tuned on photos no zoo model saw, written as image folders.

The paper traces images of LoRA fine-tunes of Stable Diffusion back to their base model. Here
each base in `cfg.lora.bases` (a trained zoo model) gets `cfg.lora.variants` variants: the
base's weights stay frozen and low-rank adapters (`zsattr.zoo.lora`) on its image network are
fine-tuned on crops of a few photos of the photo pool's HOLDOUT split (the zoo trained on the
train split only, so the fine-tuning data is new to every model). Variants of one base differ
in their seed (adapter init, batches) and in their photo subset (variant i takes
`cfg.lora.photos` holdout photos, rotating through the list), so they move in different
directions away from the base.

How each family is fine-tuned:
- diffusion (`ddpm`, `ldm`): adapters on every Linear/Conv2d of the denoiser, the zoo's own
  v-prediction loss; sampled with the same DDIM sampler as the zoo. For `ldm` the frozen VAE
  decoder and the base's latent scale are kept.
- GANs (`dcgan_tconv`, ...): adapters on every Linear/Conv2d/ConvTranspose2d of the generator,
  adversarial fine-tuning against the base's own saved critic, which stays fully trainable
  (at the zoo's learning rate) and now sees holdout crops as "real"; that pulls the generator
  toward the new photos. The generator's batch norms stay in eval mode, so a variant differs
  from its base by the adapters alone. Adversarial fine-tuning on two photos is unstable: at
  the `cpu` preset some variants drift far (one collapsed toward near-uniform images), which
  `mean_abs_change` shows; at 5x the zoo's rate most variants collapsed, hence 2.5x.

The adapters' Adam learning rate is `lora.lr_scale` times the base's own zoo learning rate
(DDPM 1e-3, DCGAN generator 2e-4), so one setting suits both families.

Each variant records how far it moved: `mean_abs_change` (mean |variant - base| over images
drawn from the same latent noise, in [-1, 1] units), `swd_to_base` (sliced Wasserstein from
its samples to base samples of other noise) next to `swd_base_floor` (base vs base, two
noise draws: what "no change" measures), and the SWD to its own fine-tuning crops for the
base and for the variant (`swd_data_base`, `swd_data_variant`).

Artefact (stage `LORA_VARIANTS`, which reads the zoo's artefact and the photo pool):

    samples/<base>__lora<i>/00000.png ... metadata.json   <- what evaluation reads
    adapters/<base>__lora<i>.pt                           <- `zsattr.zoo.lora.lora_state_dict`
    lora_variants.json                                    <- every variant's metadata

Every variant trains in its own work folder on the one training driver and is marked finished
last, so a killed build resumes without redoing finished variants.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd
import torch

from ..core import atomic
from ..core.cache import Artefact, ArtefactStore
from ..core.config import Config
from ..core.device import resolve_device
from ..core.keys import Stage
from ..core.training import finished
from ..images.photos import PHOTO_POOL, PhotoPool, _crops_of, to_tensor
from . import build as zoo_build
from . import lora, samples, training
from .diffusion import Diffusion
from .gan import GAN
from .registry import entry
from .table import read_metadata

log = logging.getLogger(__name__)

LORA_VARIANTS = Stage("lora_variants", 1, section="lora", settings=("seed", "image_size"),
                      reads=(zoo_build.ZOO, PHOTO_POOL))
SUPPORTED_FAMILIES = ("GAN", "transformer", "diffusion")  # transformer = TransGAN, a GAN
N_MEASURE = 32  # images per "how far did it move" comparison (at most lora.n_samples)


def variant_name(base: str, index: int) -> str:
    return f"{base}__lora{index}"


def variant_names(cfg: Config) -> list[str]:
    return [variant_name(b, i) for b in cfg.lora.bases for i in range(cfg.lora.variants)]


def base_of(variant: str) -> str:
    """`ddpm__lora1` -> `ddpm`: the label a tracing evaluation should recover."""
    return variant.rsplit("__lora", 1)[0]


def check_config(cfg: Config) -> None:
    """Fail before any work on bases outside the zoo or of a family LoRA is not wired for."""
    if cfg.lora.variants < 1 or cfg.lora.rank < 1 or cfg.lora.steps < 1:
        raise ValueError("lora.variants, lora.rank and lora.steps must be >= 1")
    for base in cfg.lora.bases:
        if base not in cfg.zoo.models:
            raise ValueError(f"LoRA base {base!r} is not in zoo.models {list(cfg.zoo.models)}")
        if entry(base).family not in SUPPORTED_FAMILIES:
            raise ValueError(f"LoRA fine-tuning is wired for GANs and diffusion models, not "
                             f"{base!r} ({entry(base).family})")


def variant_seed(cfg: Config, base: str, index: int) -> int:
    return zoo_build.model_seed(cfg, base) + 101 + index


def variant_steps(cfg: Config, base: str) -> int:
    """lora.steps scaled by the zoo's step weight (the pixel DDPM's steps cost the most)."""
    return max(1, round(cfg.lora.steps * entry(base).step_weight))


def variant_photos(cfg: Config, index: int, pool: PhotoPool | None = None) -> list[str]:
    """The holdout photos variant `index` fine-tunes on: `lora.photos` of them, rotating."""
    names = (pool or PhotoPool.from_config(cfg)).names_in("holdout")
    k = len(names) if cfg.lora.photos <= 0 else min(cfg.lora.photos, len(names))
    return [names[(index * k + j) % len(names)] for j in range(k)]


def variant_crops(cfg: Config, index: int, pool: PhotoPool | None = None) -> torch.Tensor:
    """A variant's fixed fine-tuning set: equal numbers of crops of each of its photos, [-1, 1]."""
    pool = pool or PhotoPool.from_config(cfg)
    names = variant_photos(cfg, index, pool)
    each = max(1, cfg.lora.crops // len(names))
    crops = [_crops_of(pool, name, each, cfg.image_size, cfg.seed * 1000 + 31 * index + j)
             for j, name in enumerate(names)]
    return torch.cat([to_tensor(c) for c in crops]) * 2 - 1


def adapt(model, cfg: Config, seed: int) -> list[str]:
    """Put LoRA adapters on `model`'s image network (in place) and point its optimiser
    settings at them; returns the adapted layer names."""
    if isinstance(model, GAN):
        target = model.generator
        model.lr_g *= cfg.lora.lr_scale  # the critic keeps its zoo learning rate and trains fully
    elif isinstance(model, Diffusion):
        target = model.denoiser
        model.lr *= cfg.lora.lr_scale
    else:
        raise ValueError(f"LoRA fine-tuning is wired for GAN and Diffusion models, not {type(model).__name__}")
    names = lora.add_lora(target, cfg.lora.rank, cfg.lora.alpha, seed)
    lora.freeze_norm_statistics(target)
    return names


def fine_tuning_data(model, crops: torch.Tensor) -> torch.Tensor:
    """What the model's training batches are drawn from, without changing the base: a latent
    diffusion model re-estimates its latent scale in `training_data`; the base's is kept."""
    scale = getattr(model, "latent_scale", None)
    saved = None if scale is None else scale.clone()
    data = model.training_data(crops)
    if saved is not None:
        data = data * (scale / saved)
        scale.copy_(saved)
    return data


def _load_base(cfg: Config, base: str, store: ArtefactStore | None):
    return zoo_build.load_generator(cfg, base, store).to(resolve_device(cfg.device))


def _n_measure(cfg: Config) -> int:
    return min(N_MEASURE, cfg.lora.n_samples)


def _measure_seed(cfg: Config, base: str) -> int:
    return zoo_build.model_seed(cfg, base) + 77


def base_reference(cfg: Config, base: str, work_dir: Path, store: ArtefactStore | None) -> dict:
    """Base samples on the measurement noise ("same") and on other noise ("other"), drawn once
    per base and kept in work_dir."""
    path = work_dir / f"{base}__base.pt"
    if not path.exists():
        model, n, seed = _load_base(cfg, base, store), _n_measure(cfg), _measure_seed(cfg, base)
        atomic.torch_save({"same": samples.draw(model, n, seed), "other": samples.draw(model, n, seed + 1)}, path)
    return atomic.torch_load(path)


def train_variant(cfg: Config, base: str, index: int, work_dir: Path, store: ArtefactStore | None = None,
                  pool: PhotoPool | None = None, on_step=None) -> dict:
    """Fine-tune, sample and describe one variant in `work_dir/<variant>/`; skip it if done."""
    name = variant_name(base, index)
    folder = work_dir / name
    record = finished(folder)
    if record is not None:
        log.info("LoRA variant %s already trained; skipping", name)
        return record
    reference = base_reference(cfg, base, work_dir, store)
    seed, steps = variant_seed(cfg, base, index), variant_steps(cfg, base)
    torch.manual_seed(seed)
    model = _load_base(cfg, base, store)
    layers = adapt(model, cfg, seed)
    crops = variant_crops(cfg, index, pool)
    data = fine_tuning_data(model, crops.to(model.device))
    log.info("fine-tuning LoRA variant %s (%d steps)", name, steps)
    run = training.train(model, data, steps, cfg.lora.batch, seed, folder, cfg.lora.checkpoint_every,
                         on_step=on_step)
    started = time.perf_counter()
    images = samples.draw(model, cfg.lora.n_samples, seed + 2)
    sample_seconds = time.perf_counter() - started
    n = _n_measure(cfg)
    same = samples.draw(model, n, _measure_seed(cfg, base))
    real = crops[-n:]
    adapter = lora.lora_state_dict(model)
    metadata = {
        "name": name, "base": base, "variant": index, "family": entry(base).family,
        "rank": cfg.lora.rank, "alpha": cfg.lora.alpha, "lr": model.lr_g if isinstance(model, GAN) else model.lr,
        "batch": cfg.lora.batch,
        "steps": steps, "seed": seed, "photos": variant_photos(cfg, index, pool), "n_crops": len(crops),
        "adapted_layers": layers, "lora_parameters": sum(v.numel() for v in adapter.values()),
        "generator_parameters": model.generator_parameters() - sum(v.numel() for v in adapter.values()),
        "losses": training.loss_summary(run), "monitored_losses": list(model.monitored_losses),
        "mean_abs_change": float((same - reference["same"]).abs().mean()),
        "swd_to_base": samples.sliced_wasserstein(images[:n], reference["other"]),
        "swd_base_floor": samples.sliced_wasserstein(reference["same"], reference["other"]),
        "swd_data_base": samples.sliced_wasserstein(reference["same"], real),
        "swd_data_variant": samples.sliced_wasserstein(same, real),
        "train_seconds": round(run.train_seconds, 2), "sample_seconds": round(sample_seconds, 2),
        "n_samples": cfg.lora.n_samples, "image_size": cfg.image_size,
        "device": str(model.device), "torch": torch.__version__,
    }
    return samples.finish_unit(folder, images, adapter, run.series(), metadata)


def _builder(cfg: Config, store: ArtefactStore | None, on_step=None):
    def build(out_dir: Path, work_dir: Path) -> None:
        pool = PhotoPool.from_config(cfg)
        records = [train_variant(cfg, base, i, work_dir, store, pool, on_step)
                   for base in cfg.lora.bases for i in range(cfg.lora.variants)]
        for record in records:
            samples.publish_unit(work_dir / record["name"], out_dir, record["name"], "adapters")
        atomic.write_json(out_dir / "lora_variants.json", records)
    return build


def lora_artefact(cfg: Config, store: ArtefactStore | None = None, on_step=None) -> Artefact:
    """Get or build every LoRA variant for `cfg` (layout in the module docstring). Builds the
    zoo first if it is not cached."""
    check_config(cfg)
    store = store or ArtefactStore()
    return store.get_or_build(cfg, LORA_VARIANTS, _builder(cfg, store, on_step))


def build_lora_variants(cfg: Config, store: ArtefactStore | None = None) -> Path:
    """The folder of variant samples (one sub-folder `<base>__lora<i>` per variant)."""
    return lora_artefact(cfg, store).path / "samples"


def load_lora_variant(cfg: Config, name: str, store: ArtefactStore | None = None):
    """A variant as a model (its base with the trained adapters; eval mode), to draw more with
    `zsattr.zoo.sample(model, n, seed)`. A GAN variant carries its base's critic: the
    fine-tuned critic is a training aid, not part of the variant."""
    if name not in variant_names(cfg):
        raise KeyError(f"{name!r} is not a LoRA variant of this preset; it has {variant_names(cfg)}")
    path = lora_artefact(cfg, store).path / "adapters" / f"{name}.pt"
    base = base_of(name)
    model = _load_base(cfg, base, store)
    adapt(model, cfg, 0)
    lora.load_lora_state_dict(model, atomic.torch_load(path))
    return model.eval()


def variant_table(folder: str | Path):
    """One row per variant folder (from its metadata.json): base, photos, steps, time, and
    how far it moved from its base."""
    rows = []
    for name, meta in read_metadata(folder).items():
        rows.append({"variant": name, "base": meta["base"], "photos": ", ".join(meta["photos"]),
                     "seed": meta["seed"], "rank": meta["rank"], "steps": meta["steps"],
                     "lora_params": meta["lora_parameters"],
                     "mean_abs_change": meta["mean_abs_change"], "swd_to_base": meta["swd_to_base"],
                     "swd_base_floor": meta["swd_base_floor"], "swd_data_base": meta["swd_data_base"],
                     "swd_data_variant": meta["swd_data_variant"], "train_s": meta["train_seconds"],
                     "sample_s": meta["sample_seconds"]})
    return pd.DataFrame(rows).set_index("variant")
