"""Figures of the zoo for notebook 00: samples per model and spectra per model, in grids."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def sample_rows(images_by_model: dict, per_row: int = 8, size: float = 1.1):
    """One row per model: its first `per_row` samples, the model's name on the left."""
    names = list(images_by_model)
    fig, axes = plt.subplots(len(names), per_row, figsize=(per_row * size + 1.4, len(names) * size),
                             squeeze=False)
    for r, name in enumerate(names):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images_by_model[name]):
                ax.imshow(np.clip(images_by_model[name][c], 0, 1), interpolation="nearest")
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.subplots_adjust(wspace=0.04, hspace=0.04)
    return fig


def spectra_grid(spectra: dict, ncols: int = 6, size: float = 2.0, cmap: str = "viridis",
                 shared_scale: bool = True, suptitle: str | None = None):
    """Centred spectra in a grid, one panel per entry; one colour scale for all if `shared_scale`."""
    names = list(spectra)
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size + 0.4), squeeze=False)
    values = np.stack([spectra[n] for n in names])
    lo, hi = (np.percentile(values, 1), np.percentile(values, 99)) if shared_scale else (None, None)
    for ax in axes.flat:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        shown = ax.imshow(spectra[name], cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(name, fontsize=8)
    fig.colorbar(shown, ax=axes.ravel().tolist(), fraction=0.02, pad=0.01)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def signed_to_display(x) -> np.ndarray:
    """Images (N, 3, H, W) in [-1, 1] (a tensor) -> (N, H, W, 3) in [0, 1], for imshow."""
    return ((x + 1) / 2).permute(0, 2, 3, 1).numpy()


def translation_rows(examples: dict, titles: tuple[str, ...] = ("input", "output", "reference"),
                     size: float = 1.1):
    """Image-to-image examples, one row per model: for each example, its input, the model's
    output and the clean reference side by side. `examples[model]` is a list of such triplets
    (H, W, 3) in [0, 1]; an input may be smaller (a super-resolver's) and is shown at the same
    size, pixelated, so what the model had to work from is visible."""
    names = list(examples)
    n_cols = max(len(v) for v in examples.values()) * len(titles)
    fig, axes = plt.subplots(len(names), n_cols, figsize=(n_cols * size + 1.4, len(names) * size + 0.3),
                             squeeze=False)
    for r, name in enumerate(names):
        images = [image for triplet in examples[name] for image in triplet]
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(np.clip(images[c], 0, 1), interpolation="nearest")
            if r == 0:
                ax.set_title(titles[c % len(titles)], fontsize=7)
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.subplots_adjust(wspace=0.04, hspace=0.04)
    return fig
