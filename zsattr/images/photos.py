"""The real-photo pool: photos shipped inside installed packages, nothing downloaded.

Files are opened straight from the packages' data folders (never through a fetcher that
could reach the network). Every photo is listed with its source and licence in
`data/README.md`; `PHOTOS` is the single source of truth for that list.

Preprocessing (why): most of these photos went through JPEG at some point, whose 8x8 block
borders leave a periodic trace that no generator made. An antialiased downscale by
`photo_downscale` (Gaussian low-pass, then cubic resampling) blurs the borders and moves the
grid to a non-integer period (8/3 px at the default factor 3), where it no longer lines up
with pixels. `jpeg_grid_score` measures what is left; notebook 00 shows it per photo, before
and after. Factor 3 was chosen on measurement: at factor 2 the worst photo (retina) kept a
~8 dB grid; at 3 every photo measured about 1 dB or less (the score's noise level).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from skimage.transform import rescale

from ..core.config import Config
from ..core.keys import Stage
from .folders import scan_image_folder

log = logging.getLogger(__name__)

# The pool is no artefact of its own, but every stage that draws crops from it reads its
# settings, and a user folder by its contents.
PHOTO_POOL = Stage("photos", 1, section="photos",
                   folders=lambda cfg: {"real_image_dir": cfg.photos.real_image_dir})


@dataclass(frozen=True)
class PhotoSource:
    name: str
    package: str  # the installed package that ships the file
    relpath: str  # file inside that package's data folder
    licence: str
    origin: str
    group: str = ""  # photos of one scene share a group, so the split never separates them

    @property
    def split_group(self) -> str:
        return self.group or self.name


_SK = "scikit-image"
PHOTOS: tuple[PhotoSource, ...] = (
    PhotoSource("astronaut", _SK, "astronaut.png", "public domain (NASA)", "Eileen Collins, NASA Great Images"),
    PhotoSource("chelsea", _SK, "chelsea.png", "CC0 (Stefan van der Walt)", "a cat"),
    PhotoSource("coffee", _SK, "coffee.png", "CC0 (Rachel Michetti)", "a cup of coffee"),
    PhotoSource("hubble_deep_field", _SK, "hubble_deep_field.jpg", "public domain (NASA)", "HubbleSite"),
    PhotoSource("immunohistochemistry", _SK, "ihc.png", "no known copyright restrictions", "CMMI microscopy"),
    PhotoSource("retina", _SK, "retina.jpg", "CC0 (Mikael Haggstrom, Wikimedia)", "fundus photograph"),
    PhotoSource("rocket", _SK, "rocket.jpg", "public domain (SpaceX)", "SpaceX Photos"),
    PhotoSource("motorcycle_left", _SK, "motorcycle_left.png", "Middlebury stereo data, research use", "Middlebury 2014 stereo", group="motorcycle"),
    PhotoSource("motorcycle_right", _SK, "motorcycle_right.png", "Middlebury stereo data, research use", "Middlebury 2014 stereo", group="motorcycle"),
    PhotoSource("camera", _SK, "camera.png", "CC0 (Lav Varshney)", "a photographer"),
    PhotoSource("brick", _SK, "brick.png", "CC0 (CC0Textures)", "brick wall texture"),
    PhotoSource("grass", _SK, "grass.png", "CC0 (DeviantArt, linolafett)", "grass texture"),
    PhotoSource("gravel", _SK, "gravel.png", "CC0 (CC0Textures)", "gravel texture"),
    PhotoSource("coins", _SK, "coins.png", "no known copyright restrictions (Brooklyn Museum)", "Greek coins"),
    PhotoSource("moon", _SK, "moon.png", "no known copyright restrictions", "surface of the moon"),
    PhotoSource("clock", _SK, "clock_motion.png", "public domain (Stefan van der Walt)", "motion-blurred wall clock"),
    PhotoSource("cell", _SK, "cell.png", "CC0 (Paul Mueller, qpformat)", "quantitative phase image of a cell"),
    PhotoSource("china", "scikit-learn", "china.jpg", "CC BY 2.0 (danielbuechele, Flickr)", "a temple in China"),
    PhotoSource("flower", "scikit-learn", "flower.jpg", "CC BY 2.0 (vultilion, Flickr)", "a flower"),
    PhotoSource("grace_hopper", "matplotlib", "grace_hopper.jpg", "public domain (US Navy)", "Rear Admiral Grace Hopper"),
    PhotoSource("aero", "PyWavelets", "aero.npz", "shipped with PyWavelets (MIT); original source not stated", "aerial photograph"),
    PhotoSource("ascent", "PyWavelets", "ascent.npz", "public domain (public-domain-image.com)", "climbers on a rock face"),
)


# Where each package keeps its photos, relative to its installed module folder (found without
# importing the package, and never through a fetcher that could reach the network).
_DATA_FOLDERS = {"scikit-image": ("skimage", "data"), "scikit-learn": ("sklearn", "datasets/images"),
                 "matplotlib": ("matplotlib", "mpl-data/sample_data"), "PyWavelets": ("pywt", "data")}


def _package_data_dir(package: str) -> Path:
    if package not in _DATA_FOLDERS:
        raise ValueError(f"no bundled photos known for package {package!r}")
    module, folder = _DATA_FOLDERS[package]
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"{package} is not installed; it ships bundled photos (requirements.txt)")
    return Path(spec.origin).parent / folder


def photo_path(source: PhotoSource) -> Path:
    path = _package_data_dir(source.package) / source.relpath
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled photo {source.name!r} missing at {path}; is {source.package} installed "
            "at the version in requirements.txt?"
        )
    return path


def load_photo(source: PhotoSource) -> np.ndarray:
    """The photo as float32 RGB in [0, 1], shape (H, W, 3); grey photos repeat one channel."""
    path = photo_path(source)
    if path.suffix == ".npz":
        with np.load(path) as archive:
            array = archive["data"]
    else:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
    array = array.astype(np.float32) / 255.0
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return array


def downscale(image: np.ndarray, factor: float) -> np.ndarray:
    """Antialiased downscale by `factor` (Gaussian low-pass then area-correct resampling)."""
    if factor == 1.0:
        return image
    return rescale(image, 1.0 / factor, anti_aliasing=True, channel_axis=2, order=3,
                   mode="reflect").clip(0.0, 1.0).astype(np.float32)


@lru_cache(maxsize=8)
def _preprocessed(name: str, factor: float) -> np.ndarray:
    source = next(p for p in PHOTOS if p.name == name)
    image = downscale(load_photo(source), factor)
    image.setflags(write=False)
    return image


def jpeg_grid_score(images: np.ndarray, period: float = 8.0, n_fft: int = 256) -> float:
    """How strongly a block grid of `period` pixels shows in images (N, H, W, C), in dB.

    JPEG quantisation noise is cyclostationary: its ordinary power spectrum has no peaks, but
    the mean magnitude of the second derivative does jump at block borders. So each crop's
    column (and row) profile of |d2/dx2| is taken, mean-removed, Hann-windowed and
    Fourier-transformed; the power at the grid's harmonics k/period (up to Nyquist) is
    compared with the median of bins 7-14 away on each side. About 0 dB: no grid. After a
    downscale by s, an 8-px JPEG grid has period 8/s.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 3:
        images = images[None]
    profiles = (np.abs(np.diff(images, 2, axis=2)).mean(axis=(1, 3)),
                np.abs(np.diff(images, 2, axis=1)).mean(axis=(2, 3)))
    power = 0.0
    for profile in profiles:
        profile = profile - profile.mean(axis=1, keepdims=True)
        window = np.hanning(profile.shape[1])
        power = power + (np.abs(np.fft.rfft(profile * window, n=n_fft, axis=1)) ** 2).mean(0)
    ratios = []
    k = 1
    while k / period <= 0.5 + 1e-9:
        idx = int(round(k / period * n_fft))
        neighbours = np.r_[power[max(idx - 14, 1):max(idx - 6, 1)], power[idx + 7:idx + 15]]
        ratios.append(power[idx] / np.median(neighbours))
        k += 1
    return float(10 * np.log10(np.mean(ratios)))


