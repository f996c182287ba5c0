"""Variational autoencoders (the paper's VanillaVAE / BetaVAE family) with a small spatial
latent, so the latent diffusion model can run in the same latent space and reuse the decoder.

Encoder: strided convolutions down by 8; decoder: transposed convolutions up by 8 (as in the
PyTorch-VAE models the paper used). Loss: summed squared error (a Gaussian likelihood) plus
`beta` times the KL to N(0, I), per image. beta = 1 is the VAE, beta > 1 the beta-VAE.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import ZooModel, adam, step

LATENT_CHANNELS = 4
DOWN = 3  # the latent is image_size / 2**DOWN on a side


class Encoder(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        ch = [3, width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for i in range(DOWN):
            layers += [nn.Conv2d(ch[i], ch[i + 1], 4, 2, 1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(ch[-1], 2 * LATENT_CHANNELS, 3, 1, 1)

    def forward(self, x):
        mu, logvar = self.head(self.features(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)


class Decoder(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        ch = [4 * width, 2 * width, width]
        layers: list[nn.Module] = [nn.Conv2d(LATENT_CHANNELS, ch[0], 3, 1, 1), nn.LeakyReLU(0.2)]
        for i in range(DOWN - 1):
            layers += [nn.ConvTranspose2d(ch[i], ch[i + 1], 4, 2, 1), nn.BatchNorm2d(ch[i + 1]),
                       nn.LeakyReLU(0.2)]
        layers += [nn.ConvTranspose2d(ch[-1], 3, 4, 2, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return torch.tanh(self.net(z))


class VAE(ZooModel):
    generator_modules = ("decoder",)
    monitored_losses = ("loss",)

    def __init__(self, image_size: int, width: int, beta: float = 1.0, lr: float = 1e-3):
        super().__init__()
        if image_size % 2 ** DOWN:
            raise ValueError(f"the VAE needs image_size divisible by {2 ** DOWN}, got {image_size}")
        self.encoder, self.decoder = Encoder(width), Decoder(width)
        self.latent_shape = (LATENT_CHANNELS, image_size // 2 ** DOWN, image_size // 2 ** DOWN)
        self.beta, self.lr = beta, lr

    def make_optimizers(self):
        return {"vae": adam(self.parameters(), self.lr, (0.9, 0.999))}

    def train_step(self, batch, opts):
        mu, logvar = self.encoder(batch)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = F.mse_loss(self.decoder(z), batch, reduction="sum") / batch.shape[0]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / batch.shape[0]
        loss = recon + self.beta * kl
        step(opts["vae"], loss)
        return {"loss": loss.item(), "recon": recon.item(), "kl": kl.item()}

    @torch.no_grad()
    def encode_mean(self, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
        self.eval()
        return torch.cat([self.encoder(x[i:i + batch])[0] for i in range(0, len(x), batch)])

    @torch.no_grad()
    def sample(self, n):
        was_training = self.training
        self.eval()
        out = self.decoder(torch.randn(n, *self.latent_shape, device=self.device))
        self.train(was_training)
        return out
