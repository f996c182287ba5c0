"""A small TransGAN-style generator: transformer blocks over a grid of tokens, upsampled by
pixel shuffle. The paper's "emerging" test models include TransGAN, Styleformer and
StyleSwin, whose upsampling happens on token grids rather than in convolutions.

Self-attention runs at the two coarsest grids only (as TransGAN restricts full attention to low
resolutions for cost); finer grids get token-wise MLPs after each pixel-shuffle. The critic is
the DCGAN convolutional one (TransGAN's own ViT critic is slower to train at this budget).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import n_doublings
from .gan import Z_DIM


class Block(nn.Module):
    """Pre-norm transformer block: LN -> multi-head self-attention -> LN -> MLP, residual."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TokenMLP(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        return x + self.mlp(self.norm(x))


class TransGANGenerator(nn.Module):
    """z -> 8x8 tokens (+ position embeddings) -> [blocks, pixel-shuffle x2] ... -> RGB per token."""

    def __init__(self, image_size: int, width: int, heads: int = 4, attn_stages: int = 2):
        super().__init__()
        n = n_doublings(image_size, base=8)
        self.dims = [width * min(8, 2 ** (n - i)) for i in range(n + 1)]  # 8x8 ... full
        d0 = self.dims[0]
        self.fc = nn.Linear(Z_DIM, 64 * d0)
        self.pos = nn.ParameterList([nn.Parameter(torch.randn(1, (8 * 2 ** i) ** 2, self.dims[i]) * 0.02)
                                     for i in range(n + 1)])
        self.stages = nn.ModuleList([
            Block(self.dims[i], heads if self.dims[i] % heads == 0 else 1) if i < attn_stages
            else TokenMLP(self.dims[i]) for i in range(n + 1)])
        # token-wise linear to 4x the next stage's width, then PixelShuffle(2)
        self.expand = nn.ModuleList([nn.Linear(self.dims[i], 4 * self.dims[i + 1]) for i in range(n)])
        self.shuffle = nn.PixelShuffle(2)
        self.to_rgb = nn.Linear(self.dims[n], 3)

    def forward(self, z):
        b = z.shape[0]
        x = self.fc(z).view(b, 64, self.dims[0])
        side = 8
        for i, stage in enumerate(self.stages):
            x = stage(x + self.pos[i])
            if i < len(self.expand):
                grid = self.expand[i](x).transpose(1, 2).reshape(b, -1, side, side)
                side *= 2
                x = self.shuffle(grid).flatten(2).transpose(1, 2)
        img = self.to_rgb(x).transpose(1, 2).reshape(b, 3, side, side)
        return torch.tanh(img)
