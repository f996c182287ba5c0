"""Image-to-image generators: models that take a real photo and return a photo-like image.

The paper's test set has image-to-image GANs (StarGAN, AttGAN), and much of today's generated
imagery passes through such networks: the autoencoder of a latent diffusion model, a
super-resolver, a denoiser. Their outputs are close to real photos, so their fingerprints are
subtle: the realistic case for attribution, next to the zoo's unconditional generators.

A model here is a `Translator` (the network) behind a `Degradation` (what the network is
given instead of the clean photo), trained to give back the clean photo:

- `sr2`: x2 super-resolution; the input is an antialiased bicubic x2 downsample (the usual
  SR benchmark degradation), stored as an 8-bit image;
- `noise<s>`: denoising; the input is the photo plus Gaussian noise of std `s` (in [-1, 1]
  units), clipped and stored as an 8-bit image;
- `identity`: reconstruction (an autoencoder's encode-decode).

Designs (the trait a fingerprint sees is each one's last upsampling or output operation):
`ESPCN` (pixel shuffle), `FSRCNN` (transposed conv), `VDSR` (bicubic, then a residual CNN at
full resolution), `KLAutoencoder` (a latent diffusion model's first stage, nearest + conv
decoder), `DnCNN` (a residual denoiser).

As super-resolvers and denoisers are usually trained, each step takes one random patch per
crop, half the image size (a quarter for the autoencoder): convolutions are
translation-equivariant, so the full-size evaluation sees the same network, and a step costs a
quarter (a sixteenth).

`sample(n)` is what the zoo's interface asks of every model: here it translates `n` photo
crops from the model's `source` (the holdout photos, given by the builder), so drawing
samples means "apply the model to photos it never saw".
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .base import ZooModel, adam, step

MIN_PATCH = 16  # training patches are a fraction of the image size, but never smaller than this


def quantize(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] image -> the nearest 8-bit level (what a saved input image holds)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


class Degradation:
    """What a model is given instead of the clean photo: `sr2`, `noise<std>` or `identity`."""

    def __init__(self, kind: str):
        self.kind = kind
        if kind == "sr2" or kind == "identity":
            self.noise_std = 0.0
        elif kind.startswith("noise"):
            self.noise_std = float(kind[len("noise"):])
        else:
            raise ValueError(f"unknown degradation {kind!r}; use 'sr2', 'noise<std>' or 'identity'")

    @torch.no_grad()
    def __call__(self, clean: torch.Tensor) -> torch.Tensor:
        """Noise (if any) comes from torch's global RNG, which the training driver seeds per step."""
        if self.kind == "identity":
            return clean
        if self.kind == "sr2":
            return quantize(F.interpolate(clean, scale_factor=0.5, mode="bicubic", antialias=True,
                                          align_corners=False))
        return quantize(clean + self.noise_std * torch.randn_like(clean))

    def baseline(self, degraded: torch.Tensor) -> torch.Tensor:
        """The no-learning answer at full size (bicubic upsampling, the noisy image itself), so a
        model's PSNR can be set against what it had to beat."""
        if self.kind == "sr2":
            return F.interpolate(degraded, scale_factor=2, mode="bicubic", align_corners=False).clamp(-1, 1)
        return degraded


class Translator(nn.Module):
    """A network from degraded input to image; `loss_terms` is L1 to the clean target unless a
    design adds terms (the autoencoder's KL)."""

    def loss_terms(self, x: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"l1": F.l1_loss(self(x), target)}


def _convs(c_in: int, width: int, n: int, act: Callable[[], nn.Module]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(c_in if i == 0 else width, width, 3, 1, 1), act()]
    return layers


class ESPCN(Translator):
    """Shi et al. 2016: convolutions at low resolution, then one conv to 4x3 channels and a
    pixel shuffle (sub-pixel convolution) to twice the size."""

    def __init__(self, width: int, depth: int = 3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 5, 1, 2), nn.ReLU(),
                                      *_convs(width, width, depth - 1, nn.ReLU))
        self.upsample = nn.Sequential(nn.Conv2d(width, 3 * 4, 3, 1, 1), nn.PixelShuffle(2))

    def forward(self, x):
        return self.upsample(self.features(x))


class FSRCNN(Translator):
    """Dong et al. 2016: feature extraction, shrink (1x1), mapping (3x3), expand (1x1) at low
    resolution, then a 9x9 transposed convolution of stride 2 as the last layer."""

    def __init__(self, width: int, depth: int = 3):
        super().__init__()
        d, s = 2 * width, max(4, width // 2)
        self.features = nn.Sequential(nn.Conv2d(3, d, 5, 1, 2), nn.PReLU(d), nn.Conv2d(d, s, 1), nn.PReLU(s),
                                      *[m for _ in range(depth) for m in (nn.Conv2d(s, s, 3, 1, 1), nn.PReLU(s))],
                                      nn.Conv2d(s, d, 1), nn.PReLU(d))
        self.upsample = nn.ConvTranspose2d(d, 3, 9, 2, 4, output_padding=1)

    def forward(self, x):
        return self.upsample(self.features(x))


class VDSR(Translator):
    """Kim et al. 2016 (shallower): bicubic x2 upsampling, then a CNN at full resolution that
    adds a residual to it."""

    def __init__(self, width: int, depth: int = 4):
        super().__init__()
        self.body = nn.Sequential(*_convs(3, width, depth - 1, nn.ReLU), nn.Conv2d(width, 3, 3, 1, 1))

    def forward(self, x):
        up = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
        return up + self.body(up)


class DnCNN(Translator):
    """Zhang et al. 2017 (shallower): conv-BN-ReLU layers predict the noise, which is subtracted
    from the input (residual learning)."""

    def __init__(self, width: int, depth: int = 5):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, 1, 1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        self.body = nn.Sequential(*layers, nn.Conv2d(width, 3, 3, 1, 1))

    def forward(self, x):
        return x - self.body(x)

    def loss_terms(self, x, target):  # DnCNN's own objective: squared error
        return {"mse": F.mse_loss(self(x), target)}


def group_norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, c), c)  # 8 groups where the width allows (LDM uses 32)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice with an identity skip (the LDM autoencoder's block)."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(group_norm(c), nn.SiLU(), nn.Conv2d(c, c, 3, 1, 1),
                                  group_norm(c), nn.SiLU(), nn.Conv2d(c, c, 3, 1, 1))

    def forward(self, x):
        return x + self.body(x)


