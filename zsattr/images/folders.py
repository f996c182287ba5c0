"""Reading user image folders: one sub-folder per source (a generative model or a real dataset).

    my_images/
        stylegan2/   0001.png 0002.png ...   (nested folders inside a source are fine)
        ddpm/        ...
        real_celeba/ ...

Every image is decoded once when the folder is scanned. Files that are not images, cannot be
decoded, are truncated, or trip Pillow's decompression-bomb guard (left on) are skipped and
counted per reason, with a log line each. Grayscale, RGBA, palette, CMYK and 16-bit images are
converted to RGB in [0, 1]. An image smaller than the crop the caller needs is an error that
names the file (silently upsampling it would forge a spectrum). A missing, empty or wrongly
laid out folder is an error that says what was expected.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif",
                            ".ppm", ".pgm", ".pnm"})
# Files that belong in a source folder but are not images (e.g. the zoo's metadata.json).
SIDECAR_SUFFIXES = frozenset({".json", ".txt", ".md", ".csv", ".yaml", ".yml"})


class ImageTooSmallError(ValueError):
    pass


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any Pillow image as float32 RGB (H, W, 3) in [0, 1]. Alpha is dropped, not composited."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        array = np.asarray(img, dtype=np.float32) / 65535.0
    elif img.mode == "I":  # 32-bit integer: Pillow's mode for many 16-bit PNGs
        array = np.asarray(img, dtype=np.float32)
        array = array / (65535.0 if array.max() > 255 else 255.0)
    elif img.mode == "F":
        array = np.asarray(img, dtype=np.float32)
        lo, hi = float(array.min()), float(array.max())
        array = (array - lo) / (hi - lo) if hi > lo else np.zeros_like(array)
    else:
        if img.mode == "P":  # palette: expand through RGBA so transparency info is resolved
            img = img.convert("RGBA")
        array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return np.clip(array, 0.0, 1.0)


def decode_image(path: str | Path) -> np.ndarray:
    """Decode one file fully (so truncation is caught) into float32 RGB in [0, 1]."""
    return decode_image_and_format(path)[0]


def decode_image_and_format(path: str | Path) -> tuple[np.ndarray, str]:
    """`decode_image`, and the format Pillow found in the bytes ("PNG", "JPEG", ...), whatever
    the file's suffix says."""
    with warnings.catch_warnings():
        # A file between 1x and 2x Pillow's pixel limit only warns; treat it as the bomb it may be.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            img.load()
            return to_rgb_array(img), str(img.format)


@dataclass
class ImageFolder:
    """A scanned folder: valid image paths per source, and what was skipped and why."""

    root: Path
    sources: dict[str, list[Path]]
    sizes: dict[Path, tuple[int, int]]  # (height, width) of each valid image
    skipped: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return sum(len(v) for v in self.sources.values())

    def load(self, path: Path) -> np.ndarray:
        return decode_image(path)


# What decoding a bad file raises: each becomes a counted, logged skip (`skip_reason`).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning)


def skip_reason(exc: BaseException) -> str:
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "too many pixels (decompression-bomb guard)"
    if isinstance(exc, UnidentifiedImageError):
        return "not a decodable image"
    if isinstance(exc, OSError) and "truncated" in str(exc).lower():
        return "truncated"
    return f"unreadable ({type(exc).__name__})"


def scan_image_folder(root: str | Path, min_size: int | None = None) -> ImageFolder:
    """Scan `root` (one sub-folder per source). `min_size`: the crop side the caller needs."""
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is a file; expected a folder with one sub-folder per source")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not subdirs:
        raise ValueError(
            f"{root} has no sub-folders ({len(loose)} image file(s) at the top level); expected "
            "one sub-folder per source, e.g. {root}/model_a/*.png, {root}/model_b/*.png"
        )
    if loose:
        log.warning("ignoring %d image file(s) at the top level of %s (not inside a source folder)",
                    len(loose), root)

    sources: dict[str, list[Path]] = {}
    sizes: dict[Path, tuple[int, int]] = {}
    skipped: Counter = Counter()
    for subdir in subdirs:
        valid = []
        for path in sorted(p for p in subdir.rglob("*") if p.is_file()):
            if path.name.startswith("."):
                continue
            suffix = path.suffix.lower()
            if suffix in SIDECAR_SUFFIXES:
                continue
            if suffix not in IMAGE_SUFFIXES:
                skipped["not an image file"] += 1
                log.warning("skipping %s: not an image file", path)
                continue
            try:
                array = decode_image(path)
            except DECODE_ERRORS as exc:
                reason = skip_reason(exc)
                skipped[reason] += 1
                log.warning("skipping %s: %s (%s)", path, reason, exc)
                continue
            height, width = array.shape[:2]
            if min_size is not None and min(height, width) < min_size:
                raise ImageTooSmallError(
                    f"{path} is {width}x{height} pixels, smaller than the {min_size}x{min_size} "
                    "crop this run needs; remove it or lower image_size"
                )
            valid.append(path)
            sizes[path] = (height, width)
        if not valid:
            raise ValueError(f"source folder {subdir} holds no readable images")
        sources[subdir.name] = valid
    if skipped:
        log.warning("skipped %d file(s) in %s: %s", sum(skipped.values()), root, dict(skipped))
    return ImageFolder(root=root, sources=sources, sizes=sizes, skipped=skipped)
