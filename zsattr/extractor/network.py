"""The fingerprint extractor: a torchvision ResNet trained from scratch (weights=None;
nothing pretrained is available offline) on the spectrum of an image's noise residual, as the
input chain (`zsattr.fingerprint.chain`) makes it.

One forward pass returns both the class logits (for the cross-entropy over synthetic models)
and the pooled embedding that serves as the fingerprint (2048-d for ResNet-50). The authors'
wrapper ran the encoder twice per step; this one runs it once.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

BACKBONES = {"resnet18": 512, "resnet34": 512, "resnet50": 2048}
# The torchvision stem (7x7 stride-2 conv, stride-2 max-pool) shrinks a 64 px spectrum to 16 x 16
# before the first block and to 2 x 2 at the end, pooling away where the peaks are. The others
# keep more of that layout, at a higher cost per image (measured in notebook 04).
STEMS = ("standard", "no_maxpool", "stride1")


class FingerprintExtractor(nn.Module):
    def __init__(self, n_classes: int, backbone: str = "resnet50", in_channels: int = 3, stem: str = "standard"):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; choose one of {list(STEMS)}")
        if n_classes < 1:
            raise ValueError("n_classes must be >= 1")
        trunk = getattr(torchvision.models, backbone)(weights=None)
        if stem == "stride1":
            trunk.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        elif in_channels != 3:
            trunk.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        if stem != "standard":
            trunk.maxpool = nn.Identity()
        trunk.fc = nn.Identity()
        self.backbone_name, self.stem = backbone, stem
        self.trunk = trunk
        self.embedding_dim = BACKBONES[backbone]
        self.head = nn.Linear(self.embedding_dim, n_classes)
        # Channels-last: oneDNN's CPU convolutions run faster on NHWC (measured on a ResNet-50
        # training step at 64 px, batch 32, 2 threads: about 10 % less time). Values unchanged.
        self.trunk.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W), the input chain's output -> (logits (B, n_classes), embedding (B, D))."""
        embedding = self.trunk(x.contiguous(memory_format=torch.channels_last))
        return self.head(embedding), embedding

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Fingerprints of many inputs in eval mode, batch by batch, no autograd."""
        was_training = self.training
        self.eval()
        try:
            return torch.cat([self(x[i:i + batch_size])[1] for i in range(0, len(x), batch_size)])
        finally:
            self.train(was_training)