class KLAutoencoder(Translator):
    """A latent diffusion model's first stage (Rombach et al. 2022), small: strided-conv
    encoder down by 2**`down` to a Gaussian latent of `z_channels`, a decoder of ResBlocks and
    nearest + conv upsampling. f = 2 by default (LDM trains f = 1 ... 32): measured at `cpu`
    (width 16), an f = 4 one reached 19 dB on 16 px patches and 24 dB on 32 px patches within
    about a minute, f = 2 on 16 px patches 27-28 dB in 20 s.
    Loss as LDM's without its perceptual and adversarial terms: L1 plus a KL weight of 1e-6 on
    the summed KL (per pixel, `kl_weight * KL_sum / pixels`). Translating uses the posterior
    mean (a deterministic encode-decode)."""

    def __init__(self, width: int, down: int = 1, z_channels: int = 4, kl_weight: float = 1e-6):
        super().__init__()
        chs = [width * 2 ** i for i in range(down + 1)]
        enc: list[nn.Module] = [nn.Conv2d(3, chs[0], 3, 1, 1)]
        for i in range(down):
            enc += [ResBlock(chs[i]), nn.Conv2d(chs[i], chs[i + 1], 3, 2, 1)]
        enc += [ResBlock(chs[-1]), group_norm(chs[-1]), nn.SiLU(),
                nn.Conv2d(chs[-1], 2 * z_channels, 3, 1, 1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(z_channels, chs[-1], 3, 1, 1), ResBlock(chs[-1])]
        for i in reversed(range(down)):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(chs[i + 1], chs[i], 3, 1, 1),
                    ResBlock(chs[i])]
        dec += [group_norm(chs[0]), nn.SiLU(), nn.Conv2d(chs[0], 3, 3, 1, 1)]
        self.decoder = nn.Sequential(*dec)
        self.down, self.kl_weight = down, kl_weight

    def posterior(self, x):
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30, 20)

    def forward(self, x):
        return self.decoder(self.posterior(x)[0])

    def loss_terms(self, x, target):
        mean, logvar = self.posterior(x)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum() / target.numel()
        return {"l1": F.l1_loss(self.decoder(z), target), "kl": self.kl_weight * kl}


class ImageToImage(ZooModel):
    """A `Translator` trained to undo a `Degradation` of real crops (Adam, constant rate).

    `source(n, seed)` gives `n` clean photo crops in [-1, 1] for `sample`; the zoo's builders
    pass the holdout photos (see `zsattr.zoo.reconstruction.holdout_source`)."""

    generator_modules = ("net",)
    monitored_losses = ("loss",)

    def __init__(self, net: Translator, degradation: str, image_size: int,
                 source: Callable[[int, int], torch.Tensor] | None = None, lr: float = 1e-3,
                 patch_fraction: float = 0.5):
        super().__init__()
        self.net, self.degradation = net, Degradation(degradation)
        self.image_size, self.source, self.lr = image_size, source, lr
        patch = max(MIN_PATCH, round(image_size * patch_fraction))
        self.patch = min(image_size, patch + patch % 2)  # even, so a x2 downsample is exact

    def make_optimizers(self):
        return {"net": adam(self.parameters(), self.lr, (0.9, 0.999))}

    def _patches(self, batch: torch.Tensor) -> torch.Tensor:
        """One random `patch` x `patch` window per image (from torch's global RNG)."""
        n, _, h, w = batch.shape
        if self.patch >= min(h, w):
            return batch
        ys = torch.randint(h - self.patch + 1, (n,)).tolist()
        xs = torch.randint(w - self.patch + 1, (n,)).tolist()
        return torch.stack([b[:, y:y + self.patch, x:x + self.patch] for b, y, x in zip(batch, ys, xs)])

    def train_step(self, batch, opts):
        clean = self._patches(batch)
        terms = self.net.loss_terms(self.degradation(clean), clean)
        loss = sum(terms.values())
        step(opts["net"], loss)
        return {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}

    @torch.no_grad()
    def translate(self, degraded: torch.Tensor, batch: int = 64) -> torch.Tensor:
        """Outputs (N, 3, H, W) in [-1, 1] for degraded inputs, in eval mode, in batches."""
        was_training = self.training
        self.eval()
        out = torch.cat([self.net(degraded[i:i + batch].to(self.device)).clamp(-1, 1).cpu()
                         for i in range(0, len(degraded), batch)])
        self.train(was_training)
        return out

    @torch.no_grad()
    def sample(self, n):
        """The model's outputs on `n` crops of its source photos (crops and noise from torch's RNG)."""
        if self.source is None:
            raise ValueError("this image-to-image model has no source of photos to translate; build it with "
                             "zsattr.zoo.build.build_model, or call translate() on inputs of your own")
        seed = int(torch.randint(2**31 - 1, ()).item())
        return self.translate(self.degradation(self.source(n, seed)))
