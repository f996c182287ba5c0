"""One frozen configuration with named presets (scales).

`resolve("cpu", seed=1)` gives the `cpu` preset with `seed` overridden; unknown keys raise a
clear error. `stage_key(cfg, stage, version, fields)` hashes exactly the fields a stage reads,
so changing an unrelated field never invalidates a cached artefact.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any, Iterable


@dataclass(frozen=True)
class Config:
    """Every tunable of the compendium. Presets below set the values; see README "Presets"."""

    preset: str = "smoke"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps

    # --- real photo pool (zsattr.photos) ---
    image_size: int = 32  # side of every crop fed to models, pixels
    photo_downscale: float = 3.0  # antialiased downscale of bundled photos (JPEG-grid suppression)
    holdout_fraction: float = 0.25  # share of source photos held out (split by photo, not by crop)
    real_image_dir: str | None = None  # a user folder (one sub-folder per source) replaces the bundled photos
    n_spectrum_crops: int = 64  # crops averaged for the pool's mean spectrum (notebook 00)

    # --- synthetic bank and fingerprints (zsattr.synthesis, zsattr.fingerprint) ---
    synth_codes: int = 6  # architectures in the bank: 0 = all 288, else a coverage-spread subset
    synth_seeds: int = 1  # training seeds per architecture (seeds 0..n-1)
    synth_train_size: int = 16  # crop side the bank trains on (models are fully convolutional)
    synth_batch: int = 8  # crops per model per training step
    synth_steps: int = 24  # step budget per model (Adam, cosine decay)
    synth_lr: float = 1e-2  # Adam learning rate at the start of the cosine decay
    synth_eta: float = 0.005  # paper's eta: a model stops once its eval MSE <= eta
    synth_check_every: int = 8  # steps between eta checks
    synth_pool_crops: int = 1024  # real train-split crops the bank draws its batches from
    synth_workers: int = 1  # processes training the bank (1 = in this process)
    residual_extractor: str = "highpass"  # default noise residual: highpass | dncnn
    highpass_kernel: int = 3  # box size of the fixed high-pass residual (odd)
    dncnn_depth: int = 4  # DnCNN conv layers (paper: 17)
    dncnn_width: int = 16  # DnCNN feature channels (paper: 64)
    dncnn_steps: int = 30  # DnCNN training steps (Gaussian denoising of real crops)
    dncnn_batch: int = 8  # DnCNN crops per step
    dncnn_crop: int = 24  # DnCNN training crop side
    dncnn_sigma_max: float = 0.1  # noise std drawn uniformly in [0, this] per training crop


    # --- real-model zoo (zsattr.zoo) ---
    zoo_models: tuple[str, ...] = ("dcgan_tconv", "dcgan_bilinear", "vae", "ddpm")  # registry names trained
    zoo_steps: int = 60  # base optimisation steps per model (scaled by each model's step_weight)
    zoo_batch_size: int = 16  # images per training step
    zoo_width: int = 8  # base channel width of every zoo network
    zoo_train_crops: int = 512  # fixed training set: crops drawn once from the photo pool's train split
    zoo_n_samples: int = 32  # lossless PNG samples written per model
    zoo_ddim_steps: int = 10  # DDIM steps when sampling the diffusion models
    zoo_checkpoint_every: int = 50  # steps between atomic training checkpoints


    # --- FFD and diversity (zsattr.ffd) ---
    ffd_images: int = 8  # images per model averaged into its radial-spectrum vector
    ffd_bootstrap: int = 20  # bootstrap draws for every FFD / coverage interval
    ffd_coverage_k: int = 3  # k of the k-nearest-neighbour balls in the coverage metric
    ffd_fewer_steps: tuple[int, ...] = (8,)  # extra banks trained with these step budgets

    # --- last-block experiment (zsattr.lastblock) ---
    lastblock_width: int = 64  # channels of the 4x4 block; halved per up-block, never below 16
    lastblock_z_dim: int = 64  # latent size of the ProGAN-like generators
    lastblock_steps: int = 200  # training steps per GAN (4 GANs: 2 pairs x 2 seeds)
    lastblock_batch: int = 32  # training batch (real crops and fakes)
    lastblock_lr: float = 2e-4  # Adam learning rate of generator and discriminator
    lastblock_n_crops: int = 2048  # real training crops drawn once from the train split
    lastblock_ckpt_every: int = 100  # steps between atomic training checkpoints
    lastblock_n_train_images: int = 256  # images per model to train the spectrum classifier
    lastblock_n_test_images: int = 256  # held-out images per model and per composed model

    # --- extractor training (zsattr.extractor, zsattr.train, zsattr.extractor_stage) ---
    extractor_backbone: str = "resnet18"  # resnet18 | resnet34 | resnet50 (trained from scratch)
    extractor_input: str = "log"  # what the ResNet sees: log (log|DFT|) | raw (|DFT|, the authors' input)
    extractor_steps: int = 30  # optimisation steps of the main (full-space) extractor
    extractor_p: int = 8  # synthetic models per batch (P of P x K)
    extractor_k: int = 4  # real crops per model per batch (K of P x K)
    extractor_lr: float = 1e-3  # AdamW peak learning rate (paper: 1e-4 with a pretrained encoder)
    extractor_weight_decay: float = 0.01  # AdamW weight decay (paper: 0.01)
    extractor_triplet_normalised: bool = True  # triplet on L2-normalised embeddings (paper: raw Euclidean)
    extractor_ce_over: str = "prototypes"  # cross-entropy over: the batch's model prototypes | batch | all (paper)
    extractor_restart_fraction: float = 0.375  # first cosine cycle as a share of the steps (paper: 15 of 40 epochs)
    extractor_amp: bool = False  # autocast mixed precision (bf16 on CPU, fp16 on CUDA)
    extractor_checkpoint_every: int = 10  # steps between atomic training checkpoints
    extractor_crop_pool: int = 512  # real train-split crops drawn once; the synthetic models fingerprint them
    extractor_heldout_codes: float = 0.2  # share of architectures held out of training (unseen codes)
    extractor_heldout_seeds: float = 0.2  # share of the other architectures whose last seed is held out
    extractor_heldout_images: int = 16  # holdout-photo images fingerprinted per held-out model
    extractor_eval_k: int = 5  # gallery images per model in the held-out identification check


    # --- zero-shot evaluation (zsattr.protocols, zsattr.baselines, zsattr.perturb) ---
    eval_k: int = 5  # support images per model in a gallery entry (paper: 10)
    eval_draws: int = 3  # seeded support draws; identification reports mean and std over them
    eval_kshots: tuple[int, ...] = (1, 2, 5, 10)  # k values of the k-shot sweep
    eval_pairs: int = 400  # verification pairs drawn in each of the calibration and test halves
    eval_calibration_fraction: float = 0.5  # share of each model's images whose pairs calibrate the threshold
    eval_unknown_fraction: float = 0.25  # share of models left out of the gallery in the open-set test
    eval_baseline_train_fraction: float = 0.5  # share of each real-training model's images the baseline trains on
    eval_batch: int = 64  # images per feature-extraction batch
    eval_closed_set_steps: int = 20  # training steps of the closed-set baseline (real-training models)
    eval_ablation_steps: int = 20  # training steps of each diversity ablation (and of its full-space control)
    eval_ablation_spaces: tuple[str, ...] = ("w/o U", "w/o seed")  # reduced synthetic spaces trained for the ablation
    eval_robustness_images: int = 12  # images per model perturbed in the robustness test (notebook 07)


    # --- LoRA tracing (zsattr.lora) ---
    lora_bases: tuple[str, ...] = ("ddpm", "dcgan_tconv")  # zoo models fine-tuned with LoRA (GANs or diffusion; must be in zoo_models)
    lora_variants: int = 2  # LoRA variants per base (each: its own seed and holdout-photo subset)
    lora_rank: int = 4  # rank r of every adapter
    lora_alpha: float = 4.0  # adapter scale alpha; the update is scaled by alpha / r
    lora_steps: int = 40  # base fine-tuning steps per variant (scaled by the zoo's step_weight)
    lora_lr_scale: float = 2.5  # adapter learning rate = this x the base's own zoo rate (GAN critic: x1)
    lora_batch: int = 16  # holdout crops per fine-tuning step
    lora_photos: int = 2  # holdout photos each variant fine-tunes on (0 = all holdout photos)
    lora_crops: int = 256  # crops drawn once from a variant's photos: its fine-tuning set
    lora_n_samples: int = 24  # lossless PNG samples written per variant
    lora_checkpoint_every: int = 50  # steps between atomic fine-tuning checkpoints




    def replace(self, **overrides: Any) -> "Config":
        """A copy with `overrides` applied, validated like `resolve`."""
        _check_keys(overrides)
        cfg = dataclasses.replace(self, **overrides)
        _validate(cfg)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # CI and nbval: whole chain in a few minutes on 2 cores, tiny sizes.
    "smoke": dict(
        image_size=32,
        n_spectrum_crops=64,
        # synthetic bank and fingerprints
        synth_codes=6, synth_seeds=2, synth_steps=24, synth_workers=1,
        residual_extractor="highpass", dncnn_depth=4, dncnn_width=16, dncnn_steps=30,


        # real-model zoo
        zoo_models=("dcgan_tconv", "dcgan_bilinear", "vae", "ddpm"),
        zoo_steps=160,
        zoo_width=8,
        zoo_n_samples=32,


        # FFD and diversity
        ffd_images=8, ffd_bootstrap=20, ffd_fewer_steps=(8,),
        # last-block experiment
        lastblock_steps=150, lastblock_n_crops=512, lastblock_n_test_images=128,
        # extractor training
        extractor_backbone="resnet18", extractor_steps=30, extractor_p=8, extractor_k=4,
        extractor_checkpoint_every=10, extractor_crop_pool=512, extractor_heldout_images=16,
        extractor_eval_k=5,


        # zero-shot evaluation
        eval_k=5, eval_draws=3, eval_kshots=(1, 2, 5, 10), eval_pairs=400,
        eval_calibration_fraction=0.5, eval_unknown_fraction=0.25, eval_baseline_train_fraction=0.5, eval_batch=64,
        eval_closed_set_steps=20, eval_ablation_steps=20, eval_robustness_images=12,


        # LoRA tracing
        lora_bases=("ddpm", "dcgan_tconv"), lora_variants=2, lora_rank=4, lora_alpha=4.0, lora_steps=40,
        lora_lr_scale=2.5, lora_batch=16, lora_photos=2, lora_crops=256, lora_n_samples=24,



    ),
    # The main job: a 2-core laptop CPU, well under an hour for the whole chain.
    "cpu": dict(
        image_size=64,
        n_spectrum_crops=1024,
        # synthetic bank and fingerprints
        synth_codes=0, synth_seeds=2, synth_steps=32, synth_workers=2,
        residual_extractor="highpass", dncnn_depth=6, dncnn_width=24, dncnn_steps=150,


        # real-model zoo
        zoo_models=("dcgan_tconv", "dcgan_tconv_seed1", "dcgan_nearest", "dcgan_bilinear",
                    "dcgan_pixelshuffle", "lsgan_tconv", "wgangp_nearest", "sngan_resnet",
                    "stylegan_mini", "transgan", "vae", "vae_seed1", "beta_vae", "glow", "ddpm", "ldm"),
        zoo_steps=200,
        zoo_width=16,
        zoo_train_crops=4096,
        zoo_n_samples=128,
        zoo_ddim_steps=10,
        zoo_checkpoint_every=100,


        # FFD and diversity
        ffd_images=24, ffd_bootstrap=200, ffd_fewer_steps=(8, 16),
        # last-block experiment
        lastblock_steps=400, lastblock_n_crops=4096, lastblock_n_train_images=1024, lastblock_n_test_images=512,
        # extractor training
        extractor_backbone="resnet50", extractor_steps=700, extractor_p=8, extractor_k=4,
        extractor_lr=1e-3, extractor_checkpoint_every=100, extractor_crop_pool=4096,
        extractor_heldout_codes=0.1, extractor_heldout_seeds=0.1, extractor_heldout_images=32,
        extractor_eval_k=10,


        # zero-shot evaluation
        eval_k=10, eval_draws=5, eval_kshots=(1, 2, 5, 10, 20), eval_pairs=4000,
        eval_calibration_fraction=0.5, eval_unknown_fraction=0.25, eval_baseline_train_fraction=0.5, eval_batch=64,
        eval_closed_set_steps=150, eval_ablation_steps=150, eval_robustness_images=32,


        # LoRA tracing
        lora_bases=("ddpm", "dcgan_tconv"), lora_variants=3, lora_rank=4, lora_alpha=4.0, lora_steps=60,
        lora_lr_scale=2.5, lora_batch=16, lora_photos=2, lora_crops=1024, lora_n_samples=64,



    ),
    # The paper's sizes on GPUs; point real_image_dir at CelebA/LSUN-style folders.
    "paper": dict(
        image_size=128,
        photo_downscale=1.0,
        n_spectrum_crops=4096,
        # synthetic bank and fingerprints
        synth_codes=0, synth_seeds=20, synth_train_size=128, synth_batch=16, synth_steps=2000,
        synth_lr=1e-3, synth_check_every=50, synth_pool_crops=20000, synth_workers=1,
        residual_extractor="dncnn", dncnn_depth=17, dncnn_width=64, dncnn_steps=20000,
        dncnn_batch=64, dncnn_crop=64,


        # real-model zoo
        zoo_models=("dcgan_tconv", "dcgan_tconv_seed1", "dcgan_nearest", "dcgan_bilinear",
                    "dcgan_pixelshuffle", "lsgan_tconv", "wgangp_nearest", "sngan_resnet",
                    "stylegan_mini", "transgan", "vae", "vae_seed1", "beta_vae", "glow", "ddpm", "ldm"),
        zoo_steps=20000,
        zoo_batch_size=64,
        zoo_width=64,
        zoo_train_crops=50000,
        zoo_n_samples=1000,
        zoo_ddim_steps=50,
        zoo_checkpoint_every=500,


        # FFD and diversity
        ffd_images=100, ffd_bootstrap=1000, ffd_fewer_steps=(200, 1000),
        # last-block experiment
        lastblock_width=256, lastblock_z_dim=128, lastblock_steps=20000, lastblock_batch=64, lastblock_n_crops=50000, lastblock_ckpt_every=1000, lastblock_n_train_images=5000, lastblock_n_test_images=2000,
        # extractor training
        extractor_backbone="resnet50", extractor_steps=40000, extractor_p=50, extractor_k=4,
        extractor_lr=1e-4, extractor_ce_over="all", extractor_amp=True, extractor_checkpoint_every=1000,
        extractor_crop_pool=50000, extractor_heldout_codes=0.1, extractor_heldout_seeds=0.1,
        extractor_heldout_images=100, extractor_eval_k=10,


        # zero-shot evaluation
        eval_k=10, eval_draws=10, eval_kshots=(1, 2, 5, 10, 20), eval_pairs=10000,
        eval_calibration_fraction=0.5, eval_unknown_fraction=0.25, eval_baseline_train_fraction=0.5, eval_batch=256,
        eval_closed_set_steps=10000, eval_ablation_steps=10000, eval_robustness_images=200,


        # LoRA tracing
        lora_bases=("ddpm", "dcgan_tconv", "stylegan_mini", "ldm"), lora_variants=5, lora_rank=8,
        lora_alpha=8.0, lora_steps=2000, lora_lr_scale=2.0, lora_batch=64, lora_photos=2, lora_crops=10000,
        lora_n_samples=500, lora_checkpoint_every=500,



    ),
}


def _check_keys(overrides: dict[str, Any]) -> None:
    known = {f.name for f in fields(Config)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise KeyError(
            f"unknown config key(s) {unknown}; known keys: {sorted(known - {'preset'})}"
        )
    if "preset" in overrides:
        raise KeyError("'preset' is chosen by the first argument of resolve(), not overridden")


def resolve(preset: str = "smoke", **overrides: Any) -> Config:
    """The named preset with validated overrides applied."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    _check_keys(overrides)
    cfg = Config(preset=preset, **{**PRESETS[preset], **overrides})
    _validate(cfg)
    return cfg


