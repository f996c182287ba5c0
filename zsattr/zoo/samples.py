"""Writing a model's samples as a source folder, and measuring whether training moved them.

The folder layout is the only thing evaluation reads (`zsattr.images.folders.scan_image_folder`):
`<root>/<model>/00000.png ...` plus a `metadata.json` sidecar, so a user's folder of images
from real generators drops in unchanged. PNG is lossless: the 8-bit quantisation is the only
change, the same one any generator's saved output undergoes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..core import atomic
from ..core.training import mark_finished

METADATA = "metadata.json"
WEIGHTS = "weights.pt"  # a unit's trained weights (a zoo model's state dict, a variant's adapters)
LOSS_HISTORY = "loss_history.json"


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8, rounded to nearest."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.permute(0, 2, 3, 1).numpy().astype(np.uint8)


@torch.no_grad()
def draw(model, n: int, seed: int, batch: int = 50) -> torch.Tensor:
    """`n` samples, reproducible from `seed`, drawn in batches to bound memory."""
    torch.manual_seed(seed)
    return torch.cat([model.sample(min(batch, n - i)).cpu() for i in range(0, n, batch)])


def write_pngs(images: torch.Tensor, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, array in enumerate(to_uint8(images)):
        path = folder / f"{i:05d}.png"
        with atomic.atomic_path(path) as tmp:
            Image.fromarray(array).save(tmp, format="PNG")
        paths.append(path)
    return paths


def write_metadata(folder: Path, metadata: dict) -> None:
    atomic.write_json(folder / METADATA, metadata)


def finish_unit(folder: Path, images: torch.Tensor, weights: dict, losses: dict, metadata: dict) -> dict:
    """Write a trained unit (a zoo model, a LoRA variant) into its work folder: samples as PNGs,
    weights, loss history, the metadata sidecar; marked finished last. Returns `metadata`."""
    write_pngs(images, folder / "images")
    atomic.torch_save(weights, folder / WEIGHTS)
    atomic.write_json(folder / LOSS_HISTORY, losses)
    write_metadata(folder / "images", metadata)
    mark_finished(folder, metadata)
    return metadata


def publish_unit(folder: Path, out_dir: Path, name: str, weights_dir: str) -> None:
    """Copy a finished unit into the artefact: `samples/<name>/` (PNGs, metadata, loss history)
    and `<weights_dir>/<name>.pt`."""
    shutil.copytree(folder / "images", out_dir / "samples" / name)
    shutil.copy2(folder / LOSS_HISTORY, out_dir / "samples" / name / LOSS_HISTORY)
    (out_dir / weights_dir).mkdir(exist_ok=True)
    shutil.copy2(folder / WEIGHTS, out_dir / weights_dir / f"{name}.pt")


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, size: int = 16, n_proj: int = 256,
                       seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance between two image sets (N, 3, H, W) in [-1, 1], compared
    at `size` x `size` (area-downsampled) over `n_proj` random unit directions.

    A family-independent check that a model was trained: GAN losses need not fall, but the
    distance from its samples to real crops must. Both sets are cut to the smaller size.
    """
    n = min(len(a), len(b))
    flat = [F.adaptive_avg_pool2d(x[:n].float().cpu(), size).flatten(1) for x in (a, b)]
    gen = torch.Generator().manual_seed(seed)
    proj = F.normalize(torch.randn(flat[0].shape[1], n_proj, generator=gen), dim=0)
    pa, pb = (torch.sort(x @ proj, dim=0)[0] for x in flat)
    return float((pa - pb).abs().mean())
