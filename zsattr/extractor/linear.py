"""A linear fingerprint extractor learned from synthetic models only: PCA, then shrinkage LDA.

The input is the log residual spectrum the training-free spectrum correlation uses (the input
chain's |DFT|, half-plane, log, DC dropped, mean-centred per image). Fitted on the synthetic
bank's training models (their outputs rounded to 8 bits, one class per model), the projection
keeps the directions along which *models* differ relative to how much one model's images
differ from each other (content, crop); spectrum correlation weighs every bin alike. It is the
second "ours": the same synthetic-only supervision as the ResNet, with no deep network.

- `fit_projection`: PCA (`n_components`) on all training images, then LDA in that space with
  the within-class scatter shrunk towards a scaled identity (`shrinkage` in [0, 1]).
  `shrinkage=None` gives the PCA-only control (no labels): what the synthetic labels add.
- `select`: the components and shrinkage are chosen on *validation* synthetic models
  (an inner held-out split of the training models: unseen seeds and unseen architectures),
  never on the held-out models notebook 04 reports or on the zoo; then refitted on all
  training models.
- Training seeds: `fit_linear_extractor(cfg, training_seed=s)` redraws everything random in a
  fit (the crops the models fingerprint, which crops each model gets, the inner validation
  split, the randomised PCA) from `stage.run_seed(cfg, s)`, as the ResNet's training seeds do,
  so tables state a spread over fits. `space` fits on an ablation slice of the model space.
- Saved without pickle: arrays in `projection.npz` (loaded with allow_pickle=False) and the
  metadata in `linear.json`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..core import atomic
from ..core.cache import ArtefactStore
from ..core.config import Config
from ..core.keys import Stage
from ..fingerprint.chain import INPUT_CHAIN, LOG_EPS, InputChain, input_chain
from ..images.photos import PHOTO_POOL, PhotoPool, to_tensor
from ..synthesis.bank import BANK, Bank, load_bank
from .data import holdout_split
from .stage import run_seed, space_indices, split_of

LINEAR_EXTRACTOR = Stage("linear_extractor", 2, section="linear", settings=("seed", "image_size"),
                         reads=(BANK, INPUT_CHAIN, PHOTO_POOL))
FORMAT = 1  # of projection.npz + linear.json


def spectrum_features(chain: InputChain, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """(N, 3, H, W) images in [0, 1] -> (N, D) float32: per image the log |DFT| of its residual
    over the half plane (the other half mirrors it for a real image), each channel's DC bin
    dropped (a residual's mean is ~0, its log a huge outlier), centred on the image's mean."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            magnitude = chain.magnitude(images[i:i + batch_size].float())
            half = magnitude[..., : magnitude.shape[-1] // 2 + 1]
            logmag = torch.log(half.clamp_min(LOG_EPS)).flatten(2)[:, :, 1:].flatten(1)
            out.append((logmag - logmag.mean(dim=1, keepdim=True)).numpy().astype(np.float32))
    return np.concatenate(out)


@dataclass
class LinearProjection:
    """x -> (x - mean) @ pca @ lda: the fitted extractor (lda is None for the PCA-only control)."""

    mean: np.ndarray  # (D,)
    pca: np.ndarray  # (D, n_components)
    lda: np.ndarray | None  # (n_components, m) or None
    shrinkage: float | None

    @property
    def dim(self) -> int:
        return self.pca.shape[1] if self.lda is None else self.lda.shape[1]

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float32) - self.mean) @ self.pca
        return (z if self.lda is None else z @ self.lda).astype(np.float64)

    def truncated(self, n_components: int) -> "LinearProjection":
        """The PCA-only projection on the first `n_components` components."""
        return LinearProjection(self.mean, self.pca[:, :n_components], None, None)


