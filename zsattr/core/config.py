"""The configuration: one frozen dataclass per stage, composed into one frozen `Config`.

    cfg = resolve("cpu", seed=1, **{"bank.steps": 8})
    cfg.bank.steps, cfg.zoo.models, cfg.image_size
    cfg.replace(**{"photos.downscale": 1.0})

Keys. A top-level setting by its name (`seed`, `device`, `image_size`); a stage's setting as
`<stage>.<field>` (`bank.steps`, `zoo.models`, `fingerprint.residual_filter`). The CLI's
`--set KEY=VALUE` takes the same keys (values as JSON where they parse: `--set bank.steps=8
zoo.models='["vae","ldm"]'`). `zsattr presets` lists every key with its value per preset.

Defaults are the `smoke` scale (the stored default of every notebook); a preset states only
what differs from them. Every field is checked on construction (presets, `resolve` overrides,
`replace`, the CLI's `--set` alike): its type from the annotation (an int is accepted for a
float, a list for a tuple; never an int for a bool or a string for a number; None only where
the annotation is Optional) and its range, choices or pattern from the field's `setting(...)`,
declared next to the field. A bad key or value raises `ConfigError` (a ValueError) whose one
line names the key, the value and what was expected. A stage's cache key hashes the fields of
its section that are `keyed` (see `zsattr.core.keys`): fields that never change an artefact
(worker counts, how many images a notebook shows) are not.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from dataclasses import dataclass, field, fields
from typing import Any

# what `device` takes (regex, how to say it): torch device names the stages run on
DEVICE = (r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, cuda, cuda:N or mps")
# model spaces the extractor trains on: the full space and Table II's ablations
# (zsattr.synthesis.codes.ablation_subsets; a test checks the two agree)
SPACES = ("full", "w/o K", "w/o L", "w/o S", "w/o U", "w/o A", "w/o N", "w/o seed")


class ConfigError(ValueError):
    """A configuration key or value that cannot be used; the message is one line that names the
    key, the value and what was expected."""


def one_of(value: Any, options) -> str:
    """"one of 'a', 'b', 'c'", the options close to `value` (difflib) first, and said so."""
    options = [str(o) for o in options]
    close = difflib.get_close_matches(str(value), options, n=3)
    ordered = close + [o for o in options if o not in close]
    return "one of " + ", ".join(map(repr, ordered)) + (" (closest first)" if close else "")


def setting(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None, choices: tuple | None = None, multiple_of: int | None = None,
            odd: bool = False, pattern: tuple[str, str] | None = None, keyed: bool = True):
    """A config field with its checks: bounds (ge/gt/le/lt), allowed values (`choices`), a
    divisor (`multiple_of`), `odd`, a `pattern` (regex, how to say it), and whether the stage's
    cache key hashes it (`keyed=False`: the field never changes what the stage builds). The
    checks apply to each element of a tuple field."""
    return field(default=default, metadata={"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices,
                                            "multiple_of": multiple_of, "odd": odd, "pattern": pattern,
                                            "keyed": keyed})


def _type_name(kind) -> str:
    return getattr(kind, "__name__", str(kind)).replace("NoneType", "None")


def _got(value: Any) -> str:
    if value is None:  # `--set key=null` or None: say where it is allowed
        return "got null/None (allowed only for optional settings)"
    return f"got {value!r}"


def _coerce(key: str, kind, value: Any) -> Any:
    """`value` as the annotated `kind`, or a ConfigError that names the key."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list of {_type_name(args[0])}, {_got(value)}")
        return tuple(_coerce(f"{key}[{i}]", args[0], v) for i, v in enumerate(value))
    if args and type(None) in args:  # X | None
        if value is None:
            return None
        return _coerce(key, next(a for a in args if a is not type(None)), value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, {_got(value)}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, {_got(value)}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, {_got(value)}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, {_got(value)}")
        return value
    raise ConfigError(f"{key}: unsupported config type {kind!r}")


_BOUNDS = (("ge", ">=", lambda a, b: a >= b), ("gt", ">", lambda a, b: a > b),
          ("le", "<=", lambda a, b: a <= b), ("lt", "<", lambda a, b: a < b))


def _check_range(key: str, value: Any, meta: dict) -> None:
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if v is None:
            continue
        if meta.get("choices") is not None and v not in meta["choices"]:
            raise ConfigError(f"{key} must be {one_of(v, meta['choices'])}, got {v!r}")
        for bound, word, ok in _BOUNDS:
            if meta.get(bound) is not None and not ok(v, meta[bound]):
                raise ConfigError(f"{key} must be {word} {meta[bound]}, got {v!r}")
        if meta.get("multiple_of") and v % meta["multiple_of"]:
            raise ConfigError(f"{key} must be a multiple of {meta['multiple_of']}, got {v!r}")
        if meta.get("odd") and v % 2 != 1:
            raise ConfigError(f"{key} must be odd, got {v!r}")
        if meta.get("pattern") and not re.fullmatch(meta["pattern"][0], v):
            raise ConfigError(f"{key} must be {meta['pattern'][1]}, got {v!r}")


def _check_field(key: str, kind, value: Any, meta: dict) -> Any:
    value = _coerce(key, kind, value)
    _check_range(key, value, meta)
    return value


class Section:
    """Base of the stage configs: checks every field on construction."""

    NAME = ""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            key = f"{self.NAME}.{f.name}" if self.NAME else f.name
            object.__setattr__(self, f.name, _check_field(key, hints[f.name], getattr(self, f.name), f.metadata))
        self.check()

    def check(self) -> None:
        """Checks across fields (raising ConfigError); a section overrides it where it has some."""

    def keyed(self) -> dict[str, Any]:
        """The fields a stage's cache key hashes (see `setting(keyed=...)`)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("keyed", True)}


@dataclass(frozen=True)
class PhotosConfig(Section):
    """The real-photo pool (zsattr.images.photos)."""

    NAME = "photos"
    downscale: float = setting(3.0, ge=1.0)  # antialiased downscale of bundled photos (JPEG-grid suppression)
    # share of source photos held out (split by photo)
    holdout_fraction: float = setting(0.25, gt=0.0, lt=1.0)
    # a user folder (one sub-folder per source) replaces the bundled photos; keys hash its contents, not its path
    real_image_dir: str | None = setting(None, keyed=False)
    # crops averaged for the pool's mean spectrum (notebook 00)
    spectrum_crops: int = setting(64, ge=1, keyed=False)


@dataclass(frozen=True)
class FingerprintConfig(Section):
    """The input chain: residual filter -> |DFT| -> log or raw (zsattr.fingerprint.chain)."""

    NAME = "fingerprint"
    residual_filter: str = setting("highpass", choices=("highpass", "dncnn"))  # what makes the noise residual
    highpass_kernel: int = setting(3, ge=3, odd=True)  # box size of the fixed high-pass residual filter
    # what the extractor sees: log|DFT| | |DFT| (the authors')
    spectrum: str = setting("log", choices=("log", "raw"))


@dataclass(frozen=True)
class DncnnConfig(Section):
    """The DnCNN residual filter's training (zsattr.fingerprint.dncnn)."""

    NAME = "dncnn"
    depth: int = setting(4, ge=2)  # conv layers (paper: 17)
    width: int = setting(16, ge=1)  # feature channels (paper: 64)
    steps: int = setting(30, ge=1)  # training steps (Gaussian denoising of real crops)
    batch: int = setting(8, ge=1)  # crops per step
    crop: int = setting(24, ge=4)  # training crop side
    sigma_max: float = setting(0.1, gt=0.0)  # noise std drawn uniformly in [0, this] per training crop


@dataclass(frozen=True)
class BankConfig(Section):
    """The synthetic bank (zsattr.synthesis)."""

    NAME = "bank"
    codes: int = setting(6, ge=0, le=288)  # architectures: 0 = all 288, else a coverage-spread subset
    seeds: int = setting(2, ge=1)  # training seeds per architecture (seeds 0..n-1)
    train_size: int = setting(16, ge=4, multiple_of=4)  # crop side the bank trains on (models are fully convolutional)
    batch: int = setting(8, ge=1)  # crops per model per training step
    steps: int = setting(24, ge=0)  # step budget per model (Adam, cosine decay)
    lr: float = setting(1e-2, gt=0.0)  # Adam learning rate at the start of the cosine decay
    eta: float = setting(0.005, ge=0.0)  # paper's eta: a model stops once its eval MSE <= eta
    check_every: int = setting(8, ge=1)  # steps between eta checks
    pool_crops: int = setting(1024, ge=1)  # real train-split crops the bank draws its batches from
    workers: int = setting(1, ge=1, keyed=False)  # processes training the bank (1 = in this process)


# the image-to-image tier (super-resolvers, autoencoders, denoisers) follows the unconditional models
IMAGE_TO_IMAGE_ZOO = ("sr_pixelshuffle", "sr_pixelshuffle_seed1", "sr_pixelshuffle_ft", "sr_tconv", "sr_bicubic_cnn",
                      "ae_kl", "ae_kl_seed1", "denoise_dncnn", "denoise_dncnn_ft")
SMOKE_ZOO = ("dcgan_tconv", "dcgan_bilinear", "vae", "ddpm", "sr_pixelshuffle", "sr_bicubic_cnn")
FULL_ZOO = ("dcgan_tconv", "dcgan_tconv_seed1", "dcgan_nearest", "dcgan_bilinear", "dcgan_pixelshuffle",
            "lsgan_tconv", "wgangp_nearest", "sngan_resnet", "stylegan_mini", "transgan", "vae", "vae_seed1",
            "beta_vae", "glow", "ddpm", "ldm") + IMAGE_TO_IMAGE_ZOO


@dataclass(frozen=True)
class ZooConfig(Section):
    """The real-model zoo (zsattr.zoo)."""

    NAME = "zoo"
    # registry names trained (FULL_ZOO is the whole registry: a test checks it)
    models: tuple[str, ...] = setting(SMOKE_ZOO, choices=FULL_ZOO)
    steps: int = setting(160, ge=1)  # base optimisation steps per model (scaled by each model's step_weight)
    batch_size: int = setting(16, ge=1)  # images per training step
    width: int = setting(8, ge=1)  # base channel width of every zoo network
    train_crops: int = setting(512, ge=1)  # fixed training set: crops drawn once from the train split
    n_samples: int = setting(32, ge=1)  # lossless PNG samples written per model
    ddim_steps: int = setting(10, ge=1)  # DDIM steps when sampling the diffusion models
    checkpoint_every: int = setting(50, ge=1)  # steps between atomic training checkpoints
    # image-to-image tier: PSNR (dB) each model's holdout outputs must reach; none = reported only
    psnr_bar: float | None = setting(None, ge=0.0, keyed=False)
    # unconditional tier: sliced Wasserstein distance (16x16, `zoo.samples`) of samples to real crops that
    # each model must reach (and beat its untrained value); none = reported only
    swd_bar: float | None = setting(None, ge=0.0, keyed=False)
    # unconditional tier: Frechet distance in a fixed random network's features (`zoo.samples`) of samples to
    # real crops that each model must reach (and beat its untrained value); none = reported only
    fd_bar: float | None = setting(None, ge=0.0, keyed=False)
    # unconditional tier: sample diversity relative to real crops (1 = as varied, 0 = collapsed) each
    # model must reach; none = reported only
    diversity_bar: float | None = setting(None, ge=0.0, keyed=False)

    def check(self) -> None:
        if not self.models:
            raise ConfigError("zoo.models must name at least one model, got ()")


@dataclass(frozen=True)
class FfdConfig(Section):
    """FFD and diversity (zsattr.experiments.ffd)."""

    NAME = "ffd"
    images: int = setting(8, ge=1)  # images per model averaged into its radial-spectrum vector
    bootstrap: int = setting(20, ge=1, keyed=False)  # bootstrap draws for every FFD / coverage interval
    # k of the k-nearest-neighbour balls in the coverage metric
    coverage_k: int = setting(3, ge=1, keyed=False)
    fewer_steps: tuple[int, ...] = setting((8,), ge=0)  # extra banks trained with these step budgets


@dataclass(frozen=True)
class LastBlockConfig(Section):
    """The last-block experiment (zsattr.experiments.lastblock)."""

    NAME = "lastblock"
    width: int = setting(64, ge=16)  # channels of the 4x4 block; halved per up-block, never below 16
    z_dim: int = setting(64, ge=1)  # latent size of the ProGAN-like generators
    steps: int = setting(150, ge=1)  # training steps per GAN (4 GANs per pair seed: 2 pairs x 2 seeds)
    batch: int = setting(32, ge=1)  # training batch (real crops and fakes)
    lr: float = setting(2e-4, gt=0.0)  # Adam learning rate of generator and discriminator
    ema: float = setting(0.99, ge=0.0, lt=1.0)  # decay of the generator weights' moving average (0 = off)
    n_crops: int = setting(512, ge=1)  # real training crops drawn once from the train split
    # independent repeats of the experiment (fresh seeds for all four GANs); one cached artefact each
    pair_seeds: int = setting(2, ge=1, le=1000, keyed=False)
    # processes training missing pair seeds side by side (one torch thread each); 1 = in this process
    workers: int = setting(1, ge=1, keyed=False)
    checkpoint_every: int = setting(100, ge=1)  # steps between atomic training checkpoints
    n_train_images: int = setting(256, ge=2, keyed=False)  # images per model to train the spectrum classifier
    n_test_images: int = setting(128, ge=1, keyed=False)  # held-out images per model and per composed model


@dataclass(frozen=True)
class ExtractorConfig(Section):
    """The fingerprint extractor's training (zsattr.extractor)."""

    NAME = "extractor"
    backbone: str = setting("resnet18", choices=("resnet18", "resnet34", "resnet50"))  # trained from scratch
    # first layers: standard (stride-2 conv + max-pool) | no_maxpool | stride1 (3x3 conv, no pool)
    stem: str = setting("standard", choices=("standard", "no_maxpool", "stride1"))
    # optimisation steps of the main (full-space) run; the stage keys the steps it actually trains
    steps: int = setting(30, ge=1, keyed=False)
    p: int = setting(8, ge=2)  # synthetic models per batch (P of P x K)
    # seeds of one architecture drawn together into a batch (1 = models drawn uniformly)
    seeds_per_code: int = setting(2, ge=1)
    k: int = setting(4, ge=2)  # real crops per model per batch (K of P x K)
    lr: float = setting(1e-3, gt=0.0)  # AdamW peak learning rate (paper: 1e-4 with a pretrained encoder)
    weight_decay: float = setting(0.01, ge=0.0)  # AdamW weight decay (paper: 0.01)
    triplet_normalised: bool = setting(True)  # triplet on L2-normalised embeddings (paper: raw Euclidean)
    # cross-entropy over: the batch's model prototypes | the batch's models | all models (paper)
    ce_over: str = setting("prototypes", choices=("prototypes", "batch", "all"))
    # first cosine cycle as a share of the steps (paper: 15 of 40 epochs)
    restart_fraction: float = setting(0.375, gt=0.0, le=1.0)
    amp: bool = setting(False)  # autocast mixed precision (bf16 on CPU, fp16 on CUDA)
    checkpoint_every: int = setting(10, ge=1)  # steps between atomic training checkpoints
    # real train-split crops drawn once; the synthetic models fingerprint them
    crop_pool: int = setting(512, ge=1)
    # share of architectures held out of training (unseen codes)
    heldout_codes: float = setting(0.2, ge=0.0, lt=1.0)
    # share of the other architectures whose last seeds are held out
    heldout_seeds: float = setting(0.2, ge=0.0, lt=1.0)
    # seeds held out per such architecture (at most all but one; 2 gives same-architecture pairs)
    heldout_seeds_per_code: int = setting(2, ge=1)
    # holdout-photo images fingerprinted per held-out model
    heldout_images: int = setting(16, ge=2, keyed=False)
    # gallery images per model in the held-out identification check
    eval_k: int = setting(5, ge=1, keyed=False)
    # training seeds of every trained extractor in the comparisons (their spread is reported)
    training_seeds: int = setting(1, ge=1, keyed=False)
    # wall time per backbone/input variant in notebook 04's equal-time comparison
    comparison_seconds: float = setting(3.0, gt=0.0, keyed=False)


@dataclass(frozen=True)
class LinearConfig(Section):
    """The linear extractor: PCA + shrinkage LDA of log residual spectra (zsattr.extractor.linear)."""

    NAME = "linear"
    crop_pool: int = setting(512, ge=2)  # real train-split crops the synthetic models fingerprint
    images_per_model: int = setting(8, ge=2)  # fingerprinted crops per training model
    components: tuple[int, ...] = setting((16, 32), ge=1)  # PCA sizes tried (chosen on validation models)
    shrinkages: tuple[float, ...] = setting((0.1, 0.5), ge=0.0, le=1.0)  # LDA shrinkages tried
    # shares of the training architectures (and seeds) set aside to choose the settings
    validation_codes: float = setting(0.2, gt=0.0, lt=1.0)
    validation_seeds: float = setting(0.2, gt=0.0, lt=1.0)
    validation_images: int = setting(8, ge=2)  # crops per validation model (the same crops for all)
    validation_k: int = setting(3, ge=1)  # gallery images per validation model


@dataclass(frozen=True)
class EvaluationConfig(Section):
    """Zero-shot evaluation (zsattr.attribution, zsattr.experiments)."""

    NAME = "evaluation"
    k: int = setting(5, ge=1)  # support images per model in a gallery entry (paper: 10)
    draws: int = setting(3, ge=1)  # seeded support draws; identification reports mean and std over them
    kshots: tuple[int, ...] = setting((1, 2, 5, 10), ge=1)  # k values of the k-shot sweep
    pairs: int = setting(400, ge=2)  # verification pairs drawn in each of the calibration and test halves
    # share of each model's images whose pairs calibrate the threshold
    calibration_fraction: float = setting(0.5, gt=0.0, lt=1.0)
    # share of models left out of the gallery in the open-set test
    unknown_fraction: float = setting(0.25, gt=0.0, lt=1.0)
    # share of each real-training model's images the baseline trains on
    baseline_train_fraction: float = setting(0.5, gt=0.0, lt=1.0)
    batch: int = setting(64, ge=1)  # images per feature-extraction batch
    # training steps of the closed-set baseline (real-training models)
    closed_set_steps: int = setting(20, ge=1)
    # training steps of each diversity ablation (and of its full-space control)
    ablation_steps: int = setting(20, ge=1)
    # reduced synthetic spaces trained for the ablation
    ablation_spaces: tuple[str, ...] = setting(("w/o U", "w/o seed"), choices=SPACES)
    # images per model perturbed in the robustness test (notebook 07)
    robustness_images: int = setting(12, ge=2)


@dataclass(frozen=True)
class LoraConfig(Section):
    """LoRA variants of zoo models (zsattr.zoo.variants)."""

    NAME = "lora"
    # zoo models fine-tuned with LoRA (GANs or diffusion; must be in zoo.models)
    bases: tuple[str, ...] = setting(("ddpm", "dcgan_tconv"), choices=FULL_ZOO)
    variants: int = setting(2, ge=1)  # LoRA variants per base (each: its own seed and holdout-photo subset)
    rank: int = setting(4, ge=1)  # rank r of every adapter
    alpha: float = setting(4.0, gt=0.0)  # adapter scale alpha; the update is scaled by alpha / r
    steps: int = setting(40, ge=1)  # base fine-tuning steps per variant (scaled by the zoo's step_weight)
    # adapter learning rate = this x the base's own zoo rate (GAN critic: x1)
    lr_scale: float = setting(2.5, gt=0.0)
    batch: int = setting(16, ge=1)  # holdout crops per fine-tuning step
    photos: int = setting(2, ge=0)  # holdout photos each variant fine-tunes on (0 = all holdout photos)
    crops: int = setting(256, ge=1)  # crops drawn once from a variant's photos: its fine-tuning set
    n_samples: int = setting(24, ge=1)  # lossless PNG samples written per variant
    checkpoint_every: int = setting(50, ge=1)  # steps between atomic fine-tuning checkpoints


SECTIONS: dict[str, type[Section]] = {cls.NAME: cls for cls in (
    PhotosConfig, FingerprintConfig, DncnnConfig, BankConfig, ZooConfig, FfdConfig, LastBlockConfig,
    ExtractorConfig, LinearConfig, EvaluationConfig, LoraConfig)}


@dataclass(frozen=True)
class Config(Section):
    """Every setting of the compendium: the scale-wide ones, and one section per stage."""

    preset: str = setting("smoke")
    seed: int = setting(0, ge=0)  # the seed every stage derives its own seeds from
    device: str = setting("auto", pattern=DEVICE)  # auto | cpu | cuda | cuda:N | mps
    image_size: int = setting(32, ge=8, multiple_of=4)  # side of every crop fed to models, pixels
    photos: PhotosConfig = field(default_factory=PhotosConfig)
    fingerprint: FingerprintConfig = field(default_factory=FingerprintConfig)
    dncnn: DncnnConfig = field(default_factory=DncnnConfig)
    bank: BankConfig = field(default_factory=BankConfig)
    zoo: ZooConfig = field(default_factory=ZooConfig)
    ffd: FfdConfig = field(default_factory=FfdConfig)
    lastblock: LastBlockConfig = field(default_factory=LastBlockConfig)
    extractor: ExtractorConfig = field(default_factory=ExtractorConfig)
    linear: LinearConfig = field(default_factory=LinearConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            if f.name in SECTIONS:
                if not isinstance(getattr(self, f.name), SECTIONS[f.name]):
                    raise ConfigError(f"{f.name} must be a {SECTIONS[f.name].__name__}, got {getattr(self, f.name)!r}")
                continue
            object.__setattr__(self, f.name, _check_field(f.name, hints[f.name], getattr(self, f.name), f.metadata))

    def replace(self, **overrides: Any) -> "Config":
        """A copy with `overrides` (keys as in the module docstring) applied and checked."""
        return _build(self.preset, flat_values(self), overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def keys() -> list[str]:
    """Every override key: top-level names, then `<section>.<field>`, in definition order."""
    out = [f.name for f in fields(Config) if f.name not in SECTIONS and f.name != "preset"]
    for name, cls in SECTIONS.items():
        out += [f"{name}.{f.name}" for f in fields(cls)]
    return out


def flat_values(cfg: Config) -> dict[str, Any]:
    """key -> value for every key of `keys()`."""
    return {key: get(cfg, key) for key in keys()}


def get(cfg: Config, key: str) -> Any:
    section, _, name = key.rpartition(".")
    return getattr(getattr(cfg, section) if section else cfg, name)


def close_keys(key: str, limit: int = 6) -> list[str]:
    """Known keys like `key`: difflib's close matches first, then keys of the same field name in
    other sections (`steps` -> `bank.steps`, `zoo.steps`, ...)."""
    known = keys()
    close = difflib.get_close_matches(key, known, n=limit)
    same_name = [k for k in known if k.rpartition(".")[2] == key.rpartition(".")[2] and k not in close]
    return (close + same_name)[:limit]


def _check_keys(overrides: dict[str, Any]) -> None:
    """One line for unknown keys, with close matches; never the whole list of keys."""
    if "preset" in overrides:
        raise ConfigError("'preset' is chosen by the first argument of resolve() (the CLI's --preset), "
                          "not overridden")
    known = set(keys())
    unknown = [key for key in overrides if key not in known]
    if unknown:
        parts = []
        for key in unknown:
            matches = close_keys(str(key))
            parts.append(f"unknown key {key!r}; close matches: {', '.join(matches)}" if matches
                         else f"unknown key {key!r} (no close match)")
        raise ConfigError("; ".join(parts) + f"; `zsattr presets` lists all {len(known)} keys")


def _build(preset: str, base: dict[str, Any], overrides: dict[str, Any]) -> Config:
    _check_keys(overrides)
    values = {**base, **overrides}
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for key, value in values.items():
        section, _, name = key.rpartition(".")
        (sections[section] if section else top)[name] = value
    return Config(preset=preset, **top, **{name: SECTIONS[name](**v) for name, v in sections.items()})


# Presets state only what differs from the defaults above (the `smoke` scale).
PRESETS: dict[str, dict[str, Any]] = {
    # CI and nbval: the whole chain in a few minutes on 2 cores, tiny sizes.
    "smoke": {},
    # The main job: a 2-core laptop CPU, well under an hour for the whole chain.
    "cpu": {
        "image_size": 64, "photos.spectrum_crops": 1024,
        "bank.codes": 0, "bank.seeds": 4, "bank.steps": 32, "bank.workers": 2,
        "dncnn.depth": 6, "dncnn.width": 24, "dncnn.steps": 150,
        "zoo.models": FULL_ZOO, "zoo.steps": 200, "zoo.width": 16, "zoo.train_crops": 4096,
        "zoo.n_samples": 128, "zoo.checkpoint_every": 100, "zoo.psnr_bar": 25.0,
        "zoo.swd_bar": 0.2, "zoo.fd_bar": 0.3, "zoo.diversity_bar": 0.5,
        "ffd.images": 24, "ffd.bootstrap": 200, "ffd.fewer_steps": (8, 16),
        "lastblock.steps": 400, "lastblock.batch": 16, "lastblock.pair_seeds": 8, "lastblock.workers": 2,
        "lastblock.n_crops": 4096,
        "lastblock.n_train_images": 512, "lastblock.n_test_images": 256,
        # ResNet-18 (the default backbone) on raw |DFT|: the best of five backbones/inputs on held-out
        # synthetic models at equal wall time (README); the linear extractor reads the log spectrum
        "fingerprint.spectrum": "raw", "extractor.steps": 500, "extractor.checkpoint_every": 100,
        "extractor.crop_pool": 4096, "extractor.heldout_codes": 0.1, "extractor.heldout_seeds": 0.1,
        "extractor.heldout_images": 32, "extractor.eval_k": 10, "extractor.training_seeds": 3,
        "extractor.comparison_seconds": 20.0,
        "linear.crop_pool": 4096, "linear.images_per_model": 16, "linear.components": (64, 128, 256, 512),
        "linear.shrinkages": (0.001, 0.01, 0.1, 0.3), "linear.validation_codes": 0.1, "linear.validation_seeds": 0.1,
        "linear.validation_images": 16, "linear.validation_k": 8,
        "evaluation.k": 10, "evaluation.draws": 5, "evaluation.kshots": (1, 2, 5, 10, 20),
        "evaluation.pairs": 4000, "evaluation.closed_set_steps": 150, "evaluation.ablation_steps": 100,
        "evaluation.robustness_images": 32,
        "lora.variants": 3, "lora.steps": 60, "lora.crops": 1024, "lora.n_samples": 64,
    },
    # The paper's sizes on GPUs; point photos.real_image_dir at CelebA/LSUN-style folders.
    "paper": {
        "image_size": 128, "photos.downscale": 1.0, "photos.spectrum_crops": 4096,
        "bank.codes": 0, "bank.seeds": 20, "bank.train_size": 128, "bank.batch": 16, "bank.steps": 2000,
        "bank.lr": 1e-3, "bank.check_every": 50, "bank.pool_crops": 20000,
        "fingerprint.residual_filter": "dncnn",
        "dncnn.depth": 17, "dncnn.width": 64, "dncnn.steps": 20000, "dncnn.batch": 64, "dncnn.crop": 64,
        "zoo.models": FULL_ZOO, "zoo.steps": 20000, "zoo.batch_size": 64, "zoo.width": 64,
        "zoo.train_crops": 50000, "zoo.n_samples": 1000, "zoo.ddim_steps": 50, "zoo.checkpoint_every": 500,
        "zoo.psnr_bar": 25.0, "zoo.swd_bar": 0.2, "zoo.fd_bar": 0.3, "zoo.diversity_bar": 0.5,
        "ffd.images": 100, "ffd.bootstrap": 1000, "ffd.fewer_steps": (200, 1000),
        "lastblock.width": 256, "lastblock.z_dim": 128, "lastblock.steps": 20000, "lastblock.batch": 64,
        "lastblock.ema": 0.999, "lastblock.pair_seeds": 3,
        "lastblock.n_crops": 50000, "lastblock.checkpoint_every": 1000, "lastblock.n_train_images": 5000,
        "lastblock.n_test_images": 2000,
        "extractor.backbone": "resnet50", "extractor.steps": 40000, "extractor.p": 50, "extractor.lr": 1e-4,
        "extractor.ce_over": "all", "extractor.amp": True, "extractor.checkpoint_every": 1000,
        "extractor.crop_pool": 50000, "extractor.heldout_codes": 0.1, "extractor.heldout_seeds": 0.1,
        "extractor.heldout_images": 100, "extractor.eval_k": 10, "extractor.training_seeds": 3,
        "extractor.comparison_seconds": 1800.0,
        "linear.crop_pool": 20000, "linear.images_per_model": 16, "linear.components": (128, 256, 512, 1024),
        "linear.shrinkages": (0.001, 0.01, 0.1, 0.3), "linear.validation_codes": 0.1, "linear.validation_seeds": 0.1,
        "linear.validation_images": 32, "linear.validation_k": 10,
        "evaluation.k": 10, "evaluation.draws": 10, "evaluation.kshots": (1, 2, 5, 10, 20),
        "evaluation.pairs": 10000, "evaluation.batch": 256, "evaluation.closed_set_steps": 10000,
        "evaluation.ablation_steps": 10000, "evaluation.robustness_images": 200,
        "lora.bases": ("ddpm", "dcgan_tconv", "stylegan_mini", "ldm"), "lora.variants": 5, "lora.rank": 8,
        "lora.alpha": 8.0, "lora.steps": 2000, "lora.lr_scale": 2.0, "lora.batch": 64, "lora.crops": 10000,
        "lora.n_samples": 500, "lora.checkpoint_every": 500,
    },
}


def resolve(preset: str = "smoke", **overrides: Any) -> Config:
    """The named preset with checked overrides applied (keys as in the module docstring)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose {one_of(preset, PRESETS)}")
    try:  # the preset's own keys and values are checked as overrides are: a bad one fails loudly, named
        base = _build(preset, {}, PRESETS[preset])
    except ConfigError as exc:
        raise ConfigError(f"preset {preset!r}: {exc}") from None
    return base.replace(**overrides) if overrides else base
