"""GANs of the zoo: DCGAN-style generators differing only in their upsampling layer, a
ResNet generator trained against a spectrally normalised critic (SNGAN), a small
StyleGAN-like generator, and the objectives they are trained with.

Why these: the paper's test set holds ProGAN/SNGAN/StyleGAN-family models, and the last-block
finding (PAPER.md Sec. 3) says the upsampling type of the last layers dominates the spectral
fingerprint. So three DCGANs share everything but the upsampler (transposed conv, nearest +
conv, bilinear + conv; a fourth uses pixel shuffle), and one shares the transposed-conv design
but is trained with a different objective (LSGAN), isolating the objective's effect.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import ZooModel, adam, n_doublings, step, upsample

Z_DIM = 64


def channel_plan(width: int, n: int, cap: int = 8) -> list[int]:
    """Channels at 4x4, 8x8, ..., full resolution: halving per doubling, from `cap * width`."""
    return [width * min(cap, 2 ** (n - i)) for i in range(n + 1)]


def dcgan_init(module: nn.Module) -> nn.Module:
    """DCGAN's initialisation: conv weights N(0, 0.02), batch-norm scales N(1, 0.02). With
    PyTorch's default (Kaiming-uniform) the transposed-conv generator collapsed to a fixed
    checkerboard within ~100 steps at the smoke size; with this it trains."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


class DCGANGenerator(nn.Module):
    """z -> 4x4 map -> n x2 stages (BN, ReLU, upsampler); the LAST layer is the upsampler
    straight to RGB (as in DCGAN), so its trace is not smoothed by anything after it."""

    def __init__(self, image_size: int, width: int, mode: str):
        super().__init__()
        n = n_doublings(image_size)
        ch = channel_plan(width, n)
        self.fc = nn.Linear(Z_DIM, ch[0] * 16)
        self.c0 = ch[0]
        layers: list[nn.Module] = []
        for i in range(n):
            c_out = ch[i + 1] if i < n - 1 else 3
            layers += [nn.BatchNorm2d(ch[i]), nn.ReLU(), upsample(mode, ch[i], c_out)]
        self.blocks = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.blocks(self.fc(z).view(-1, self.c0, 4, 4)))


class DCGANDiscriminator(nn.Module):
    """Strided 4x4 convolutions with LeakyReLU down to 4x4, then a linear score.
    No batch normalisation (WGAN-GP's penalty is per sample); `sn=True` wraps every layer in
    spectral normalisation (SNGAN's "standard CNN" critic)."""

    def __init__(self, image_size: int, width: int, sn: bool = False):
        super().__init__()
        n = n_doublings(image_size)
        ch = channel_plan(width, n)[::-1]  # full-res ... 4x4
        wrap = nn.utils.spectral_norm if sn else (lambda m: m)
        layers: list[nn.Module] = [wrap(nn.Conv2d(3, ch[1], 4, 2, 1)), nn.LeakyReLU(0.2)]
        for i in range(1, n):
            layers += [wrap(nn.Conv2d(ch[i], ch[i + 1], 4, 2, 1)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.fc = wrap(nn.Linear(ch[n] * 16, 1))
        if not sn:
            dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1)).squeeze(1)


