"""The zoo's registry: model name -> how to build it, its family and upsampling, and why it
is in the zoo. A preset chooses which names it trains (`cfg.zoo.models`).

`step_weight` scales the preset's base step budget (`cfg.zoo.steps`) per model: cheap models
get more steps, the expensive pixel-space diffusion model fewer, so the whole zoo meets the
preset's time budget. `seed` offsets the preset seed; two entries that differ only in `seed`
are seed twins (same architecture, same data, different initialisation and batches).

Tiers. `tier` says how a model makes its images: "unconditional" (from noise: the GANs, VAEs,
flow and diffusion models) or "image_to_image" (from a real holdout photo: super-resolvers, an
autoencoder, denoisers; `zsattr.zoo.image_to_image`). Evaluation selects a tier with
`tier_models(names, tier)`. A fine-tuned variant (`finetune_of`) starts from its parent's
trained weights (it `requires` the parent) and continues on fresh crops of 3 train photos.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..core.config import Config
from .base import ZooModel
from .diffusion import Diffusion, LatentDiffusion, UNet
from .flow import Glow
from .gan import GAN, DCGANDiscriminator, DCGANGenerator, ResNetGenerator, StyleGenerator
from .image_to_image import ESPCN, FSRCNN, VDSR, DnCNN, ImageToImage, KLAutoencoder
from .reconstruction import IMAGE_TO_IMAGE, holdout_source
from .transformer import TransGANGenerator
from .vae import VAE

UNCONDITIONAL = "unconditional"
TIERS = (UNCONDITIONAL, IMAGE_TO_IMAGE)


@dataclass(frozen=True)
class ZooEntry:
    name: str
    family: str  # GAN | VAE | flow | diffusion | transformer | image-to-image
    architecture: str
    upsampling: str  # the generator's last upsampling operation
    description: str
    build: Callable[..., ZooModel] = field(repr=False)  # build(cfg, **trained dependencies)
    seed: int = 0
    step_weight: float = 1.0
    requires: tuple[str, ...] = ()  # zoo models whose trained weights the builder needs
    twin_of: str | None = None
    tier: str = UNCONDITIONAL  # UNCONDITIONAL | IMAGE_TO_IMAGE (see the module docstring)
    finetune_of: str | None = None  # the trained model this one continues from


# Every GAN samples from an exponential moving average of its generator's weights with standing
# batch-norm statistics (`zoo.gan.GAN`). Measured at `cpu` (64 px, width 16, batch 16, 400 steps): the
# live generators oscillate from one checkpoint to the next (SWD to real crops 0.15-0.25, some
# collapsing), the EMA alone can average into a collapsed network, and EMA + standing statistics was
# the steadiest (dcgan_tconv SWD 0.13-0.19 at every 100 steps, relative diversity 0.73-0.77).
GAN_EMA_DECAY = 0.99


def _gan(generator, critic, objective: str, **kwargs) -> GAN:
    return GAN(generator, critic, objective, ema_decay=GAN_EMA_DECAY, standing_stats=True, **kwargs)


def _dcgan(mode: str, objective: str = "ns", lr_g: float = 2e-4):
    def build(cfg: Config):
        return _gan(DCGANGenerator(cfg.image_size, cfg.zoo.width, mode),
                    DCGANDiscriminator(cfg.image_size, cfg.zoo.width), objective, lr_g=lr_g)
    return build


def _resnet_sngan(cfg: Config):
    return _gan(ResNetGenerator(cfg.image_size, cfg.zoo.width),
                DCGANDiscriminator(cfg.image_size, cfg.zoo.width, sn=True), "hinge", lr_d=4e-4)


def _stylegan(cfg: Config):
    return _gan(StyleGenerator(cfg.image_size, cfg.zoo.width),
                DCGANDiscriminator(cfg.image_size, cfg.zoo.width), "ns", lr_g=1e-3 / 2, lr_d=1e-3 / 2)


def _transgan(cfg: Config):
    return _gan(TransGANGenerator(cfg.image_size, cfg.zoo.width),
                DCGANDiscriminator(cfg.image_size, cfg.zoo.width), "ns", lr_g=2e-4)


def _wgan_gp(cfg: Config):
    return _gan(DCGANGenerator(cfg.image_size, cfg.zoo.width, "nearest"),
                DCGANDiscriminator(cfg.image_size, cfg.zoo.width), "wgangp", lr_g=2e-4, lr_d=2e-4)


def _vae(beta: float):
    def build(cfg: Config):
        return VAE(cfg.image_size, cfg.zoo.width, beta=beta)
    return build


def _glow(cfg: Config):
    return Glow(cfg.image_size, cfg.zoo.width, depth=3)


def _ddpm(cfg: Config):
    return Diffusion(UNet(3, max(8, cfg.zoo.width // 2), mults=(1, 4, 4)), (3, cfg.image_size, cfg.image_size),
                     ddim_steps=cfg.zoo.ddim_steps)


def _ldm(cfg: Config, vae):
    return LatentDiffusion(vae, cfg.zoo.width, ddim_steps=cfg.zoo.ddim_steps)


def _i2i(net, degradation: str, lr: float, patch_fraction: float = 0.5):
    """Builder of an image-to-image model: `net(width)` behind `degradation`, sampling holdout photos."""
    def build(cfg: Config):
        return ImageToImage(net(cfg.zoo.width), degradation, cfg.image_size, holdout_source(cfg), lr=lr,
                            patch_fraction=patch_fraction)
    return build


def _finetune(parent: str, build_parent, lr_scale: float = 1 / 3):
    """Builder of a fine-tuned variant: the parent's design with its trained weights, a lower rate."""
    def build(cfg: Config, **trained):
        model = build_parent(cfg)
        model.load_state_dict(trained[parent].state_dict())
        model.lr *= lr_scale
        return model
    return build