def _holdout_groups(groups: list[str], fraction: float) -> set[str]:
    """Deterministic, seed-free choice of held-out groups: order by a hash of the name."""
    unique = sorted(set(groups), key=lambda g: hashlib.sha256(g.encode()).hexdigest())
    n_holdout = min(max(1, round(fraction * len(unique))), len(unique) - 1)
    return set(unique[:n_holdout])


class PhotoPool:
    """Real photos, preprocessed, split into `train` and `holdout` by source photo (group).

    Crops are drawn by picking a photo uniformly at random among the split's photos, then a
    position uniformly at random inside it, so large photos do not dominate the pool.
    """

    def __init__(self, names: list[str], groups: list[str], loader, holdout_fraction: float,
                 description: str):
        if len(set(groups)) < 2:
            raise ValueError("a photo pool needs photos from at least 2 sources to split")
        self.names = list(names)
        self.groups = dict(zip(names, groups))
        self._loader = loader
        self.description = description
        held = _holdout_groups(groups, holdout_fraction)
        self.split = {n: ("holdout" if g in held else "train") for n, g in self.groups.items()}
        self._images: dict[str, np.ndarray] = {}

    @classmethod
    def from_config(cls, cfg: Config) -> "PhotoPool":
        if cfg.photos.real_image_dir:
            return cls.from_folder(cfg.photos.real_image_dir, cfg.photos.downscale, cfg.photos.holdout_fraction,
                                   min_size=int(np.ceil(cfg.image_size * cfg.photos.downscale)))
        return cls.bundled(cfg.photos.downscale, cfg.photos.holdout_fraction)

    @classmethod
    def bundled(cls, downscale_factor: float, holdout_fraction: float) -> "PhotoPool":
        return cls([p.name for p in PHOTOS], [p.split_group for p in PHOTOS],
                   lambda name: _preprocessed(name, downscale_factor), holdout_fraction,
                   f"{len(PHOTOS)} photos bundled in installed packages, downscaled x{downscale_factor:g}")

    @classmethod
    def from_folder(cls, root, downscale_factor: float, holdout_fraction: float,
                    min_size: int | None = None) -> "PhotoPool":
        """A user's folder of real images (one sub-folder per dataset); split by file."""
        folder = scan_image_folder(root, min_size=min_size)
        paths = {str(p.relative_to(folder.root)): p for ps in folder.sources.values() for p in ps}
        names = sorted(paths)
        return cls(names, names, lambda name: downscale(folder.load(paths[name]), downscale_factor),
                   holdout_fraction, f"{len(names)} images from {folder.root}")

    def names_in(self, split: str) -> list[str]:
        if split not in ("train", "holdout", "all"):
            raise ValueError(f"split must be 'train', 'holdout' or 'all', got {split!r}")
        return [n for n in self.names if split == "all" or self.split[n] == split]

    def image(self, name: str) -> np.ndarray:
        if name not in self._images:
            if len(self._images) >= 4096:  # bound memory for large user folders
                self._images.pop(next(iter(self._images)))
            self._images[name] = self._loader(name)
        return self._images[name]

    def sample_crops(self, n: int, size: int, split: str = "train",
                     rng: np.random.Generator | int = 0) -> np.ndarray:
        """`n` random crops (n, size, size, 3), float32 in [0, 1], reproducible from `rng`."""
        rng = np.random.default_rng(rng)
        names = self.names_in(split)
        crops = np.empty((n, size, size, 3), dtype=np.float32)
        for i, pick in enumerate(rng.integers(len(names), size=n)):
            image = self.image(names[pick])
            h, w = image.shape[:2]
            if h < size or w < size:
                raise ValueError(f"photo {names[pick]!r} is {w}x{h} after preprocessing, "
                                 f"smaller than the {size}px crop")
            y, x = rng.integers(h - size + 1), rng.integers(w - size + 1)
            crops[i] = image[y:y + size, x:x + size]
        return crops