def pca_basis(x: np.ndarray, n_components: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and the top `n_components` principal directions (D, n), by randomised SVD."""
    mean = x.mean(axis=0)
    n_components = min(n_components, min(x.shape))
    torch.manual_seed(seed)
    _, _, v = torch.svd_lowrank(torch.from_numpy(x - mean), q=min(n_components + 16, min(x.shape)), niter=3)
    return mean.astype(np.float32), v[:, :n_components].numpy().astype(np.float32)


def lda_directions(z: np.ndarray, labels: np.ndarray, shrinkage: float) -> np.ndarray:
    """Fisher directions (n, m), m = min(classes - 1, n): generalised eigenvectors of the between-
    class scatter against the within-class scatter shrunk towards (trace / n) I by `shrinkage`,
    largest first, scaled so the shrunk within-class scatter is the identity along them."""
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
    z = np.asarray(z, dtype=np.float64)
    classes, inverse = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError("LDA needs at least 2 classes")
    n = z.shape[1]
    means = np.stack([z[inverse == c].mean(axis=0) for c in range(len(classes))])
    centred = z - means[inverse]
    within = centred.T @ centred / len(z)
    within = (1 - shrinkage) * within + shrinkage * np.trace(within) / n * np.eye(n)
    between_dev = (means - z.mean(axis=0)) * np.sqrt(np.bincount(inverse) / len(z))[:, None]
    between = between_dev.T @ between_dev
    # whiten the within-class scatter, then diagonalise the between-class one
    chol = np.linalg.cholesky(within + 1e-10 * np.trace(within) / n * np.eye(n))
    chol_inv = np.linalg.inv(chol)
    values, vectors = np.linalg.eigh(chol_inv @ between @ chol_inv.T)
    order = np.argsort(values)[::-1][: min(len(classes) - 1, n)]
    return (chol_inv.T @ vectors[:, order]).astype(np.float32)


def fit_projection(x: np.ndarray, labels: np.ndarray, n_components: int, shrinkage: float | None,
                   seed: int = 0, basis: tuple[np.ndarray, np.ndarray] | None = None) -> LinearProjection:
    """PCA then (unless `shrinkage` is None) shrinkage LDA; `basis` reuses a computed PCA."""
    mean, pca = basis if basis is not None else pca_basis(x, n_components, seed)
    pca = pca[:, :n_components]
    if shrinkage is None:
        return LinearProjection(mean, pca, None, None)
    z = (x - mean) @ pca
    return LinearProjection(mean, pca, lda_directions(z, labels, shrinkage), shrinkage)


def centroid_top1(features: np.ndarray, labels: np.ndarray, k: int, draws: int, seed: int) -> float:
    """Mean top-1 of nearest-centroid identification by cosine similarity, k support images per
    class, over seeded draws: the gallery's rule (zsattr.attribution.protocols), kept here so the
    selection needs nothing above this package."""
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    classes = np.unique(labels)
    scores = []
    for d in range(draws):
        rng = np.random.default_rng([seed, d])
        support = np.zeros(len(labels), dtype=bool)
        for c in classes:
            support[rng.choice(np.flatnonzero(labels == c), size=k, replace=False)] = True
        cents = np.stack([f[support & (labels == c)].mean(axis=0) for c in classes])
        cents /= np.maximum(np.linalg.norm(cents, axis=1, keepdims=True), 1e-12)
        pred = classes[(f[~support] @ cents.T).argmax(axis=1)]
        scores.append(np.mean(pred == labels[~support]))
    return float(np.mean(scores))


@dataclass
class LinearExtractor:
    """A fitted projection with its input chain: a method (`name`, `features(images)`) the
    attribution protocols score like any other."""

    name: str
    projection: LinearProjection
    chain: InputChain
    batch_size: int = 256

    def features(self, images: torch.Tensor) -> np.ndarray:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images (N, 3, H, W), got shape {tuple(images.shape)}")
        expected = self.projection.mean.shape[0]
        got = 3 * images.shape[2] * (images.shape[3] // 2 + 1) - 3
        if got != expected:
            raise ValueError(f"this linear extractor was fitted on images whose spectrum has {expected} "
                             f"values; images of {images.shape[2]} x {images.shape[3]} give {got}")
        return self.projection.transform(spectrum_features(self.chain, images, self.batch_size))


def model_images(bank: Bank, indices: Sequence[int], crops: torch.Tensor, per_model: int, seed: int,
                 same_crops: bool = False) -> tuple[torch.Tensor, np.ndarray]:
    """`per_model` crops fingerprinted by each model of `indices` (8-bit outputs); labels are
    positions in `indices`. Each model gets its own random crops unless `same_crops`."""
    rng = np.random.default_rng([seed, 11])
    shared = rng.choice(len(crops), size=per_model, replace=False)
    images = [bank.apply(i, crops[torch.from_numpy(shared if same_crops else
                                                   rng.choice(len(crops), size=per_model, replace=False))])
              for i in indices]
    return torch.cat(images), np.repeat(np.arange(len(indices)), per_model)


def select(x: np.ndarray, labels: np.ndarray, val_x: np.ndarray, val_labels: np.ndarray,
           val_groups: dict[str, np.ndarray], components: Sequence[int], shrinkages: Sequence[float],
           k: int, seed: int) -> tuple[dict, pd.DataFrame]:
    """Score every (components, shrinkage) pair, and the PCA-only control per component count, on
    the validation models (mean top-1 over `val_groups`, boolean masks of `val_x`, each group
    identified among itself). Returns the chosen LDA setting and the table of every candidate."""
    basis = pca_basis(x, max(components), seed)
    rows = []
    for n in components:
        for shrinkage in (None, *shrinkages):
            projection = fit_projection(x, labels, n, shrinkage, seed, basis)
            feats = projection.transform(val_x)
            scores = {group: centroid_top1(feats[mask], val_labels[mask], k, 3, seed)
                      for group, mask in val_groups.items()}
            rows.append({"components": n, "shrinkage": "none (PCA only)" if shrinkage is None else shrinkage,
                         **{f"top1 {g}": s for g, s in scores.items()}, "top1": float(np.mean(list(scores.values())))})
    table = pd.DataFrame(rows)
    lda_rows = table[table["shrinkage"] != "none (PCA only)"]
    best = lda_rows.loc[lda_rows["top1"].idxmax()]
    return {"components": int(best["components"]), "shrinkage": float(best["shrinkage"])}, table


@dataclass
class FittedLinear:
    ours: LinearExtractor  # PCA + LDA, the chosen setting
    pca_only: LinearExtractor  # the same PCA, no labels
    selection: pd.DataFrame  # validation score of every candidate
    summary: dict
    path: Path
    built_now: bool


def _training_features(cfg: Config, bank: Bank, train_indices: Sequence[int], chain: InputChain,
                       seed: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The crop pool, and every training model's `linear.images_per_model` spectra with labels."""
    pool = PhotoPool.from_config(cfg)
    crops = to_tensor(pool.sample_crops(cfg.linear.crop_pool, cfg.image_size, "train", rng=[seed, 12]))
    images, labels = model_images(bank, list(train_indices), crops, cfg.linear.images_per_model, seed)
    return crops, spectrum_features(chain, images), labels


def _fit_fixed(cfg: Config, bank: Bank, train_indices: Sequence[int], chain: InputChain, seed: int,
               settings: dict) -> tuple[dict, dict, list]:
    """A fit with given settings (an ablation: only the training models change)."""
    _, x, labels = _training_features(cfg, bank, train_indices, chain, seed)
    ours = fit_projection(x, labels, settings["components"], settings["shrinkage"], seed)
    meta = {"format": FORMAT, "components": ours.pca.shape[1], "shrinkage": settings["shrinkage"],
            "settings_from": "the full space's fit of the same training seed", "input_dim": int(x.shape[1]),
            "output_dim": ours.dim, "train_models": len(train_indices), "train_images": int(len(x)),
            "image_size": cfg.image_size}
    return {"mean": ours.mean, "pca": ours.pca, "lda": ours.lda}, meta, []


def _fit_stage(cfg: Config, bank: Bank, train_indices: Sequence[int], chain: InputChain,
               seed: int) -> tuple[dict, dict, list]:
    """Validation split inside the training models, selection, refit on all training models;
    every random draw comes from `seed` (one fit's training seed, `stage.run_seed`)."""
    lin = cfg.linear
    entries = [bank.entries[i] for i in train_indices]
    inner = holdout_split(entries, lin.validation_codes, lin.validation_seeds, seed + 1)
    # every training model's images once; the selection fits on the inner-train models' rows
    crops, x, labels = _training_features(cfg, bank, train_indices, chain, seed)
    fit_rows = np.isin(labels, inner.train)
    val_feats, val_labels, val_group = [], [], []
    for group, positions in inner.groups().items():
        if len(positions) < 2:
            continue
        v_images, v_labels = model_images(bank, [train_indices[j] for j in positions], crops,
                                          lin.validation_images, seed + 2, same_crops=True)
        val_feats.append(spectrum_features(chain, v_images))
        val_labels.append(v_labels + sum(len(np.unique(v)) for v in val_labels))
        val_group += [group] * len(v_labels)
    if not val_feats:
        raise ValueError("the validation split of the training models is empty: the bank is too small to "
                         "choose the linear extractor's settings")
    val_group = np.asarray(val_group)
    masks = {g: val_group == g for g in dict.fromkeys(val_group)}
    chosen, table = select(x[fit_rows], labels[fit_rows], np.concatenate(val_feats), np.concatenate(val_labels),
                           masks, lin.components, lin.shrinkages, lin.validation_k, seed)
    # refit on every training model, validation ones included
    ours = fit_projection(x, labels, chosen["components"], chosen["shrinkage"], seed)
    arrays = {"mean": ours.mean, "pca": ours.pca, "lda": ours.lda}
    meta = {"format": FORMAT, **chosen, "input_dim": int(x.shape[1]), "output_dim": ours.dim,
            "train_models": len(train_indices), "train_images": int(len(x)), "image_size": cfg.image_size,
            "validation_models": {g: len(p) for g, p in inner.groups().items()}}
    return arrays, meta, table.to_dict(orient="records")


def fit_linear_extractor(cfg: Config, store: ArtefactStore | None = None, space: str = "full",
                         training_seed: int = 0) -> FittedLinear:
    """Get-or-build the linear extractor on the bank's training models of `space` (notebook 04's
    split; "full" or an ablation slice, as the ResNet's), fitted from `training_seed`. The full
    space chooses its settings on validation models; an ablation reuses the settings of the full
    fit of the same training seed, so only its training models differ (a reduced space may also be
    too small to carve validation models from)."""
    store = store or ArtefactStore()
    bank = load_bank(cfg, store)
    split = split_of(cfg, bank)
    indices = space_indices(bank, split, space)
    seed = run_seed(cfg, training_seed)
    chain = input_chain(cfg, store)
    settings = None
    if space != "full":
        full = fit_linear_extractor(cfg, store, "full", training_seed).summary
        settings = {"components": full["components"], "shrinkage": full["shrinkage"]}

    def build(out_dir: Path, work_dir: Path) -> None:
        t0 = time.perf_counter()
        arrays, meta, selection = (_fit_stage(cfg, bank, indices, chain, seed) if settings is None
                                   else _fit_fixed(cfg, bank, indices, chain, seed, settings))
        meta.update(space=space, training_seed=training_seed, fit_seconds=round(time.perf_counter() - t0, 2))
        with atomic.atomic_path(out_dir / "projection.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        atomic.write_json(out_dir / "linear.json", {**meta, "selection": selection})

    art = store.get_or_build(cfg, LINEAR_EXTRACTOR, build, {"space": space, "training_seed": training_seed})
    return load_linear(art.path, chain, art.built_now)


def load_linear(path: Path, chain: InputChain, built_now: bool = False) -> FittedLinear:
    meta = json.loads((path / "linear.json").read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: linear extractor format {meta.get('format')!r}, this code reads {FORMAT}")
    with np.load(path / "projection.npz", allow_pickle=False) as f:
        mean, pca, lda = f["mean"], f["pca"], f["lda"]
    ours = LinearProjection(mean, pca, lda, meta["shrinkage"])
    selection = pd.DataFrame(meta.pop("selection"))  # empty for an ablation (settings of the full fit)
    return FittedLinear(LinearExtractor("ours (linear)", ours, chain),
                        LinearExtractor("pca only", ours.truncated(pca.shape[1]), chain),
                        selection, meta, path, built_now)
