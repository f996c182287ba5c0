"""Opening image files, and reading user image folders (one sub-folder per source).

    my_images/
        stylegan2/   0001.png 0002.png ...   (nested folders inside a source are fine)
        ddpm/        ...
        real_celeba/ ...

Opening (`open_image`, the one place any image file is opened). Pillow may only use the formats
in `FORMATS`: PNG, JPEG, WebP, BMP, TIFF, GIF and PPM. No other loader sees the bytes (an EPS
file named .png would otherwise reach Ghostscript). PPM (.ppm/.pgm/.pnm) is on the list on
purpose: an uncompressed raster with a trivial header, lossless, and read here before the list
existed. The size in the header is checked against a pixel budget (`max_pixels`, default
`MAX_PIXELS` = 100 megapixels; None: none) before anything is decoded; Pillow's
decompression-bomb error (over twice its own limit) stays on behind it. The suffix must name the
format in the bytes (`SUFFIX_FORMATS`): the folder scan skips a mismatch (JPEG bytes named .png
would pass as lossless); the attribution tool reads it, flagged by its bytes
(`zsattr.images.queries`).

Scan rule (`scan_image_folder`). Every file is looked at and every problem collected. A bad file
is a counted, logged skip: not an image file, not decodable (any format off the list included),
truncated, too many pixels, smaller than the caller's crop, a suffix that does not match the
content. Hidden and tool entries (`.*`, so `.ipynb_checkpoints`, and `__MACOSX`) are never read,
only counted; sidecar files (metadata.json, notes.txt) are ignored. After the scan, a model
folder with fewer than `min_images` usable images (default 1: an empty folder, or one whose
every file was skipped) is an error, raised once for all such folders with every problem found.
Lossy files (JPEG, lossy WebP, JPEG-compressed TIFF) are kept, flagged (`ImageFolder.lossy`)
and counted in `ImageFolder.summary()`.

Decoding. Grayscale, RGBA, palette, CMYK and 16-bit images become float32 RGB in [0, 1]. One
file's decode is held at a time, and a crop is converted out of the decode (`read_crops`)
rather than cut from a float copy of the whole image, so a 64 x 64 crop of a large file costs
one decode, not a float image. No JPEG draft mode: it downscales in the DCT domain, which
changes the spectrum the fingerprint is made of, and no reader here asks for a downscaled image
(crops are taken at full resolution; the photo pool's own downscaling is left as it is).
"""

from __future__ import annotations

import logging
import struct
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

# Pillow plugin IDs, the only loaders ever used (JPEG's also opens MPO, JPEG files with extra frames).
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF", "PPM")
# The formats each suffix may hold; a file whose bytes are another format is a mismatch.
SUFFIX_FORMATS: dict[str, frozenset[str]] = {
    ".png": frozenset({"PNG"}), ".jpg": frozenset({"JPEG", "MPO"}), ".jpeg": frozenset({"JPEG", "MPO"}),
    ".webp": frozenset({"WEBP"}), ".bmp": frozenset({"BMP"}), ".tif": frozenset({"TIFF"}),
    ".tiff": frozenset({"TIFF"}), ".gif": frozenset({"GIF"}), ".ppm": frozenset({"PPM"}),
    ".pgm": frozenset({"PPM"}), ".pnm": frozenset({"PPM"}),
}
IMAGE_SUFFIXES = frozenset(SUFFIX_FORMATS)
# Files that belong in a source folder but are not images (e.g. the zoo's metadata.json).
SIDECAR_SUFFIXES = frozenset({".json", ".txt", ".md", ".csv", ".yaml", ".yml"})
TOOL_FOLDERS = frozenset({"__MACOSX"})  # hidden ones (.ipynb_checkpoints, .git) are caught by the dot
MAX_PIXELS = 100_000_000
STRIP_ROWS = 256  # rows converted at a time when a whole image is read

# Skip reasons: the keys of the skip counts.
NOT_AN_IMAGE = "not an image file"
UNDECODABLE = "not a decodable image"
TRUNCATED = "truncated"
TOO_MANY_PIXELS = "too many pixels"
MISMATCH = "suffix does not match content"
HIDDEN = "hidden or tool file (.*, __MACOSX)"
OUTSIDE = "image outside a model folder"


def too_small(size: int) -> str:
    return f"smaller than {size}x{size} (never upsampled)"


def is_hidden(name: str) -> bool:
    return name.startswith(".") or name in TOOL_FOLDERS