def _validate(cfg: Config) -> None:
    if cfg.image_size < 8 or cfg.image_size % 4:
        raise ValueError(f"image_size must be a multiple of 4 and >= 8, got {cfg.image_size}")
    if not cfg.photo_downscale >= 1.0:
        raise ValueError(f"photo_downscale must be >= 1, got {cfg.photo_downscale}")
    if not 0.0 < cfg.holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {cfg.holdout_fraction}")


def stage_key(cfg: Config, stage: str, version: int, field_names: Iterable[str],
              extra: dict[str, Any] | None = None) -> str:
    """A stable content hash of (stage, version, the named config fields, extra inputs).

    Stable across processes and Python versions: JSON with sorted keys, sha256, 16 hex chars.
    """
    subset = config_subset(cfg, field_names)
    payload = {"stage": stage, "version": version, "config": subset, "extra": extra or {}}
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return f"{stage}-{hashlib.sha256(blob).hexdigest()[:16]}"


def config_subset(cfg: Config, field_names: Iterable[str]) -> dict[str, Any]:
    names = sorted(set(field_names))
    known = {f.name for f in fields(Config)}
    missing = [n for n in names if n not in known]
    if missing:
        raise KeyError(f"stage reads unknown config field(s) {missing}")
    return {n: getattr(cfg, n) for n in names}


def resolve_device(device: str = "auto") -> str:
    """'auto' picks CUDA, then Apple MPS, then the CPU; anything else is passed through."""
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
