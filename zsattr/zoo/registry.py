"""The zoo's registry: model name -> how to build it, its family and upsampling, and why it
is in the zoo. A preset chooses which names it trains (`cfg.zoo.models`).

`step_weight` scales the preset's base step budget (`cfg.zoo.steps`) per model: cheap models
get more steps, the expensive pixel-space diffusion model fewer, so the whole zoo meets the
preset's time budget. `seed` offsets the preset seed; two entries that differ only in `seed`
are seed twins (same architecture, same data, different initialisation and batches).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..core.config import Config
from .base import ZooModel
from .diffusion import Diffusion, LatentDiffusion, UNet
from .flow import Glow
from .gan import GAN, DCGANDiscriminator, DCGANGenerator, ResNetGenerator, StyleGenerator
from .transformer import TransGANGenerator
from .vae import VAE


@dataclass(frozen=True)
class ZooEntry:
    name: str
    family: str  # GAN | VAE | flow | diffusion | transformer
    architecture: str
    upsampling: str  # the generator's last upsampling operation
    description: str
    build: Callable[..., ZooModel] = field(repr=False)  # build(cfg, **trained dependencies)
    seed: int = 0
    step_weight: float = 1.0
    requires: tuple[str, ...] = ()  # zoo models whose trained weights the builder needs
    twin_of: str | None = None


def _dcgan(mode: str, objective: str = "ns"):
    def build(cfg: Config):
        return GAN(DCGANGenerator(cfg.image_size, cfg.zoo.width, mode),
                   DCGANDiscriminator(cfg.image_size, cfg.zoo.width), objective)
    return build


def _resnet_sngan(cfg: Config):
    return GAN(ResNetGenerator(cfg.image_size, cfg.zoo.width),
               DCGANDiscriminator(cfg.image_size, cfg.zoo.width, sn=True), "hinge", lr_d=4e-4)


def _stylegan(cfg: Config):
    return GAN(StyleGenerator(cfg.image_size, cfg.zoo.width),
               DCGANDiscriminator(cfg.image_size, cfg.zoo.width), "ns", lr_g=1e-3 / 2, lr_d=1e-3 / 2)


def _transgan(cfg: Config):
    return GAN(TransGANGenerator(cfg.image_size, cfg.zoo.width),
               DCGANDiscriminator(cfg.image_size, cfg.zoo.width), "ns", lr_g=2e-4)


def _wgan_gp(cfg: Config):
    return GAN(DCGANGenerator(cfg.image_size, cfg.zoo.width, "nearest"),
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


_ENTRIES = (
    ZooEntry("dcgan_tconv", "GAN", "DCGAN", "transposed conv",
             "DCGAN, transposed-convolution upsampling (4x4, stride 2), non-saturating loss",
             _dcgan("tconv")),
    ZooEntry("dcgan_tconv_seed1", "GAN", "DCGAN", "transposed conv",
             "seed twin of dcgan_tconv", _dcgan("tconv"), seed=1, twin_of="dcgan_tconv"),
    ZooEntry("dcgan_nearest", "GAN", "DCGAN", "nearest + conv",
             "DCGAN design, nearest-neighbour x2 then 3x3 convolution", _dcgan("nearest")),
    ZooEntry("dcgan_bilinear", "GAN", "DCGAN", "bilinear + conv",
             "DCGAN design, bilinear x2 then 3x3 convolution", _dcgan("bilinear")),
    ZooEntry("dcgan_pixelshuffle", "GAN", "DCGAN", "pixel shuffle",
             "DCGAN design, 3x3 convolution to 4x channels then pixel shuffle (sub-pixel conv)",
             _dcgan("pixelshuffle")),
    ZooEntry("lsgan_tconv", "GAN", "DCGAN", "transposed conv",
             "the dcgan_tconv design trained with the least-squares (LSGAN) objective",
             _dcgan("tconv", "lsgan")),
    ZooEntry("wgangp_nearest", "GAN", "DCGAN", "nearest + conv",
             "the dcgan_nearest design trained with WGAN-GP (gradient penalty 10)",
             _wgan_gp, step_weight=0.6),
    ZooEntry("sngan_resnet", "GAN", "ResNet SNGAN", "nearest + conv (residual)",
             "ResNet generator (nearest-upsampling residual blocks), spectrally normalised CNN critic, hinge loss", _resnet_sngan,
             step_weight=0.6),
    ZooEntry("stylegan_mini", "GAN", "StyleGAN-like", "bilinear + modulated conv",
             "mapping MLP, learned constant, modulated/demodulated convs, noise inputs, bilinear x2",
             _stylegan, step_weight=0.6),
    ZooEntry("transgan", "transformer", "TransGAN-like", "pixel shuffle (tokens)",
             "transformer blocks over 8x8 and 16x16 token grids, pixel-shuffle upsampling, conv critic",
             _transgan, step_weight=0.6),
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
)

REGISTRY: dict[str, ZooEntry] = {e.name: e for e in _ENTRIES}


def entry(name: str) -> ZooEntry:
    if name not in REGISTRY:
        raise KeyError(f"no zoo model named {name!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[name]


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