class ImageReadError(ValueError):
    """A file that opens but cannot be used; `reason` is its skip reason."""

    def __init__(self, path: Path, reason: str, detail: str):
        super().__init__(f"{path}: {reason} ({detail})")
        self.reason, self.detail = reason, detail


# What opening or decoding a bad file raises: each becomes a counted, logged skip (`skip_reason`).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError,
                 Image.DecompressionBombWarning)


def skip_reason(exc: BaseException) -> str:
    if isinstance(exc, ImageReadError):
        return exc.reason
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return TOO_MANY_PIXELS
    if isinstance(exc, UnidentifiedImageError):
        return UNDECODABLE
    if isinstance(exc, OSError) and "truncated" in str(exc).lower():
        return TRUNCATED
    return f"unreadable ({type(exc).__name__})"


def suffix_matches(path: Path, fmt: str | None) -> bool:
    return fmt in SUFFIX_FORMATS.get(Path(path).suffix.lower(), ())


@contextmanager
def open_image(path: str | Path, max_pixels: int | None = MAX_PIXELS, check_suffix: bool = True
               ) -> Iterator[Image.Image]:
    """`path` opened by Pillow with only `FORMATS` allowed: header read, pixels not decoded yet.
    Raises one of `DECODE_ERRORS`: UnidentifiedImageError for bytes of no allowed format,
    `ImageReadError` for a size over `max_pixels` or (with `check_suffix`) a suffix that does not
    match the bytes."""
    path = Path(path)
    with warnings.catch_warnings():
        # Pillow only warns between 1x and 2x its limit; the budget below decides instead.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = Image.open(path, formats=FORMATS)
    with img:
        width, height = img.size
        if max_pixels is not None and width * height > max_pixels:
            raise ImageReadError(path, TOO_MANY_PIXELS, f"{width}x{height} = {width * height:,} pixels, over the "
                                 f"budget of {max_pixels:,} (max_pixels)")
        if check_suffix and not suffix_matches(path, img.format):
            raise ImageReadError(path, MISMATCH, f"{img.format} bytes named {path.suffix or 'without a suffix'}")
        yield img


def _webp_is_lossy(path: str | Path) -> bool:
    """Whether a WebP file holds a lossy ('VP8 ') image chunk, at the top level or in an
    animation frame ('VP8L' is lossless)."""
    data = Path(path).read_bytes()
    pos = 12  # after "RIFF", the size and "WEBP"
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if tag == b"VP8 ":
            return True
        # ANMF: 16 bytes of frame header, then the frame's own image chunks
        pos += 8 + 16 if tag == b"ANMF" else 8 + size + (size & 1)
    return False


def is_lossy(img: Image.Image) -> bool:
    """JPEG, lossy WebP, JPEG-compressed TIFF: compression that overwrites much of the
    high-frequency fingerprint."""
    if img.format in ("JPEG", "MPO"):
        return True
    if img.format == "TIFF":
        return img.info.get("compression") in ("jpeg", "tiff_jpeg")
    if img.format == "WEBP" and img.filename:
        return _webp_is_lossy(img.filename)
    return False


def _converter(img: Image.Image) -> Callable[[Image.Image], np.ndarray]:
    """A function from a part of `img` (a crop, or `img` itself) to float32 RGB (h, w, 3) in
    [0, 1]. The scale of 32-bit integer and float images is decided on the whole image, so a crop
    reads exactly as the same window of the whole image does."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        def scale(a):
            return a / 65535.0
    elif mode == "I":  # 32-bit integer: Pillow's mode for many 16-bit PNGs
        divisor = 65535.0 if img.getextrema()[1] > 255 else 255.0

        def scale(a):
            return a / divisor
    elif mode == "F":
        lo, hi = (float(v) for v in img.getextrema())

        def scale(a):
            return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    else:
        def scale(a):
            return a / 255.0

    def convert(part: Image.Image) -> np.ndarray:
        if mode == "P":  # palette: expand through RGBA so transparency info is resolved
            part = part.convert("RGBA")
        if mode not in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
            part = part.convert("RGB")  # alpha is dropped, not composited
        array = scale(np.asarray(part, dtype=np.float32))
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
        return np.clip(array, 0.0, 1.0)
    return convert


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any Pillow image as float32 RGB (H, W, 3) in [0, 1], converted in strips of rows so no
    full-size intermediate copy is made beside the result. Alpha is dropped, not composited."""
    convert = _converter(img)
    width, height = img.size
    out = np.empty((height, width, 3), dtype=np.float32)
    for top in range(0, height, STRIP_ROWS):
        bottom = min(height, top + STRIP_ROWS)
        out[top:bottom] = convert(img.crop((0, top, width, bottom)))
    return out


