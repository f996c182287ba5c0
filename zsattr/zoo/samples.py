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


def mean_pairwise_distance(images: torch.Tensor, size: int = 16) -> float:
    """Mean Euclidean distance between distinct pairs of images (N, 3, H, W) in [-1, 1],
    compared at `size` x `size` (area-downsampled, as in `sliced_wasserstein`), per pixel value
    (divided by the square root of the dimension, so it does not grow with `size`)."""
    flat = F.adaptive_avg_pool2d(images.float().cpu(), size).flatten(1)
    n = len(flat)
    if n < 2:
        raise ValueError("need at least two images for a pairwise distance")
    dist = torch.cdist(flat[None].double(), flat[None].double())[0]
    return float(dist.sum() / (n * (n - 1)) / flat.shape[1] ** 0.5)


def relative_diversity(images: torch.Tensor, reference: torch.Tensor, size: int = 16) -> float:
    """`mean_pairwise_distance` of `images` over that of `reference` (real crops): about 1 for
    samples as varied as real crops, near 0 for a collapsed generator (near-identical samples).
    Both sets are cut to the smaller size."""
    n = min(len(images), len(reference))
    return mean_pairwise_distance(images[:n], size) / mean_pairwise_distance(reference[:n], size)


def _random_features(images: torch.Tensor, seed: int) -> torch.Tensor:
    """Features of a fixed, untrained convolutional network (3 stride-2 3x3 convs with ReLU,
    16-32-32 channels, He-normal weights drawn from `seed`, global average pool): 32 numbers per
    image that respond to local texture and edges as well as colour."""
    gen = torch.Generator().manual_seed(seed)
    x = images.float().cpu()
    for c_in, c_out in ((3, 16), (16, 32), (32, 32)):
        w = torch.randn(c_out, c_in, 3, 3, generator=gen) * (2.0 / (c_in * 9)) ** 0.5
        x = F.relu(F.conv2d(x, w, stride=2, padding=1))
    return x.mean(dim=(2, 3)).double()


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def random_feature_distance(a: torch.Tensor, b: torch.Tensor, seed: int = 0) -> float:
    """Frechet distance between two image sets (N, 3, H, W) in [-1, 1] in the feature space of a
    fixed random network (`_random_features`): |mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^1/2),
    as FID but without a trained network (none can be downloaded here). Unlike the SWD at 16x16 it
    sees texture, so colour noise or blocky patterns with real colour statistics score far from
    real crops. Both sets are cut to the smaller size; small sets bias it upwards."""
    n = min(len(a), len(b))
    fa, fb = _random_features(a[:n], seed), _random_features(b[:n], seed)
    ca, cb = torch.cov(fa.T), torch.cov(fb.T)
    root_a = _sqrtm_psd(ca)
    cross = _sqrtm_psd(root_a @ cb @ root_a)
    return float((fa.mean(0) - fb.mean(0)).pow(2).sum() + torch.trace(ca + cb - 2 * cross))