def gan_training_crops(cfg: Config, n: int, seed: int) -> torch.Tensor:
    """A fixed training set for generative models: `n` train-split crops at cfg.image_size,
    as a torch (n, 3, S, S) tensor in [-1, 1] (the range of a tanh output)."""
    pool = PhotoPool.from_config(cfg)
    return to_tensor(pool.sample_crops(n, cfg.image_size, "train", rng=seed)) * 2 - 1


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) float array -> torch (N, 3, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2))).float()


def catalogue_table(pool: PhotoPool):
    """One row per photo of the pool: source, licence, size after preprocessing, split."""
    by_name = {p.name: p for p in PHOTOS}
    rows = []
    for name in pool.names:
        h, w = pool.image(name).shape[:2]
        src = by_name.get(name)
        rows.append({"photo": name, "package": src.package if src else "user folder",
                     "licence": src.licence if src else "", "group": pool.groups[name],
                     "height": h, "width": w, "split": pool.split[name]})
    return pd.DataFrame(rows).set_index("photo")


def grid_score_table(raw: PhotoPool, processed: PhotoPool, factor: float, crops_per_photo: int,
                     size: int, seed: int = 0):
    """Per photo, the JPEG-grid score of crops before and after preprocessing (dB)."""
    rows = []
    for i, name in enumerate(raw.names):
        before = _crops_of(raw, name, crops_per_photo, size, seed + i)
        after = _crops_of(processed, name, crops_per_photo, size, seed + i)
        rows.append({"photo": name, "grid_db_before": jpeg_grid_score(before, 8.0),
                     "grid_db_after": jpeg_grid_score(after, 8.0 / factor)})
    return pd.DataFrame(rows).set_index("photo")


def _crops_of(pool: PhotoPool, name: str, n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = pool.image(name)
    h, w = image.shape[:2]
    ys, xs = rng.integers(h - size + 1, size=n), rng.integers(w - size + 1, size=n)
    return np.stack([image[y:y + size, x:x + size] for y, x in zip(ys, xs)])
