"""Loading a folder of generated images (one sub-folder per model) into evaluation tensors.

Every method sees the same tensor: images float32 (N, 3, H, W) in [0, 1], an integer label per
image (its model's index in `names`), in a fixed order (models in the order asked for, files
sorted). Reading goes through `zsattr.images.folders`, so bad files are skipped, counted and
logged the same way everywhere, and a model folder left without a usable image is an error that
lists every problem. Images larger than `size` are centre-cropped (the paper's test-time input
is a centre crop, PAPER.md section 7) straight out of each file's decode, one file at a time, so
memory grows with the crops, not with the files; smaller ones are skipped, never upsampled
(resampling would forge the spectrum the methods look at).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from .folders import MAX_PIXELS, scan_image_folder
from .photos import to_tensor

log = logging.getLogger(__name__)


def to_8bit(images: torch.Tensor) -> torch.Tensor:
    """What saving as an 8-bit image does to images in [0, 1]: clamp, then round to steps of 1/255.

    Synthetic outputs stand in for generated images, which reach the world as 8-bit files; the
    rounding noise is white and, on a log spectrum, dominates the weakest bins, so a float
    output and its saved PNG do not have the same fingerprint."""
    return images.clamp(0, 1).mul(255).round().div(255)


def list_files(folder: str | Path, max_pixels: int | None = MAX_PIXELS) -> dict[str, list[str]]:
    """model -> its readable image files, as posix paths relative to the model's sub-folder."""
    scanned = scan_image_folder(folder, max_pixels=max_pixels)
    return {name: [p.relative_to(scanned.root / name).as_posix() for p in paths]
            for name, paths in scanned.sources.items()}


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central `size` x `size` window of an (H, W, 3) array."""
    h, w = image.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return image[top:top + size, left:left + size]


def load_images(folder: str | Path, names: Sequence[str] | None = None,
                files: Mapping[str, Sequence[str]] | None = None,
                size: int | None = None, max_pixels: int | None = MAX_PIXELS
                ) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """(images (N, 3, H, W) float32 in [0, 1], labels int64 (N,), model names).

    names: the model sub-folders to load, in label order (default: all, sorted).
    files: optional model -> file names (relative to the model folder) to restrict to, e.g.
           the "eval" part of `splits.image_split`; a listed file that is not readable is an error.
    size: centre-crop side; without it all images must already share one size.
    max_pixels: the pixel budget per file (`zsattr.images.folders.MAX_PIXELS`); larger files are skipped.
    """
    scanned = scan_image_folder(folder, min_size=size, max_pixels=max_pixels)
    names = list(names) if names is not None else sorted(scanned.sources)
    absent = [n for n in names if n not in scanned.sources]
    if absent:
        raise KeyError(f"no readable model folder(s) {absent} in {scanned.root}; found {sorted(scanned.sources)}")
    arrays, labels = [], []
    for label, name in enumerate(names):
        paths = {p.relative_to(scanned.root / name).as_posix(): p for p in scanned.sources[name]}
        wanted = sorted(paths) if files is None else [str(f) for f in files[name]]
        unknown = [f for f in wanted if f not in paths]
        if unknown:
            why = {p.path: p.reason for p in scanned.problems}
            examples = [f"{f} ({why[scanned.root / name / f]})" if scanned.root / name / f in why else f
                        for f in unknown[:3]]
            raise FileNotFoundError(f"{len(unknown)} listed file(s) of {name!r} are missing or unreadable "
                                    f"in {scanned.root / name}, e.g. {', '.join(examples)}")
        for rel in wanted:
            # a crop is a copy converted out of the decode, which is dropped before the next file
            arrays.append(scanned.load_centre_crop(paths[rel], size) if size is not None else scanned.load(paths[rel]))
            labels.append(label)
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"images in {scanned.root} have different sizes {sorted(shapes)[:4]}; pass size= "
                         "to centre-crop them to one size")
    if not arrays:
        raise ValueError(f"no images selected from {scanned.root}")
    log.info("loaded %d images of %d models from %s", len(arrays), len(names), scanned.root)
    return to_tensor(np.stack(arrays)), np.asarray(labels, dtype=np.int64), names
