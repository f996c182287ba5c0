"""FFD (Frechet Frequency Distance) and a coverage diversity metric: how well a synthetic bank's
fingerprints cover the real models' (PAPER.md section 8, Table II).

Per model, one vector: noise residual (the preset's residual filter) -> power spectrum per
channel -> azimuthal average (`fingerprint.spectra.radial_profile`, one bin per frequency step) ->
mean over the model's images and the channels -> 10*log10 -> DC bin dropped -> the vector's own
mean subtracted. Why each choice:
- one bin per frequency step (32 at 64 px) keeps every distinct radius the DFT has;
- log (dB): spectra span decades, and generator traces are multiplicative (a kernel's response
  multiplies the spectrum), so they become additive offsets;
- mean over images *before* the log: a model's expected power, not the mean of noisy logs;
- DC dropped: each image's mean is removed before the DFT, so the DC bin carries nothing;
- own mean removed: the overall residual energy depends on image content and contrast (real
  models generate, synthetic ones reconstruct photos); FFD should compare spectral *shape*.

Real models are the images of a folder with one sub-folder per model (the zoo, or a user's).
Synthetic models see the same fixed holdout crops, so content is held constant across them.

FFD between sets of vectors: Gaussian fits with Ledoit-Wolf shrinkage on both sides (16 real
models in 31 dimensions give a singular covariance; the same estimator on both sides keeps the
comparison fair), `frechet.frechet_distance` in float64. Rows are compared at EQUAL size: each
draw subsamples every synthetic row to the same number of models (without replacement) and
resamples the real models with replacement; the table gives the mean and the 2.5-97.5 %
percentiles over the draws.

Diversity = coverage (Naeem et al., ICML 2020): the fraction of real models whose k-nearest-
neighbour ball among the real models (radius = distance to the k-th nearest other real model)
contains at least one synthetic model. It asks whether the synthetic fingerprints reach every
real one, which a mean-and-covariance distance can miss (a bank can match the real mean and
spread while leaving whole families uncovered).
"""

from __future__ import annotations

import logging

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ..core import atomic
from ..core.cache import ArtefactStore
from ..core.config import Config
from ..core.keys import Stage
from ..core.progress import progress
from ..fingerprint.chain import INPUT_CHAIN, input_chain
from ..fingerprint.residual import residuals
from ..fingerprint.spectra import radial_spectrum
from ..images.folders import scan_image_folder
from ..images.photos import PHOTO_POOL, PhotoPool, to_tensor
from ..synthesis import ablation_subsets, build_model, load_bank
from ..synthesis.bank import BANK
from ..zoo import ZOO, build_zoo
from .frechet import frechet_distance, gaussian_stats

log = logging.getLogger(__name__)
# Reads the zoo's samples, the trained bank and the banks of `ffd.fewer_steps` (keyed through
# the bank section and ffd.fewer_steps), the residual filter and holdout crops.
FFD_VECTORS = Stage("ffd_vectors", 1, section="ffd", settings=("seed", "image_size"),
                    reads=(ZOO, BANK, INPUT_CHAIN, PHOTO_POOL))


def spectrum_vector(images: torch.Tensor, residual: torch.nn.Module) -> np.ndarray:
    """The model vector of images (N, 3, H, W) in [0, 1] (see the module docstring)."""
    res = residuals(images, residual)
    profile = radial_spectrum(res, log=True)[1:]
    return profile - profile.mean()


def _folder_vectors(folder, n: int, residual) -> tuple[list[str], np.ndarray]:
    scanned = scan_image_folder(folder)
    names, vectors = [], []
    for name, paths in scanned.sources.items():
        if len(paths) < n:
            raise ValueError(f"model folder {name!r} has {len(paths)} images; FFD needs {n} (ffd_images)")
        images = np.stack([scanned.load(p) for p in paths[:n]])
        vectors.append(spectrum_vector(torch.from_numpy(images.transpose(0, 3, 1, 2)).float(), residual))
        names.append(name)
    return names, np.stack(vectors)


def _bank_vectors(models, crops: torch.Tensor, residual, desc: str) -> np.ndarray:
    """`models`: callables taking (N, 3, H, W) crops; one vector each."""
    out = []
    for apply in progress(models, desc=desc):
        with torch.inference_mode():
            out.append(spectrum_vector(apply(crops).clamp(0, 1), residual))
    return np.stack(out)


