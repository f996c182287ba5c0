"""Figures used by the notebooks. Functions return a matplotlib Figure; the notebook saves
it through `report.NotebookRun.save_figure`."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def image_grid(images, titles=None, ncols: int = 8, size: float = 1.6, suptitle: str | None = None):
    """Images (N, H, W, 3) in [0, 1] (or a list of differently sized ones) in a grid."""
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, image in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def spectra_row(spectra, titles, suptitle: str | None = None, size: float = 3.2, cmap: str = "viridis"):
    """Centred log-magnitude spectra side by side, each with its own colour bar.

    The colour range is the 1st-99.9th percentile, so the removed zero frequency (a single
    very dark pixel) does not flatten the rest of the picture.
    """
    fig, axes = plt.subplots(1, len(spectra), figsize=(size * len(spectra), size), squeeze=False)
    for ax, spectrum, title in zip(axes.flat, spectra, titles):
        lo, hi = np.percentile(spectrum, [1, 99.9])
        shown = ax.imshow(spectrum, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def paired_bars(df, columns, ylabel: str, title: str | None = None):
    """One group of bars per row of `df`, one bar per column in `columns`."""
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(df)), 3.2))
    width = 0.8 / len(columns)
    x = np.arange(len(df))
    for i, col in enumerate(columns):
        ax.bar(x + i * width - 0.4 + width / 2, df[col], width, label=col)
    ax.set_xticks(x)
    ax.set_xticklabels(df.index, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="k", lw=0.6)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def training_curves(history, window: int = 0, title: str | None = None):
    """Loss terms and batch accuracy per step (raw, faint) with a running mean (bold).

    `history`: a DataFrame with columns step, loss, ce, triplet, accuracy, lr. `window` 0 picks
    about a twentieth of the steps."""
    window = window or max(1, len(history) // 20)
    panels = [("loss", "CE + triplet"), ("ce", "cross-entropy"), ("triplet", "batch-hard triplet"),
              ("accuracy", "batch accuracy (train classes)"), ("lr", "learning rate")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 2.8))
    for ax, (col, label) in zip(axes, panels):
        ax.plot(history["step"], history[col], alpha=0.3, lw=0.8)
        if col != "lr":
            ax.plot(history["step"], history[col].rolling(window, min_periods=1).mean(), lw=1.8)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def embedding_scatter(points, labels, names=None, title: str | None = None, max_legend: int = 20):
    """2-D points (N, 2), one colour per label; a legend with `names[label]` if few enough."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab20" if len(classes) <= 20 else "hsv", max(len(classes), 1))
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    for j, c in enumerate(classes):
        sel = labels == c
        ax.scatter(points[sel, 0], points[sel, 1], s=9, color=cmap(j),
                   label=str(names[c]) if names is not None else str(c))
    if len(classes) <= max_legend:
        ax.legend(fontsize=7, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
