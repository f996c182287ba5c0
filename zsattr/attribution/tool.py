"""The attribution tool's Python API: what `zsattr extractor | gallery | identify | verify` run.

    import zsattr
    extractor = zsattr.export_extractor("cpu", "cpu.zsx")          # or zsattr.load_extractor("cpu.zsx")
    gallery = zsattr.create_gallery("zoo.gallery", "my_images/", extractor, k=10)
    zsattr.enrol("zoo.gallery", "my_new_model", ["new/"])           # no retraining
    table = zsattr.attribute("zoo.gallery", ["query.png", "more/"])  # one row per image
    result = zsattr.verify("a.png", "folder_b/", extractor)          # same model?

Fingerprints: every readable image is cropped (`zsattr.images.queries`: centre crop or a grid
of crops, never a resize), fingerprinted in batches without autograd, and L2-normalised; an
image's fingerprint is the mean of its crops' fingerprints.

Verification of two image sets A and B: the mean cosine similarity over all pairs (one image
of A, one of B), against a threshold. "auto" is the extractor file's threshold, calibrated at
export on same- and different-model pairs of held-out synthetic models (the highest-accuracy
threshold on balanced pairs; never on the zoo). A mean over pairs has the expectation of one
pair's similarity, so a threshold set for single pairs is a fair decision point for means too.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ..core.cache import ArtefactStore
from ..core.config import PRESETS, Config, resolve
from ..core.paths import repo_root
from ..core.progress import progress
from ..extractor import stage as extractor_stage
from ..extractor.linear import fit_linear_extractor
from ..fingerprint.chain import input_chain
from ..images.queries import ReadLog, expand_paths, iter_chunks
from ..synthesis.bank import load_bank
from . import metrics
from .gallery import Gallery, GalleryError, l2_normalise
from .methods import ExtractorMethod
from .portable import KINDS, SUFFIX, ExtractorFileError, PortableExtractor, load_extractor, save_extractor

log = logging.getLogger(__name__)

SHIPPED = "shipped"
FAMILY_KIND = {"ours (linear)": "linear", "ours (resnet)": "resnet"}


# -- extractors ------------------------------------------------------------------------------

def shipped_kind(preset: str) -> str:
    """The extractor kind notebook 04 chose for `preset` on held-out synthetic models (its
    report's `shipped_extractor`)."""
    report = repo_root() / "reports" / preset / "04_train_extractor.json"
    if not report.is_file():
        raise ExtractorFileError(f"no record of which extractor the {preset} preset ships ({report} is missing: "
                                 f"run notebook 04 at {preset}, or pass kind 'linear' or 'resnet')")
    family = json.loads(report.read_text())["metrics"]["shipped_extractor"]
    return FAMILY_KIND[family]


def trained_method(cfg: Config, kind: str, training_seed: int = 0, store: ArtefactStore | None = None):
    """The preset's trained extractor of `kind` (loaded from the cache, or built there)."""
    if kind == "linear":
        return fit_linear_extractor(cfg, store, training_seed=training_seed).ours
    if kind == "resnet":
        run = extractor_stage.train_extractor(cfg, store=store, training_seed=training_seed)
        return ExtractorMethod("ours (resnet)", run.model, input_chain(cfg, store), cfg.evaluation.batch)
    raise ExtractorFileError(f"unknown extractor kind {kind!r}; choose {SHIPPED!r} or one of {KINDS}")


def crop_disjoint_pairs(n_models: int, per_model: int, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """(n_pairs, 3) pairs (i, j, same) over images laid out model by model, `per_model` each,
    where every model fingerprints the same crops in the same order: half same-model, half
    different-model, and never two images of one crop, so shared content cannot pass for a
    shared fingerprint."""
    half = n_pairs // 2
    out = []
    for same in (1, 0):
        m1 = rng.integers(n_models, size=half)
        m2 = m1 if same else (m1 + rng.integers(1, n_models, size=half)) % n_models
        c1 = rng.integers(per_model, size=half)
        c2 = (c1 + rng.integers(1, per_model, size=half)) % per_model
        out.append(np.stack([m1 * per_model + c1, m2 * per_model + c2, np.full(half, same)], axis=1))
    return np.concatenate(out)


def heldout_verification(cfg: Config, method, store: ArtefactStore | None = None, n_pairs: int = 4000) -> dict:
    """The verification threshold of `method` on balanced same/different-model pairs of images of
    the held-out synthetic models (unseen seeds and unseen architectures; no pair shares a crop):
    the highest-accuracy threshold, with that accuracy, the EER and the ROC AUC on the same pairs."""
    bank = load_bank(cfg, store)
    split = extractor_stage.split_of(cfg, bank)
    indices = list(split.unseen_seed) + list(split.unseen_code)
    images, _ = extractor_stage.heldout_images_of(cfg, bank, indices)
    features = l2_normalise(method.features(images))
    pairs = crop_disjoint_pairs(len(indices), len(images) // len(indices), n_pairs,
                                np.random.default_rng([cfg.seed, 808]))
    scores = np.einsum("ij,ij->i", features[pairs[:, 0]], features[pairs[:, 1]])
    same = pairs[:, 2].astype(bool)
    threshold = metrics.best_threshold(scores, same)
    return {"threshold": threshold, "accuracy": metrics.accuracy_at(scores, same, threshold),
            "eer": metrics.equal_error_rate(scores, same), "roc_auc": metrics.roc_auc(scores, same),
            "pairs": int(len(pairs)), "models": len(indices),
            "rule": "highest accuracy on balanced same/different-model pairs of held-out synthetic models, "
                    "no pair sharing a crop"}


def export_extractor(preset: str, path: str | Path, kind: str = SHIPPED, training_seed: int = 0,
                     store: ArtefactStore | None = None, **overrides) -> PortableExtractor:
    """Write the preset's trained extractor (`kind`: "shipped", the one notebook 04 chose, or
    "linear" / "resnet") as a standalone extractor file; builds what the cache lacks."""
    cfg = resolve(preset, **overrides)
    kind = shipped_kind(preset) if kind == SHIPPED else kind
    method = trained_method(cfg, kind, training_seed, store)
    source = {"preset": preset, "training_seed": training_seed, "seed": cfg.seed}
    return save_extractor(path, method, name=f"ours ({kind}), {preset} preset", image_size=cfg.image_size,
                          source=source, verification=heldout_verification(cfg, method, store))


def open_extractor(spec: str | Path | PortableExtractor, store: ArtefactStore | None = None) -> PortableExtractor:
    """An extractor from a file path, or from a preset name (exported next to the cache on first
    use: data/extractors/<preset>.zsx), or passed through."""
    if isinstance(spec, PortableExtractor):
        return spec
    path = Path(spec).expanduser()
    if path.exists() or str(spec) not in PRESETS:
        return load_extractor(path)
    store = store or ArtefactStore()
    target = store.root.parent / "extractors" / f"{spec}{SUFFIX}"
    if target.is_file():
        try:
            return load_extractor(target)
        except ExtractorFileError as exc:
            log.warning("re-exporting %s: %s", target, exc)
    target.parent.mkdir(parents=True, exist_ok=True)
    return export_extractor(str(spec), target, store=store)


# -- fingerprints ----------------------------------------------------------------------------

@dataclass
class Fingerprints:
    """One row per readable image: its fingerprint (mean of its crops' normalised fingerprints),
    file, SHA-256 and whether it is lossy; what was skipped is in `read_log`."""

    vectors: np.ndarray
    paths: list[Path]
    sha256: list[str]
    lossy: list[bool]
    read_log: ReadLog

    def __len__(self) -> int:
        return len(self.paths)


def fingerprint_images(extractor: PortableExtractor, paths: Iterable[str | Path], crop: str = "centre",
                       max_crops: int = 16, chunk: int = 256, desc: str = "fingerprints",
                       limit: int | None = None) -> Fingerprints:
    """Fingerprints of the images at `paths` (files or folders, in order); unreadable and
    too-small files are skipped and counted; with `limit`, reading stops once that many images
    were read. Raises GalleryError when no image is readable."""
    read_log = ReadLog()
    files = expand_paths(paths, read_log)  # hidden and tool files are counted as skipped
    vectors, kept, hashes, lossy = [], [], [], []
    with progress(total=len(files), desc=desc, unit="img") as bar:
        step = chunk if limit is None else max(1, min(chunk, limit))
        for part in iter_chunks(files, extractor.image_size, crop, max_crops, step, read_log):
            per_crop = l2_normalise(extractor.features(part.crops))
            sums = np.zeros((len(part.paths), per_crop.shape[1]))
            np.add.at(sums, part.owner, per_crop)
            vectors.append(sums / np.bincount(part.owner, minlength=len(part.paths))[:, None])
            kept += part.paths
            hashes += part.sha256
            lossy += part.lossy
            bar.update(len(part.paths))
            if limit is not None and len(kept) >= limit:
                break
    if limit is not None and len(kept) > limit:
        vectors, kept, hashes, lossy = [np.concatenate(vectors)[:limit]], kept[:limit], hashes[:limit], lossy[:limit]
    if not kept:
        raise GalleryError(f"no readable image of at least {extractor.image_size}x{extractor.image_size} pixels "
                           f"among {len(files)} file(s) ({read_log.summary()})")
    if read_log.skipped:
        log.warning("%s", read_log.summary())
    return Fingerprints(np.concatenate(vectors), kept, hashes, lossy, read_log)


# -- galleries -------------------------------------------------------------------------------

def _describe(extractor: PortableExtractor) -> dict[str, Any]:
    info = extractor.describe()
    info["path"] = str(extractor.path.resolve()) if extractor.path is not None else None
    return info


def _gallery(gallery: Gallery | str | Path) -> Gallery:
    return gallery if isinstance(gallery, Gallery) else Gallery.load(gallery)


def gallery_extractor(gallery: Gallery, extractor=None) -> PortableExtractor:
    """The extractor to fingerprint queries for `gallery`: the one given (checked against the
    gallery's), or the file the gallery was enrolled with."""
    if extractor is None:
        stored = gallery.extractor.get("path")
        if not stored or not Path(stored).is_file():
            raise GalleryError(f"the gallery's extractor file ({stored}) is not there; pass the extractor "
                               "it was enrolled with (--extractor FILE)")
        extractor = stored
    extractor = open_extractor(extractor)
    gallery.check_extractor(extractor.id)
    return extractor


def enrol(gallery: Gallery | str | Path, name: str, paths: Sequence[str | Path], extractor=None,
          k: int | None = None, crop: str | None = None, device: str = "cpu", batch_size: int = 256) -> Gallery:
    """Add model `name` (or replace its entry) from its images (the first `k` readable ones in
    sorted order, or all); a gallery path is loaded (or created if absent) and saved again."""
    path = None
    if not isinstance(gallery, Gallery):
        path = Path(gallery)
        if path.exists():
            gallery = Gallery.load(path)
        elif extractor is None:
            raise GalleryError(f"{path} does not exist; creating a gallery needs an extractor")
        else:
            gallery = Gallery()
    extractor = (gallery_extractor(gallery, extractor) if gallery.names or gallery.extractor_id
                 else open_extractor(extractor)).to(device, batch_size)
    if not gallery.extractor_id:
        gallery.extractor_id, gallery.extractor = extractor.id, _describe(extractor)
        gallery.crop = crop or gallery.crop
    elif crop is not None and crop != gallery.crop:
        raise GalleryError(f"this gallery crops images by {gallery.crop!r}; it cannot enrol with {crop!r}")
    if k is not None and k < 1:
        raise GalleryError(f"k must be at least 1, got {k}")
    try:
        found = fingerprint_images(extractor, paths, gallery.crop, chunk=batch_size, desc=f"enrol {name}", limit=k)
    except GalleryError as exc:
        raise GalleryError(f"model {name!r}: {exc}") from exc
    if k is not None and len(found) < k:
        log.warning("%s: only %d readable image(s), fewer than k = %d", name, len(found), k)
    gallery.enrol(name, found.vectors, found.sha256)
    if path is not None:
        gallery.save(path)
    return gallery


def create_gallery(path: str | Path, folder: str | Path, extractor, k: int | None = None, crop: str = "centre",
                   far: float | None = None, overwrite: bool = False, device: str = "cpu",
                   batch_size: int = 256) -> Gallery:
    """A new gallery at `path` from `folder` (one sub-folder per model), `k` images per model."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise GalleryError(f"{path} exists; remove it first or add models with `zsattr gallery add`")
    folders = model_folders(folder)
    extractor = open_extractor(extractor)
    gallery = Gallery(extractor.id, _describe(extractor), crop)
    if far is not None:
        gallery.recalibrate(far)
    for name, model_folder in folders.items():
        enrol(gallery, name, [model_folder], extractor, k=k, device=device, batch_size=batch_size)
    gallery.save(path)
    return gallery


def model_folders(folder: str | Path) -> dict[str, Path]:
    """The model sub-folders of `folder` (hidden and tool folders left out), by name."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise GalleryError(f"{root} is not a folder; expected a folder with one sub-folder of images per model")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "__MACOSX")
    if not subdirs:
        raise GalleryError(f"{root} has no sub-folders; expected one sub-folder of images per model, "
                           f"e.g. {root / 'model_a'}/*.png and {root / 'model_b'}/*.png")
    return {p.name: p for p in subdirs}


def remove(gallery: str | Path, names: Sequence[str]) -> Gallery:
    loaded = Gallery.load(gallery)
    for name in names:
        loaded.remove(name)
    loaded.save(gallery)
    return loaded


def gallery_table(gallery: Gallery | str | Path) -> pd.DataFrame:
    """One row per enrolled model: its images (k) and how many of them are distinct files."""
    g = _gallery(gallery)
    return pd.DataFrame({"model": g.names, "k": g.shots,
                         "distinct_files": [len(set(g.hashes(n)) - {""}) for n in g.names]})


# -- identification and verification --------------------------------------------------------

def attribute(gallery: Gallery | str | Path, paths: Sequence[str | Path], extractor=None, top: int = 3,
              reject: float | str | None = "auto", device: str = "cpu", batch_size: int = 256) -> pd.DataFrame:
    """One row per readable image: the decision (a model, or "unknown" at or below the rejection
    threshold: "auto" the gallery's calibrated one, a value, or None), the similarity, the
    margin to the second model, the top candidates; and flags for lossy (JPEG) inputs and for
    images the gallery was enrolled from."""
    g = _gallery(gallery)
    if top < 1:
        raise GalleryError(f"--top must be at least 1, got {top}")
    g.resolve_threshold(reject)  # fail on a bad threshold before reading any image
    extractor = gallery_extractor(g, extractor).to(device, batch_size)
    found = fingerprint_images(extractor, paths, g.crop, chunk=batch_size, desc="identify")
    enrolled = {h: n for n in g.names for h in g.hashes(n) if h}
    rows = []
    for path, digest, lossy, answer in zip(found.paths, found.sha256, found.lossy,
                                           g.attribute(found.vectors, top, reject)):
        rows.append({"image": str(path), **answer.as_row(), "lossy": lossy,
                     "enrolment_image_of": enrolled.get(digest, "")})
    table = pd.DataFrame(rows)
    table.attrs["skipped"] = dict(found.read_log.skipped)
    return table


@dataclass
class Verification:
    similarity: float  # mean cosine similarity over all (A image, B image) pairs
    threshold: float
    same_model: bool
    images_a: int
    images_b: int
    lossy: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def verify(a: str | Path | Sequence[str | Path], b: str | Path | Sequence[str | Path], extractor=None,
           threshold: float | str = "auto", crop: str = "centre", device: str = "cpu",
           batch_size: int = 256, gallery: Gallery | str | Path | None = None) -> Verification:
    """Were the images of `a` and of `b` (an image, a folder, or a list of them) made by the same
    model? See the module docstring for the score. The "auto" threshold is the `gallery`'s, set on
    its enrolment images (the user's own domain), if one is given; else the extractor file's."""
    if threshold in (None, "none"):
        raise GalleryError("verify decides against a threshold: pass 'auto' or a similarity in [-1, 1]")
    g = None if gallery is None else _gallery(gallery)
    if g is not None:
        extractor = gallery_extractor(g, extractor)
        crop = g.crop
    elif extractor is None:
        raise GalleryError("verify needs an extractor (a file or a preset) or a gallery")
    extractor = open_extractor(extractor).to(device, batch_size)
    if threshold == "auto":
        value = (g.calibration.get("verification") or {}).get("threshold") if g is not None \
            else extractor.verification_threshold
        if value is None:
            raise GalleryError("no calibrated verification threshold (the gallery needs two models, one with two "
                               "images; an extractor file carries one from export); pass a value")
    else:
        value = float(threshold)
        if not -1.0 <= value <= 1.0:
            raise GalleryError(f"a cosine-similarity threshold lies in [-1, 1], got {value}")
    sides = []
    for side in (a, b):
        items = [side] if isinstance(side, (str, Path)) else list(side)
        sides.append(fingerprint_images(extractor, items, crop, chunk=batch_size, desc="verify"))
    fa, fb = (l2_normalise(s.vectors) for s in sides)
    similarity = float((fa @ fb.T).mean())
    return Verification(similarity, value, similarity > value, len(fa), len(fb),
                        int(sum(sides[0].lossy) + sum(sides[1].lossy)))
