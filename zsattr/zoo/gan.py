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

import copy
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
        self.noise_strength = nn.Parameter(torch.zeros(1, c_out, 1, 1))  # StyleGAN2 starts it at 0

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
        for m in self.mapping:  # variance-preserving, as StyleGAN's equalised learning rate makes it:
            if isinstance(m, nn.Linear):  # with PyTorch's default init w shrank ~0.1x, styles hardly
                nn.init.kaiming_normal_(m.weight, a=0.2)  # depended on z and the generator collapsed
                nn.init.zeros_(m.bias)
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


def ema_decay_at(decay: float, updates: int) -> float:
    """The EMA decay used for update number `updates` (0-based): `decay`, warmed up as
    (1 + t) / (10 + t) so the average forgets the random initialisation early in short runs."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


@torch.no_grad()
def ema_update(ema: nn.Module, live: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * live for parameters; buffers (batch-norm running
    statistics) are copied from `live`. Both modules must have the same structure."""
    ema_params, live_params = dict(ema.named_parameters()), dict(live.named_parameters())
    if ema_params.keys() != live_params.keys():
        raise ValueError("EMA and live generator differ in structure")
    for name, p in ema_params.items():
        p.lerp_(live_params[name].detach(), 1.0 - decay)
    live_buffers = dict(live.named_buffers())
    for name, b in ema.named_buffers():
        b.copy_(live_buffers[name])


@torch.no_grad()
def recalibrate_batch_norm(net: nn.Module, z_dim: int, batches: int, batch: int, seed: int) -> None:
    """Replace the running statistics of every batch norm in `net` by their plain average over
    `batches` batches of `batch` latents drawn from a private generator seeded by `seed`
    ("standing statistics", as in BigGAN). The running averages kept during training lag behind
    weights that move every step, and for an EMA generator they belong to other weights; eval-mode
    samples then drift from what the network makes. Deterministic; leaves torch's global RNG alone."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = net.training
    net.train()
    device = next(net.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        net(torch.randn(batch, z_dim, generator=gen).to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    net.train(was_training)


class GAN(ZooModel):
    """Any generator/critic pair, one critic step per generator step, Adam(0.5, 0.999)
    (Adam(0, 0.9) for hinge and WGAN-GP).

    Stabilisers, each off by default: `r1` adds (r1 / 2) E||grad D(x_real)||^2 to the critic's
    loss (Mescheder et al. 2018); `ema_decay` > 0 keeps `generator_ema`, an exponential moving
    average of the generator's weights (see `ema_decay_at`), updated after every generator step.
    The EMA is a sub-module, so it is in `state_dict()` and in every checkpoint (exact resume
    holds). `finish_training()` copies it into `generator` once zoo training is over and, with
    `standing_stats`, recomputes the generator's batch-norm statistics
    (`recalibrate_batch_norm`), so the trained model samples from the average and everything
    downstream (saved weights, LoRA adapters on `generator`) sees one network. After that the EMA
    is frozen (`training_finished`, also in the state dict).
    """

    generator_modules = ("generator",)
    monitored_losses = ()  # adversarial losses need not fall; progress is checked by SWD
    STANDING_BATCHES, STANDING_BATCH = 8, 64

    def __init__(self, generator: nn.Module, critic: nn.Module, objective: str = "ns",
                 lr_g: float = 2e-4, lr_d: float = 2e-4, gp_weight: float = 10.0,
                 ema_decay: float = 0.0, r1: float = 0.0, standing_stats: bool = False,
                 betas: tuple[float, float] | None = None):
        super().__init__()
        self.generator, self.critic = generator, critic
        self.objective, self.lr_g, self.lr_d, self.gp_weight = objective, lr_g, lr_d, gp_weight
        self.r1, self.ema_decay, self.standing_stats, self.betas = r1, ema_decay, standing_stats, betas
        critic_loss(objective, torch.zeros(1), torch.zeros(1))  # fail early on a bad name
        if ema_decay > 0:
            self.generator_ema = copy.deepcopy(generator).requires_grad_(False)
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("training_finished", torch.zeros((), dtype=torch.bool))

    def make_optimizers(self):
        betas = self.betas or ((0.0, 0.9) if self.objective in ("hinge", "wgangp") else (0.5, 0.999))
        return {"g": adam(self.generator.parameters(), self.lr_g, betas),
                "d": adam(self.critic.parameters(), self.lr_d, betas)}

    def update_ema(self) -> None:
        """One EMA step, during zoo training only: not after `finish_training`, and not once the
        generator's structure changed (LoRA adapters wrap its layers for fine-tuning,
        `zoo.variants`): a fine-tune samples from its adapted `generator` and leaves the EMA be."""
        if self.ema_decay <= 0 or bool(self.training_finished):
            return
        if [n for n, _ in self.generator.named_parameters()] != [n for n, _ in self.generator_ema.named_parameters()]:
            return
        ema_update(self.generator_ema, self.generator, ema_decay_at(self.ema_decay, int(self.ema_updates)))
        self.ema_updates += 1

    @torch.no_grad()
    def finish_training(self, seed: int = 0) -> None:
        """Sample from the EMA from now on (copied into `generator`, then frozen), with standing
        batch-norm statistics if so built. Idempotent: a finished model is left as it is."""
        if bool(self.training_finished):
            return
        if self.ema_decay > 0:
            self.generator.load_state_dict(self.generator_ema.state_dict())
        if self.standing_stats:
            recalibrate_batch_norm(self.generator, Z_DIM, self.STANDING_BATCHES, self.STANDING_BATCH, seed)
        self.training_finished.fill_(True)

    def train_step(self, batch, opts):
        z = torch.randn(batch.shape[0], Z_DIM, device=batch.device)
        fake = self.generator(z)
        real = batch.detach().requires_grad_(True) if self.r1 > 0 else batch
        d_real = self.critic(real)
        loss_d = critic_loss(self.objective, d_real, self.critic(fake.detach()))
        out = {}
        if self.objective == "wgangp":
            loss_d = loss_d + self.gp_weight * gradient_penalty(self.critic, batch, fake.detach())
        if self.r1 > 0:
            grad, = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            penalty = grad.flatten(1).pow(2).sum(1).mean()
            loss_d = loss_d + 0.5 * self.r1 * penalty
            out["r1"] = penalty.item()
        step(opts["d"], loss_d)
        loss_g = generator_loss(self.objective, self.critic(fake))
        step(opts["g"], loss_g)
        self.update_ema()
        return {"d": loss_d.item(), "g": loss_g.item(), **out}

    @torch.no_grad()
    def sample(self, n):
        was_training = self.training
        self.eval()
        out = self.generator(torch.randn(n, Z_DIM, device=self.device))
        self.train(was_training)
        return out