_SR_PIXELSHUFFLE = _i2i(ESPCN, "sr2", lr=3e-3)
_DNCNN = _i2i(DnCNN, "noise0.2", lr=1e-3)
_AE_KL = _i2i(KLAutoencoder, "identity", lr=2e-3, patch_fraction=0.25)  # 1/4-size patches: 4x cheaper steps
_I2I = IMAGE_TO_IMAGE


_ENTRIES = (
    ZooEntry("dcgan_tconv", "GAN", "DCGAN", "transposed conv",
             "DCGAN, transposed-convolution upsampling (4x4, stride 2), non-saturating loss",
             _dcgan("tconv"), step_weight=2.0),
    ZooEntry("dcgan_tconv_seed1", "GAN", "DCGAN", "transposed conv",
             "seed twin of dcgan_tconv", _dcgan("tconv"), seed=1, twin_of="dcgan_tconv", step_weight=2.0),
    ZooEntry("dcgan_nearest", "GAN", "DCGAN", "nearest + conv",
             "DCGAN design, nearest-neighbour x2 then 3x3 convolution", _dcgan("nearest"), step_weight=2.0),
    ZooEntry("dcgan_bilinear", "GAN", "DCGAN", "bilinear + conv",
             "DCGAN design, bilinear x2 then 3x3 convolution", _dcgan("bilinear"), step_weight=2.0),
    # at the generator rate 2e-4 it stayed dark and grid-like for 400 steps (SWD 0.23-0.31 at `cpu`);
    # at 4e-4 it reached 0.15 by 400-500 steps
    ZooEntry("dcgan_pixelshuffle", "GAN", "DCGAN", "pixel shuffle",
             "DCGAN design, 3x3 convolution to 4x channels then pixel shuffle (sub-pixel conv); "
             "generator rate 4e-4", _dcgan("pixelshuffle", lr_g=4e-4), step_weight=2.5),
    ZooEntry("lsgan_tconv", "GAN", "DCGAN", "transposed conv",
             "the dcgan_tconv design trained with the least-squares (LSGAN) objective",
             _dcgan("tconv", "lsgan"), step_weight=2.0),
    ZooEntry("wgangp_nearest", "GAN", "DCGAN", "nearest + conv",
             "the dcgan_nearest design trained with WGAN-GP (gradient penalty 10)",
             _wgan_gp, step_weight=2.0),
    ZooEntry("sngan_resnet", "GAN", "ResNet SNGAN", "nearest + conv (residual)",
             "ResNet generator (nearest-upsampling residual blocks), spectrally normalised CNN critic, hinge loss", _resnet_sngan,
             step_weight=1.25),
    ZooEntry("stylegan_mini", "GAN", "StyleGAN-like", "bilinear + modulated conv",
             "mapping MLP, learned constant, modulated/demodulated convs, noise inputs, bilinear x2",
             _stylegan, step_weight=2.0),
    ZooEntry("transgan", "transformer", "TransGAN-like", "pixel shuffle (tokens)",
             "transformer blocks over 8x8 and 16x16 token grids, pixel-shuffle upsampling, conv critic",
             _transgan, step_weight=1.5),
    ZooEntry("vae", "VAE", "conv VAE", "transposed conv",
             "convolutional VAE, 4-channel latent at 1/8 resolution, beta = 1", _vae(1.0), step_weight=1.5),
    ZooEntry("vae_seed1", "VAE", "conv VAE", "transposed conv",
             "seed twin of vae", _vae(1.0), seed=1, step_weight=1.5, twin_of="vae"),
    ZooEntry("beta_vae", "VAE", "conv VAE", "transposed conv",
             "the vae architecture with beta = 4", _vae(4.0), step_weight=1.5),
    ZooEntry("glow", "flow", "Glow-like", "none (invertible squeeze)",
             "two-scale Glow: actnorm, invertible 1x1 conv, affine coupling; temperature 0.7",
             _glow, step_weight=1.0),
    ZooEntry("ddpm", "diffusion", "DDPM U-Net", "nearest + conv",
             "pixel-space DDPM, small U-Net, eps-prediction, T=1000, sampled with DDIM", _ddpm,
             step_weight=0.6),
    ZooEntry("ldm", "diffusion", "latent DDPM", "transposed conv (VAE decoder)",
             "DDPM in the latent space of `vae`, decoded by vae's decoder", _ldm,
             requires=("vae",), step_weight=1.5),
    # the image-to-image tier: trained on train-split crops, sampled on holdout photos
    ZooEntry("sr_pixelshuffle", "image-to-image", "ESPCN x2 SR", "pixel shuffle",
             "x2 super-resolution: convolutions at low resolution, conv to 12 channels, pixel shuffle (L1)",
             _SR_PIXELSHUFFLE, step_weight=6.0, tier=_I2I),
    ZooEntry("sr_pixelshuffle_seed1", "image-to-image", "ESPCN x2 SR", "pixel shuffle",
             "seed twin of sr_pixelshuffle", _SR_PIXELSHUFFLE, seed=1, step_weight=6.0, tier=_I2I,
             twin_of="sr_pixelshuffle"),
    ZooEntry("sr_pixelshuffle_ft", "image-to-image", "ESPCN x2 SR", "pixel shuffle",
             "sr_pixelshuffle fine-tuned on fresh crops of 3 train photos (1/3 of its rate)",
             _finetune("sr_pixelshuffle", _SR_PIXELSHUFFLE), seed=2, step_weight=1.5, tier=_I2I,
             requires=("sr_pixelshuffle",), finetune_of="sr_pixelshuffle"),
    ZooEntry("sr_tconv", "image-to-image", "FSRCNN x2 SR", "transposed conv",
             "x2 super-resolution: feature/shrink/map/expand at low resolution, 9x9 transposed conv of stride 2 (L1)",
             _i2i(FSRCNN, "sr2", lr=3e-3), step_weight=6.0, tier=_I2I),
    ZooEntry("sr_bicubic_cnn", "image-to-image", "VDSR-like x2 SR", "bicubic + residual CNN",
             "x2 super-resolution: bicubic upsampling, then a 4-layer CNN adds a residual at full resolution (L1)",
             _i2i(VDSR, "sr2", lr=1e-3), step_weight=2.0, tier=_I2I),
    ZooEntry("ae_kl", "image-to-image", "KL autoencoder (LDM first stage)", "nearest + conv",
             "a latent diffusion model's autoencoder, f=2, 4 latent channels, ResBlocks; L1 + 1e-6 KL; "
             "decodes the posterior mean", _AE_KL, step_weight=5.0, tier=_I2I),
    ZooEntry("ae_kl_seed1", "image-to-image", "KL autoencoder (LDM first stage)", "nearest + conv",
             "seed twin of ae_kl", _AE_KL, seed=1, step_weight=5.0, tier=_I2I, twin_of="ae_kl"),
    ZooEntry("denoise_dncnn", "image-to-image", "DnCNN denoiser", "none (residual, conv-BN-ReLU)",
             "Gaussian denoising, noise std 0.2 in [-1, 1] (25.5 on the 8-bit scale): 5-layer DnCNN, MSE",
             _DNCNN, step_weight=6.0, tier=_I2I),
    ZooEntry("denoise_dncnn_ft", "image-to-image", "DnCNN denoiser", "none (residual, conv-BN-ReLU)",
             "denoise_dncnn fine-tuned on fresh crops of 3 train photos (1/3 of its rate)",
             _finetune("denoise_dncnn", _DNCNN), seed=2, step_weight=1.5, tier=_I2I,
             requires=("denoise_dncnn",), finetune_of="denoise_dncnn"),
)

REGISTRY: dict[str, ZooEntry] = {e.name: e for e in _ENTRIES}


def entry(name: str) -> ZooEntry:
    if name not in REGISTRY:
        raise KeyError(f"no zoo model named {name!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[name]


def tier_models(names, tier: str) -> list[str]:
    """The models of `names` (in order) that belong to `tier` (one of TIERS)."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; choose one of {list(TIERS)}")
    return [n for n in names if entry(n).tier == tier]


def training_order(names) -> list[str]:
    """`names` with every model after the models it requires; a missing requirement is an error."""
    names = list(dict.fromkeys(names))
    for name in names:
        for dep in entry(name).requires:
            if dep not in names:
                raise ValueError(f"zoo model {name!r} needs {dep!r} in the same zoo (cfg.zoo.models)")
    ordered: list[str] = []
    while len(ordered) < len(names):
        for name in names:
            if name not in ordered and all(d in ordered for d in entry(name).requires):
                ordered.append(name)
    return ordered