def read_crops(img: Image.Image, corners: Sequence[tuple[int, int]], size: int) -> np.ndarray:
    """The `size` x `size` windows at `corners` (top, left) of an opened image, as float32
    (n, size, size, 3) in [0, 1]: the file is decoded once and only the crops are converted."""
    img.load()
    convert = _converter(img)
    return np.stack([convert(img.crop((left, top, left + size, top + size))) for top, left in corners])


def centre_corner(height: int, width: int, size: int) -> tuple[int, int]:
    return (height - size) // 2, (width - size) // 2


def decode_image(path: str | Path, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Decode one file fully (so truncation is caught) into float32 RGB in [0, 1]."""
    return decode_image_and_format(path, max_pixels)[0]


def decode_image_and_format(path: str | Path, max_pixels: int | None = MAX_PIXELS) -> tuple[np.ndarray, str]:
    """`decode_image`, and the format Pillow found in the bytes ("PNG", "JPEG", ...), whatever
    the file's suffix says."""
    with open_image(path, max_pixels, check_suffix=False) as img:
        img.load()
        return to_rgb_array(img), str(img.format)


@dataclass(frozen=True)
class Problem:
    """One skipped file (or model folder) and why."""

    path: Path
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class ImageFolder:
    """A scanned folder: valid image paths per source, and what was skipped and why."""

    root: Path
    sources: dict[str, list[Path]]
    sizes: dict[Path, tuple[int, int]]  # (height, width) of each valid image
    skipped: Counter = field(default_factory=Counter)  # reason -> files, over the whole folder
    skipped_by_source: dict[str, Counter] = field(default_factory=dict)  # model ("" = top level) -> reasons
    problems: list[Problem] = field(default_factory=list)  # every skipped file, in scan order
    formats: dict[Path, str] = field(default_factory=dict)  # Pillow's format of each valid image
    lossy: list[Path] = field(default_factory=list)  # valid images in a lossy format
    max_pixels: int | None = MAX_PIXELS

    def __len__(self) -> int:
        return sum(len(v) for v in self.sources.values())

    def load(self, path: Path) -> np.ndarray:
        return decode_image(path, self.max_pixels)

    def load_centre_crop(self, path: Path, size: int) -> np.ndarray:
        """The central `size` x `size` window of an image (H >= size, W >= size), (size, size, 3)."""
        with open_image(path, self.max_pixels) as img:
            return read_crops(img, [centre_corner(img.size[1], img.size[0], size)], size)[0]

    def skip(self, source: str, path: Path, reason: str, detail: str = "", quiet: bool = False) -> None:
        self.skipped[reason] += 1
        self.skipped_by_source.setdefault(source, Counter())[reason] += 1
        self.problems.append(Problem(path, reason, detail))
        (log.info if quiet else log.warning)("skipping %s: %s%s", path, reason, f" ({detail})" if detail else "")

    def summary(self) -> str:
        """Images, lossy files and skips per model, then the totals, one line each."""
        lines, lossy = [], set(self.lossy)
        for name in sorted(set(self.sources) | set(self.skipped_by_source)):
            paths = self.sources.get(name, [])
            n_lossy = sum(p in lossy for p in paths)
            label = name or "(top level)"
            lines.append(f"{label:<30} {len(paths):>7} images  {n_lossy:>5} lossy  skipped: "
                         + _counts(self.skipped_by_source.get(name, Counter())))
        lines.append(f"{'total':<30} {len(self):>7} images  {len(self.lossy):>5} lossy  skipped: "
                     + _counts(self.skipped))
        return "\n".join(lines)


def _counts(counter: Counter) -> str:
    if not counter:
        return "none"
    return f"{sum(counter.values())} (" + ", ".join(f"{n} {r}" for r, n in counter.most_common()) + ")"


class ImageFolderError(ValueError):
    """Model folders without enough usable images; `folder` holds everything the scan found."""

    def __init__(self, message: str, folder: ImageFolder):
        super().__init__(message)
        self.folder = folder


MAX_LISTED = 20  # problems listed in an error; the counts cover all of them


def _check_image(path: Path, min_size: int | None, max_pixels: int | None) -> tuple[tuple[int, int], str, bool]:
    """((height, width), format, lossy) of a usable image; raises one of `DECODE_ERRORS`."""
    with open_image(path, max_pixels) as img:
        width, height = img.size
        if min_size is not None and min(width, height) < min_size:  # from the header: no decode needed
            raise ImageReadError(path, too_small(min_size), f"{width}x{height}")
        img.load()  # the whole file is decoded once (and dropped), so a truncated or corrupt one is caught here
        return (height, width), str(img.format), is_lossy(img)


def _scan_source(folder: ImageFolder, subdir: Path, min_size: int | None, max_pixels: int | None) -> list[Path]:
    name, valid = subdir.name, []
    for path in sorted(p for p in subdir.rglob("*") if p.is_file()):
        if any(is_hidden(part) for part in path.relative_to(subdir).parts):
            folder.skip(name, path, HIDDEN, quiet=True)
            continue
        suffix = path.suffix.lower()
        if suffix in SIDECAR_SUFFIXES:
            continue
        if suffix not in IMAGE_SUFFIXES:
            folder.skip(name, path, NOT_AN_IMAGE)
            continue
        try:
            size, fmt, lossy = _check_image(path, min_size, max_pixels)
        except DECODE_ERRORS as exc:
            folder.skip(name, path, skip_reason(exc), getattr(exc, "detail", str(exc)))
            continue
        valid.append(path)
        folder.sizes[path], folder.formats[path] = size, fmt
        if lossy:
            folder.lossy.append(path)
    return valid


def scan_image_folder(root: str | Path, min_size: int | None = None, *, min_images: int = 1,
                      max_pixels: int | None = MAX_PIXELS) -> ImageFolder:
    """Scan `root` (one sub-folder per source) by the rule in the module docstring.

    min_size: the crop side the caller needs (smaller images are skipped, never upsampled).
    min_images: usable images each model folder needs; fewer is an error (`ImageFolderError`).
    max_pixels: the pixel budget per file, checked from the header before decoding (None: none).
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is a file; expected a folder with one sub-folder per source")
    folder = ImageFolder(root=root, sources={}, sizes={}, max_pixels=max_pixels)
    subdirs, loose = [], []
    for entry in sorted(root.iterdir()):
        if is_hidden(entry.name):
            folder.skip("", entry, HIDDEN, quiet=True)  # a hidden folder counts once; it is not opened
        elif entry.is_dir():
            subdirs.append(entry)
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            loose.append(entry)
    if not subdirs:
        raise ValueError(
            f"{root} has no sub-folders ({len(loose)} image file(s) at the top level; hidden and tool folders "
            f"do not count); expected one sub-folder per source, e.g. {root / 'model_a'}/*.png, "
            f"{root / 'model_b'}/*.png"
        )
    for path in loose:
        folder.skip("", path, OUTSIDE, quiet=True)
    if loose:
        log.warning("ignoring %d image file(s) at the top level of %s (not inside a source folder)", len(loose), root)

    short = {}
    for subdir in subdirs:
        valid = _scan_source(folder, subdir, min_size, max_pixels)
        if len(valid) < min_images:
            short[subdir.name] = len(valid)
        else:
            folder.sources[subdir.name] = valid
    if folder.skipped:
        log.warning("skipped %d file(s) in %s: %s", sum(folder.skipped.values()), root, dict(folder.skipped))
    if folder.lossy:
        log.warning("%d lossy image(s) (JPEG, lossy WebP) in %s: lossy compression removes much of a fingerprint",
                    len(folder.lossy), root)
    if short:
        raise ImageFolderError(_short_message(folder, short, subdirs, min_images), folder)
    return folder


def _short_message(folder: ImageFolder, short: dict[str, int], subdirs: list[Path], min_images: int) -> str:
    """First line: which model folders fall short and why, in counts; then every problem found."""
    parts = []
    for name, n in short.items():
        reasons = folder.skipped_by_source.get(name, Counter())
        if not n and not reasons:
            parts.append(f"{name} (empty: no image files)")
        else:
            parts.append(f"{name} ({n} usable; skipped {_counts(reasons)})")
    need = "no usable image" if min_images == 1 else f"fewer than {min_images} usable images"
    lines = [f"{folder.root}: {len(short)} of {len(subdirs)} model folder(s) have {need}: " + "; ".join(parts)]
    listed = [p for p in folder.problems if p.reason not in (HIDDEN, OUTSIDE)]
    lines += [f"  {p}" for p in listed[:MAX_LISTED]]
    if len(listed) > MAX_LISTED:
        lines.append(f"  ... and {len(listed) - MAX_LISTED} more (counts above)")
    return "\n".join(lines)
