"""The last-block experiment's measurements: a spectrum classifier, Test I and Test II.

Classifier input (why): what tells two same-architecture generators apart is not their
content (both learn the same photos) but the periodic traces their upsampling and last
convolutions leave. So each image is reduced to the log-magnitude of the 2-D DFT of its
high-pass residual (image minus a 3x3 box blur, which removes most content), averaged over
the colour channels and kept as the non-redundant half of the spectrum; a standardised
logistic regression on these features is the binary classifier. Linear and tiny, so what
it learns is the spectrum and not a deep network's own taste.

Test I: the classifier on held-out images of M1 and M2 (new latents). Test II: images of
composed models, CM1 = M1 with its last k blocks from M2 and CM2 the reverse (same latents
for all models). The flip rate is the fraction of composed-model images attributed to the
donor of the last blocks, the mean over CM1 and CM2; the control swaps only the first block.

Pair seeds: one pair's flip rates swing widely with its seeds, so the experiment is repeated
over independent pair seeds (`training.all_pairs`) and every number is reported as mean and
sample sd over them (`seed_table`, `summary_table`, `metrics`), the per-seed values beside, and
the half-width of the interval a rerun's mean over as many fresh pair seeds should fall in with
95 % probability (`rerun95`; a rerun on another machine or thread count is such a rerun).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ...attribution.metrics import rerun_halfwidth
from ...fingerprint.residual import highpass_residual
from ...fingerprint.spectra import log_magnitude_spectrum
from .models import Generator, block_groups, compose_first, compose_last, sample

KS = (1, 2, 3)
# Paper Fig. 3 numbers read off the figure (PAPER.md s.3): flip rate by upsampling and k,
# and Test I accuracy of its two models (M1, M2).
PAPER_FLIP = {"nearest": {1: 0.82, 2: 0.93, 3: 0.96}, "bilinear": {1: 0.89, 2: 0.92, 3: 0.94}}
PAPER_TEST1 = {"nearest": (0.996, 0.990), "bilinear": (0.985, 0.993)}


def spectrum_features(images: torch.Tensor) -> np.ndarray:
    """(N, 3, S, S) in [0, 1] -> (N, S * (S//2 + 1)) log |rFFT2| of the high-pass residual."""
    residual = highpass_residual(images.double())
    magnitude = torch.fft.rfft2(residual).abs().add(1e-8).log().mean(dim=1)
    return magnitude.flatten(1).numpy().astype(np.float32)


def fit_classifier(features_m1: np.ndarray, features_m2: np.ndarray, c: float = 0.01):
    """Logistic regression (label 0 = M1, 1 = M2) on standardised spectrum features."""
    x = np.concatenate([features_m1, features_m2])
    y = np.r_[np.zeros(len(features_m1)), np.ones(len(features_m2))]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
    return clf.fit(x, y)


def share_m2(clf, images: torch.Tensor) -> float:
    """Fraction of `images` the classifier attributes to M2."""
    return float(clf.predict(spectrum_features(images)).mean())


def run_pair(m1: Generator, m2: Generator, n_train: int, n_test: int, seed: int,
             ks=KS, device: str = "cpu") -> dict:
    """Classifier, Test I and Test II for one pair. Returns shares attributed to M2 per source.

    Latent seeds: `seed` (classifier training), `seed + 1` (every test image), so composed
    models see the same latents as the held-out Test I images.
    """
    train = {name: sample(m, n_train, seed, device=device) for name, m in (("M1", m1), ("M2", m2))}
    clf = fit_classifier(spectrum_features(train["M1"]), spectrum_features(train["M2"]))
    rows = {name: share_m2(clf, sample(m, n_test, seed + 1, device=device))
            for name, m in (("M1", m1), ("M2", m2))}
    for k in ks:
        rows[f"CM1 k={k}"] = share_m2(clf, sample(compose_last(m1, m2, k), n_test, seed + 1, device=device))
        rows[f"CM2 k={k}"] = share_m2(clf, sample(compose_last(m2, m1, k), n_test, seed + 1, device=device))
    rows["CM1 first"] = share_m2(clf, sample(compose_first(m1, m2), n_test, seed + 1, device=device))
    rows["CM2 first"] = share_m2(clf, sample(compose_first(m2, m1), n_test, seed + 1, device=device))
    test1 = {"M1": 1 - rows["M1"], "M2": rows["M2"]}
    return {
        "share_m2": rows,
        "test1_accuracy": (test1["M1"] + test1["M2"]) / 2,
        "test1_per_model": test1,
        "flip_rate": {k: (rows[f"CM1 k={k}"] + 1 - rows[f"CM2 k={k}"]) / 2 for k in ks},
        "control_flip_rate": (rows["CM1 first"] + 1 - rows["CM2 first"]) / 2,
        "n_blocks": len(block_groups(m1)),
    }


def seed_table(by_seed: dict) -> pd.DataFrame:
    """One row per (pair seed, upsampling): Test I accuracy, flip rate per k, the control's,
    and per k the two halves of the flip rate (CM1's and CM2's share given to their donor),
    which expose a one-sided bias. `by_seed`: {pair seed: {upsampling: run_pair(...)}}."""
    rows = []
    for pair_seed, results in by_seed.items():
        for ups, res in results.items():
            row = {"pair_seed": pair_seed, "upsampling": ups, "test1_accuracy": res["test1_accuracy"]}
            for k, flip in res["flip_rate"].items():
                row[f"flip_k{k}"] = flip
            row["control_flip"] = res["control_flip_rate"]
            share = res["share_m2"]
            for k in res["flip_rate"]:
                row[f"CM1_to_donor_k{k}"] = share[f"CM1 k={k}"]
                row[f"CM2_to_donor_k{k}"] = 1 - share[f"CM2 k={k}"]
            rows.append(row)
    return pd.DataFrame(rows).set_index(["pair_seed", "upsampling"])


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample sd (ddof 1) of `values`; the sd of a single value is NaN (unknown)."""
    values = np.asarray(list(values), dtype=float)
    if values.size == 0:
        raise ValueError("no values")
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else float("nan")


def summary_table(by_seed: dict) -> pd.DataFrame:
    """One row per (upsampling, measure): mean and sd over pair seeds, the rerun interval's
    half-width (`attribution.metrics.rerun_halfwidth`), the number of pair seeds, and the paper's
    value. Measures: Test I accuracy, flip rate for each k, the first-block control."""
    per_seed = seed_table(by_seed)
    measures = [c for c in per_seed.columns if c == "test1_accuracy" or "flip" in c]
    rows = []
    for ups, group in per_seed.groupby(level="upsampling", sort=False):
        for col in measures:
            mean, sd = mean_sd(group[col])
            if col == "test1_accuracy":
                name, paper = "Test I accuracy", float(np.mean(PAPER_TEST1[ups]))
            elif col == "control_flip":
                name, paper = "flip, first block (control)", float("nan")
            else:
                k = int(col.removeprefix("flip_k"))
                name, paper = f"flip, last {k}", PAPER_FLIP[ups].get(k, float("nan"))
            rows.append({"upsampling": ups, "measure": name, "mean": mean, "sd": sd,
                         "rerun95": rerun_halfwidth(sd, len(group)), "n_pair_seeds": len(group),
                         "paper": paper})
    return pd.DataFrame(rows).set_index(["upsampling", "measure"])


def mean_shares(by_seed: dict) -> dict:
    """{upsampling: {"share_m2": {source: mean over pair seeds}}}, for `confusion_figure`."""
    out: dict = {}
    for results in by_seed.values():
        for ups, res in results.items():
            for source, share in res["share_m2"].items():
                out.setdefault(ups, {"share_m2": {}})["share_m2"].setdefault(source, []).append(share)
    return {ups: {"share_m2": {s: float(np.mean(v)) for s, v in r["share_m2"].items()}} for ups, r in out.items()}


def test1_table(by_seed: dict):
    """Test I accuracy per model, mean and sd over pair seeds, beside the paper's."""
    rows = []
    for ups in next(iter(by_seed.values())):
        for i, m in enumerate(("M1", "M2")):
            mean, sd = mean_sd(res[ups]["test1_per_model"][m] for res in by_seed.values())
            rows.append({"upsampling": ups, "model": m, "test1_accuracy": mean, "sd": sd,
                         "paper_test1_accuracy": PAPER_TEST1[ups][i]})
    return pd.DataFrame(rows).set_index(["upsampling", "model"])


def confusion_figure(results: dict, k: int = 2):
    """Fig. 3 (d)(e)-style matrices per upsampling: rows are image sources (M1, M2, CM1, CM2
    with the last `k` blocks swapped), columns the predicted class, cells the row's fractions.
    `results`: {upsampling: {"share_m2": ...}}, one pair's or `mean_shares` over pair seeds."""
    fig, axes = plt.subplots(1, len(results), figsize=(3.6 * len(results), 3.6), squeeze=False)
    for ax, (ups, res) in zip(axes.flat, results.items()):
        sources = ["M1", "M2", f"CM1 k={k}", f"CM2 k={k}"]
        share = np.array([res["share_m2"][s] for s in sources])
        matrix = np.stack([1 - share, share], axis=1)
        ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="white" if v > 0.6 else "black")
        ax.set_xticks([0, 1], ["M1", "M2"])
        ax.set_yticks(range(4), ["M1", "M2", f"CM1 (last {k} of M2)", f"CM2 (last {k} of M1)"])
        ax.set_xlabel("predicted")
        ax.set_title(f"{ups} upsampling", fontsize=10)
    fig.suptitle(f"Test I (top rows) and Test II, last {k} blocks swapped")
    fig.tight_layout()
    return fig


def flip_figure(by_seed: dict):
    """Fig. 3-style: flip rate against the number of swapped last blocks, mean +/- sd over pair
    seeds (each seed a faint dot), beside the paper's; the control as a band (mean +/- sd)."""
    per_seed = seed_table(by_seed)
    ks = sorted(int(c.removeprefix("flip_k")) for c in per_seed.columns if c.startswith("flip_k"))
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for i, (ups, group) in enumerate(per_seed.groupby(level="upsampling", sort=False)):
        color, shift = f"C{i}", (i - 0.5) * 0.08
        stats = [mean_sd(group[f"flip_k{k}"]) for k in ks]
        ax.errorbar([k + shift for k in ks], [m for m, _ in stats], yerr=[np.nan_to_num(s) for _, s in stats],
                    fmt="o-", color=color, capsize=3, label=f"{ups} (mean +/- sd, {len(group)} pair seeds)")
        for k in ks:
            ax.plot([k + shift] * len(group), group[f"flip_k{k}"], ".", color=color, alpha=0.35, ms=4)
        ax.plot(ks, [PAPER_FLIP[ups].get(k, np.nan) for k in ks], "s--", color=color, alpha=0.5,
                label=f"{ups} (paper)")
        mean, sd = mean_sd(group["control_flip"])
        ax.axhline(mean, color=color, ls=":", label=f"{ups} control (first block)")
        if np.isfinite(sd):
            ax.axhspan(mean - sd, mean + sd, color=color, alpha=0.08)
    ax.axhline(0.5, color="grey", lw=0.6)
    ax.set_xlabel("last blocks swapped (k)")
    ax.set_ylabel("attributed to donor")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(ks)
    ax.legend(fontsize=6.5, loc="center right")
    fig.tight_layout()
    return fig


def sources(m1: Generator, m2: Generator, k: int = 2) -> dict[str, Generator]:
    """The models shown side by side: the pair, and its two compositions at `k`."""
    return {"M1": m1, "M2": m2, f"CM1 k={k}": compose_last(m1, m2, k), f"CM2 k={k}": compose_last(m2, m1, k)}


def sample_sheet(pairs: dict, n: int = 6, seed: int = 1, k: int = 2):
    """Images (channels last) and titles: `n` per model of `sources`, for every pair."""
    images, titles = [], []
    for ups, (m1, m2) in pairs.items():
        for name, model in sources(m1, m2, k).items():
            images += list(sample(model, n, seed).permute(0, 2, 3, 1).numpy())
            titles += [f"{ups} {name}"] + [""] * (n - 1)
    return images, titles


def residual_spectra(pairs: dict, n: int = 256, seed: int = 1, k: int = 2):
    """Mean log |DFT| of the high-pass residual per model of `sources` (the fingerprints)."""
    spectra, titles = [], []
    for ups, (m1, m2) in pairs.items():
        for name, model in sources(m1, m2, k).items():
            images = highpass_residual(sample(model, n, seed)).permute(0, 2, 3, 1).numpy()
            spectra.append(log_magnitude_spectrum(images))
            titles.append(f"{ups} {name}")
    return spectra, titles


def metrics(by_seed: dict) -> dict:
    """The report's metrics, nested by measure, upsampling type and k (a string key): each a
    {"mean", "sd", "rerun95", "per_seed"} over pair seeds (sd and rerun95 NaN for a single pair seed)."""
    per_seed = seed_table(by_seed)

    def stat(column):
        mean, sd = mean_sd(column)
        return {"mean": mean, "sd": sd, "rerun95": rerun_halfwidth(sd, len(column)),
                "per_seed": [float(v) for v in column]}

    groups = list(per_seed.groupby(level="upsampling", sort=False))
    ks = [c.removeprefix("flip_k") for c in per_seed.columns if c.startswith("flip_k")]
    return {
        "pair_seeds": len(by_seed),
        "test1_accuracy": {ups: stat(g["test1_accuracy"]) for ups, g in groups},
        "flip_rate": {ups: {k: stat(g[f"flip_k{k}"]) for k in ks} for ups, g in groups},
        "control_flip_rate": {ups: stat(g["control_flip"]) for ups, g in groups},
    }