class ResBlockUp(nn.Module):
    """SNGAN generator block: BN-ReLU-up(nearest)-conv-BN-ReLU-conv, plus an upsampled 1x1 skip."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
        self.conv1, self.conv2 = nn.Conv2d(c_in, c_out, 3, 1, 1), nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x):
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResNetGenerator(nn.Module):
    def __init__(self, image_size: int, width: int):
        super().__init__()
        n = n_doublings(image_size)
        ch = channel_plan(width, n, cap=4)
        self.c0 = ch[0]
        self.fc = nn.Linear(Z_DIM, ch[0] * 16)
        self.blocks = nn.Sequential(*[ResBlockUp(ch[i], ch[i + 1]) for i in range(n)])
        self.out = nn.Sequential(nn.BatchNorm2d(ch[n]), nn.ReLU(), nn.Conv2d(ch[n], 3, 3, 1, 1))

    def forward(self, z):
        return torch.tanh(self.out(self.blocks(self.fc(z).view(-1, self.c0, 4, 4))))


class ModulatedConv(nn.Module):
    """StyleGAN2's modulated convolution: the style scales input channels of the weight,
    which is then demodulated to unit norm per output channel; run as one grouped conv."""

    def __init__(self, c_in: int, c_out: int, k: int, w_dim: int, demod: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k) / math.sqrt(c_in * k * k))
        self.affine = nn.Linear(w_dim, c_in)
        nn.init.ones_(self.affine.bias)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.demod, self.pad = demod, k // 2

    def forward(self, x, w):
        b, c_in, h, wd = x.shape
        weight = self.weight[None] * self.affine(w)[:, None, :, None, None]
        if self.demod:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        out = F.conv2d(x.reshape(1, b * c_in, h, wd), weight.reshape(-1, c_in, *weight.shape[3:]),
                       padding=self.pad, groups=b)
        return out.view(b, -1, h, wd) + self.bias[None, :, None, None]


class StyleLayer(nn.Module):
    """Modulated 3x3 conv + per-pixel noise (learned per-channel strength) + LeakyReLU."""

    def __init__(self, c_in: int, c_out: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv(c_in, c_out, 3, w_dim)
        self.noise_strength = nn.Parameter(torch.full((1, c_out, 1, 1), 0.1))

    def forward(self, x, w):
        x = self.conv(x, w)
        noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device)
        return F.leaky_relu(x + self.noise_strength * noise, 0.2)


class StyleGenerator(nn.Module):
    """Mapping MLP z -> w; a learned 4x4 constant; per resolution bilinear x2 then a style
    layer; a modulated 1x1 toRGB (no demodulation) at the end."""

    def __init__(self, image_size: int, width: int, w_dim: int = Z_DIM, n_mapping: int = 4):
        super().__init__()
        n = n_doublings(image_size)
        ch = channel_plan(width, n, cap=4)
        mapping: list[nn.Module] = []
        for _ in range(n_mapping):
            mapping += [nn.Linear(w_dim, w_dim), nn.LeakyReLU(0.2)]
        self.mapping = nn.Sequential(*mapping)
        self.const = nn.Parameter(torch.randn(1, ch[0], 4, 4))
        self.layers = nn.ModuleList([StyleLayer(ch[0], ch[0], w_dim)] +
                                    [StyleLayer(ch[i], ch[i + 1], w_dim) for i in range(n)])
        self.to_rgb = ModulatedConv(ch[n], 3, 1, w_dim, demod=False)

    def forward(self, z):
        w = self.mapping(F.normalize(z, dim=1) * math.sqrt(z.shape[1]))
        x = self.layers[0](self.const.expand(z.shape[0], -1, -1, -1), w)
        for layer in self.layers[1:]:
            x = layer(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), w)
        return torch.tanh(self.to_rgb(x, w))


def critic_loss(objective: str, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    if objective == "ns":
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    if objective == "lsgan":
        return 0.5 * ((d_real - 1).pow(2).mean() + d_fake.pow(2).mean())
    if objective == "hinge":
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    if objective == "wgangp":
        return d_fake.mean() - d_real.mean()
    raise ValueError(f"unknown GAN objective {objective!r}")


def generator_loss(objective: str, d_fake: torch.Tensor) -> torch.Tensor:
    if objective == "ns":
        return F.softplus(-d_fake).mean()
    if objective == "lsgan":
        return 0.5 * (d_fake - 1).pow(2).mean()
    if objective in ("hinge", "wgangp"):
        return -d_fake.mean()
    raise ValueError(f"unknown GAN objective {objective!r}")


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: (||grad D(x_hat)|| - 1)^2 on random interpolates of real and fake."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


class GAN(ZooModel):
    """Any generator/critic pair, one critic step per generator step, Adam(0.5, 0.999)."""

    generator_modules = ("generator",)
    monitored_losses = ()  # adversarial losses need not fall; progress is checked by SWD

    def __init__(self, generator: nn.Module, critic: nn.Module, objective: str = "ns",
                 lr_g: float = 2e-4, lr_d: float = 2e-4, gp_weight: float = 10.0):
        super().__init__()
        self.generator, self.critic = generator, critic
        self.objective, self.lr_g, self.lr_d, self.gp_weight = objective, lr_g, lr_d, gp_weight
        critic_loss(objective, torch.zeros(1), torch.zeros(1))  # fail early on a bad name

    def make_optimizers(self):
        betas = (0.0, 0.9) if self.objective in ("hinge", "wgangp") else (0.5, 0.999)
        return {"g": adam(self.generator.parameters(), self.lr_g, betas),
                "d": adam(self.critic.parameters(), self.lr_d, betas)}

    def train_step(self, batch, opts):
        z = torch.randn(batch.shape[0], Z_DIM, device=batch.device)
        fake = self.generator(z)
        loss_d = critic_loss(self.objective, self.critic(batch), self.critic(fake.detach()))
        if self.objective == "wgangp":
            loss_d = loss_d + self.gp_weight * gradient_penalty(self.critic, batch, fake.detach())
        step(opts["d"], loss_d)
        loss_g = generator_loss(self.objective, self.critic(fake))
        step(opts["g"], loss_g)
        return {"d": loss_d.item(), "g": loss_g.item()}

    @torch.no_grad()
    def sample(self, n):
        was_training = self.training
        self.eval()
        out = self.generator(torch.randn(n, Z_DIM, device=self.device))
        self.train(was_training)
        return out