def model_vectors(cfg: Config, store: ArtefactStore | None = None) -> dict[str, np.ndarray | list]:
    """Get-or-build every vector notebook 03 needs: real models (the zoo), the trained bank,
    the same architectures untrained (random weights), and banks trained for fewer steps."""
    store = store or ArtefactStore()
    zoo_folder = build_zoo(cfg, store)
    banks = {"trained": load_bank(cfg, store)}
    for steps in cfg.ffd.fewer_steps:
        banks[f"steps_{steps}"] = load_bank(cfg.replace(**{"bank.steps": steps}), store)

    def build(out_dir, work_dir):
        residual = input_chain(cfg, store).residual_filter
        pool = PhotoPool.from_config(cfg)
        crops = to_tensor(pool.sample_crops(cfg.ffd.images, cfg.image_size, "holdout", rng=cfg.seed + 3001))
        arrays = {}
        names, arrays["real"] = _folder_vectors(zoo_folder, cfg.ffd.images, residual)
        trained = banks["trained"]
        arrays["trained"] = _bank_vectors([lambda x, i=i: trained.apply(i, x) for i in range(len(trained))],
                                          crops, residual, "trained bank")
        untrained = [build_model(c, s).eval() for c, s in trained.entries]
        arrays["untrained"] = _bank_vectors(untrained, crops, residual, "untrained bank")
        for key, bank in banks.items():
            if key != "trained":
                arrays[key] = _bank_vectors([lambda x, i=i, b=bank: b.apply(i, x) for i in range(len(bank))],
                                            crops, residual, key)
        with atomic.atomic_path(out_dir / "vectors.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays, real_names=np.array(names))

    art = store.get_or_build(cfg, FFD_VECTORS, build)
    with np.load(art.path / "vectors.npz") as data:
        out = {k: data[k] for k in data.files}
    out["real_names"] = [str(n) for n in out["real_names"]]
    out["entries"] = [(str(c), s) for c, s in banks["trained"].entries]
    return out


def table_rows(vectors: dict) -> dict[str, np.ndarray]:
    """Synthetic vector sets by Table II row name, plus the rows the paper lacks."""
    entries = vectors["entries"]
    index = {e: i for i, e in enumerate(entries)}
    rows = {}
    for name, subset in ablation_subsets(sorted({c for c, _ in entries})).items():
        chosen = [index[(str(c), s)] for c, s in subset.select([(c, s) for c, s in entries])]
        rows[name] = vectors["trained"][chosen]
    rows["untrained (random weights)"] = vectors["untrained"]
    for key in sorted((k for k in vectors if k.startswith("steps_")), key=lambda k: int(k[6:])):
        rows[f"fewer steps ({key[6:]})"] = vectors[key]
    return rows


def coverage(real: np.ndarray, synthetic: np.ndarray, k: int) -> float:
    """Fraction of real vectors whose k-NN ball among the real ones holds a synthetic vector."""
    d_real = np.linalg.norm(real[:, None] - real[None], axis=-1)
    np.fill_diagonal(d_real, np.inf)
    k = min(k, len(real) - 1)
    radius = np.sort(d_real, axis=1)[:, k - 1]
    nearest_synthetic = np.linalg.norm(real[:, None] - synthetic[None], axis=-1).min(axis=1)
    return float(np.mean(nearest_synthetic <= radius))


def _zero_sum_basis(d: int) -> np.ndarray:
    """(d, d-1) orthonormal basis of the vectors whose entries sum to zero."""
    q, _ = np.linalg.qr(np.column_stack([np.ones(d), np.eye(d)[:, :-1]]))
    return q[:, 1:]


def ffd(real: np.ndarray, synthetic: np.ndarray) -> float:
    """FFD of two sets of model vectors (see the module docstring).

    The vectors have their own mean removed, so they lie in the (D-1)-dimensional zero-sum
    subspace; they are expressed in an orthonormal basis of it first (distances unchanged),
    otherwise every covariance would be singular along the all-ones direction. Ledoit-Wolf
    shrinkage then handles having fewer models than dimensions; a bootstrap draw with many
    repeated models can still leave a covariance nearly singular, which the eigh-based
    distance handles exactly (allow_singular)."""
    basis = _zero_sum_basis(real.shape[1])
    mu_r, s_r = gaussian_stats(real @ basis, shrinkage="ledoit-wolf")
    mu_s, s_s = gaussian_stats(synthetic @ basis, shrinkage="ledoit-wolf")
    return frechet_distance(mu_r, s_r, mu_s, s_s, allow_singular=True)


def _bootstrap_index(rng: np.random.Generator, n: int) -> np.ndarray:
    """A bootstrap resample of n items with at least min(3, n) distinct ones (a draw of one
    repeated model has no covariance at all)."""
    while True:
        idx = rng.choice(n, n, replace=True)
        if len(np.unique(idx)) >= min(3, n):
            return idx


def ffd_table(vectors: dict, n_draws: int, k: int, seed: int = 0, min_models: int = 4):
    """FFD and coverage per row at equal size, with paired bootstrap percentile intervals.

    Each draw resamples the real models once (with replacement) and subsamples every row to
    the same number of synthetic models, so rows within a draw face the same real set: the
    difference to the full space (`ffd_vs_full`) has a much tighter interval than either FFD,
    whose spread is mostly the real side's (few real models)."""
    rows = table_rows(vectors)
    real = vectors["real"]
    usable = {n: v for n, v in rows.items() if len(v) >= min_models}
    if "full" not in usable:
        raise ValueError("the full bank has fewer than min_models models")
    size = min(len(v) for v in usable.values())
    rng = np.random.default_rng(seed)
    draws = {name: ([], []) for name in usable}
    for _ in range(n_draws):
        boot = real[_bootstrap_index(rng, len(real))]
        for name, synthetic in usable.items():
            sub = synthetic[rng.choice(len(synthetic), size, replace=False)]
            draws[name][0].append(ffd(boot, sub))
            draws[name][1].append(coverage(real, sub, k))
    full_ffd = np.array(draws["full"][0])
    records = []
    for name, synthetic in rows.items():
        record = {"row": name, "n_models": len(synthetic), "n_compared": size if name in usable else 0}
        if name in usable:
            f, c = np.array(draws[name][0]), np.array(draws[name][1])
            record.update(ffd=f.mean(), ffd_lo=np.percentile(f, 2.5), ffd_hi=np.percentile(f, 97.5),
                          ffd_vs_full=(f - full_ffd).mean(), ffd_vs_full_lo=np.percentile(f - full_ffd, 2.5),
                          ffd_vs_full_hi=np.percentile(f - full_ffd, 97.5), coverage=c.mean(),
                          coverage_lo=np.percentile(c, 2.5), coverage_hi=np.percentile(c, 97.5))
        records.append(record)
    return pd.DataFrame(records).set_index("row")


def embedding_2d(vectors: dict) -> tuple[np.ndarray, np.ndarray]:
    """PCA of real and trained-synthetic vectors together: (real (R, 2), synthetic (S, 2))."""
    both = np.vstack([vectors["real"], vectors["trained"]])
    centred = both - both.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ vt[:2].T
    return projected[:len(vectors["real"])], projected[len(vectors["real"]):]


def plot_radial(vectors: dict):
    """Radial spectra (shape only, dB): each real model, and the synthetic banks' means."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    freqs = np.arange(1, vectors["real"].shape[1] + 1) / (2 * vectors["real"].shape[1])
    for name, v in zip(vectors["real_names"], vectors["real"]):
        ax.plot(freqs, v, color="tab:red", lw=0.8, alpha=0.6)
    ax.plot([], [], color="tab:red", lw=0.8, label="real models (zoo), one line each")
    for key, style in (("trained", "k-"), ("untrained", "k:")):
        mean, sd = vectors[key].mean(0), vectors[key].std(0)
        ax.plot(freqs, mean, style, lw=2, label=f"synthetic bank, {key}: mean")
        if key == "trained":
            ax.fill_between(freqs, mean - sd, mean + sd, color="k", alpha=0.12, label="trained: ±1 sd")
    ax.set_xlabel("frequency (cycles/pixel)")
    ax.set_ylabel("residual power, dB (own mean removed)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_embedding(vectors: dict):
    real, synthetic = embedding_2d(vectors)
    fig, ax = plt.subplots(figsize=(6, 4.6))
    ax.scatter(synthetic[:, 0], synthetic[:, 1], s=6, c="0.6", label="synthetic (trained bank)")
    ax.scatter(real[:, 0], real[:, 1], s=40, c="tab:red", marker="*", label="real models (zoo)")
    for name, (x, y) in zip(vectors["real_names"], real):
        ax.annotate(name, (x, y), fontsize=6)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
