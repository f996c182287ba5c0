"""Images a user hands the attribution tool: files or folders, any size, as extractor-sized crops.

Never a resize. Resampling rewrites the spectrum the fingerprint is made of (it moves and
smears the up-sampling peaks), so an image is cropped, never scaled. Two crop rules:
- "centre": the central S x S window (the paper's test-time input);
- "grid": up to `max_crops` non-overlapping S x S tiles spread evenly over the image; the image's
  fingerprint is then the mean of its tiles' normalised fingerprints (more of a large image).
An image smaller than S x S is skipped (upsampling it would forge a spectrum).

Reading follows the folder reader's rules (`zsattr.images.folders`: the same opener, format
allow-list and pixel budget `max_pixels`): files that are not images or cannot be decoded
(broken, truncated, too many pixels, a format off the list) are skipped, counted per reason and
logged; grayscale, palette, 16-bit and RGBA images become RGB. Each file is decoded once and only
its crops are converted and kept. A folder given as input is read recursively; hidden and tool
entries (`.*`, `__MACOSX`) are skipped and counted. A lossy file (JPEG, lossy WebP, found from
the bytes, not the suffix) is read but flagged `lossy`: JPEG's 8 x 8 block grid and quantisation
overwrite much of the high-frequency fingerprint, so its attribution is less reliable (notebook
07 measures by how much). Unlike the folder scan, a suffix that does not match the bytes (JPEG
bytes named .png) is not a skip here: the image is still read, with a warning, counted in
`ReadLog.mismatched` and flagged by its bytes, since a user asking about one image wants an
answer and the flag travels with it. Each file's SHA-256 is kept, so a gallery can recognise its
own enrolment images.

Large inputs stream: `iter_chunks` yields a bounded number of images at a time.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from .folders import (
    DECODE_ERRORS,
    HIDDEN,
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    NOT_AN_IMAGE,
    SIDECAR_SUFFIXES,
    is_hidden,
    is_lossy,
    open_image,
    read_crops,
    skip_reason,
    suffix_matches,
    too_small,
)
from .photos import to_tensor

log = logging.getLogger(__name__)

CROPS = ("centre", "grid")


def expand_paths(paths: Iterable[str | Path], read_log: ReadLog | None = None) -> list[Path]:
    """Files as given (in order), folders as their image files (recursive, sorted; sidecar files
    such as metadata.json left out; hidden and tool entries, `.*` and `__MACOSX`, left out and
    counted in `read_log`). A path that does not exist is a FileNotFoundError naming it."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if not p.is_file() or p.suffix.lower() in SIDECAR_SUFFIXES:
                    continue
                if any(is_hidden(part) for part in p.relative_to(path).parts):
                    if read_log is not None:
                        read_log.skip(p, HIDDEN, quiet=True)
                    continue
                out.append(p)
        else:
            out.append(path)
    return out


def crop_windows(height: int, width: int, size: int, rule: str, max_crops: int = 16) -> list[tuple[int, int]]:
    """Top-left corners of the crops of an image: the centre one, or up to `max_crops`
    non-overlapping tiles of the grid centred on the image, spread evenly over it."""
    if rule not in CROPS:
        raise ValueError(f"unknown crop rule {rule!r}; choose one of {CROPS}")
    if min(height, width) < size:
        raise ValueError(f"a {width}x{height} image has no {size}x{size} crop")
    if rule == "centre":
        return [((height - size) // 2, (width - size) // 2)]
    rows, cols = height // size, width // size
    top0, left0 = (height - rows * size) // 2, (width - cols * size) // 2
    tiles = [(top0 + r * size, left0 + c * size) for r in range(rows) for c in range(cols)]
    if len(tiles) > max_crops:
        tiles = [tiles[i] for i in np.linspace(0, len(tiles) - 1, max_crops).round().astype(int)]
    return tiles


@dataclass
class QueryChunk:
    """Readable images of one chunk: their crops, and which image each crop belongs to."""

    crops: torch.Tensor  # (M, 3, S, S) in [0, 1]
    owner: np.ndarray  # (M,) index into `paths`
    paths: list[Path]
    sha256: list[str]
    lossy: list[bool]


@dataclass
class ReadLog:
    """What was skipped (reason -> count, and each file with its reason) over a whole read."""

    skipped: Counter = field(default_factory=Counter)
    skipped_files: list[tuple[Path, str]] = field(default_factory=list)
    lossy: int = 0
    mismatched: int = 0  # read although the suffix does not match the bytes

    def skip(self, path: Path, reason: str, quiet: bool = False) -> None:
        self.skipped[reason] += 1
        self.skipped_files.append((path, reason))
        (log.info if quiet else log.warning)("skipping %s: %s", path, reason)

    def summary(self) -> str:
        text = "nothing skipped" if not self.skipped else \
            f"skipped {sum(self.skipped.values())}: " + ", ".join(f"{n} {r}" for r, n in self.skipped.items())
        if self.mismatched:
            text += f"; {self.mismatched} read although the suffix does not match the content"
        return text


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def read_image(path: Path, size: int, rule: str, max_crops: int, read_log: ReadLog,
               max_pixels: int | None = MAX_PIXELS) -> tuple[np.ndarray, str, bool] | None:
    """(crops (n, S, S, 3) converted out of the decode, SHA-256 of the file, lossy) or None if
    skipped. The size comes from the header: too-small and over-budget files are never decoded."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        read_log.skip(path, NOT_AN_IMAGE)
        return None
    try:
        with open_image(path, max_pixels, check_suffix=False) as img:
            width, height = img.size
            if min(height, width) < size:
                read_log.skip(path, too_small(size))
                return None
            crops = read_crops(img, crop_windows(height, width, size, rule, max_crops), size)
            fmt, lossy = str(img.format), is_lossy(img)
        digest = _sha256(path)
    except DECODE_ERRORS as exc:
        read_log.skip(path, skip_reason(exc))
        return None
    if not suffix_matches(path, fmt):
        read_log.mismatched += 1
        log.warning("%s holds %s bytes, not what its suffix says; read as %s", path, fmt, fmt)
    if lossy:
        read_log.lossy += 1
        log.warning("%s is a lossy %s file: lossy compression removes much of a fingerprint; "
                    "attribution of it is less reliable", path, fmt)
    return crops, digest, lossy


def iter_chunks(paths: Sequence[Path], size: int, rule: str = "centre", max_crops: int = 16,
                chunk: int = 256, read_log: ReadLog | None = None,
                max_pixels: int | None = MAX_PIXELS) -> Iterator[QueryChunk]:
    """The readable images of `paths` (already expanded), `chunk` files at a time; files over
    `max_pixels` (checked from the header) are skipped."""
    read_log = read_log if read_log is not None else ReadLog()
    if rule not in CROPS:
        raise ValueError(f"unknown crop rule {rule!r}; choose one of {CROPS}")
    for start in range(0, len(paths), chunk):
        crops, owner, kept, hashes, lossy = [], [], [], [], []
        for path in paths[start:start + chunk]:
            read = read_image(path, size, rule, max_crops, read_log, max_pixels)
            if read is None:
                continue
            image_crops, digest, is_lossy = read
            owner += [len(kept)] * len(image_crops)
            crops.append(image_crops)
            kept.append(path)
            hashes.append(digest)
            lossy.append(is_lossy)
        if kept:
            yield QueryChunk(to_tensor(np.concatenate(crops)), np.asarray(owner), kept, hashes, lossy)
