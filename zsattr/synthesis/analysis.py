"""What notebook 02 measures about the bank: code tables, per-model spectra, spectra grouped by
each architecture digit, the paper's component claims (Sec. III-A) as numbers, and the
training report by group. Pure functions over a `Bank`; figures returned, not saved."""

from __future__ import annotations

import copy

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ..fingerprint.residual import residuals
from ..fingerprint.spectra import power_spectrum, radial_profile
from .bank import Bank
from .codes import DIGITS, ArchCode, all_codes

DIGIT_NAMES = list(DIGITS)


def code_table(in_bank=None) -> pd.DataFrame:
    """All 288 codes: the six digits, readable values, the authors' class name, in the bank?"""
    in_bank = set(in_bank or [])
    rows = []
    for code in all_codes():
        row = {"code": str(code)}
        row.update({d: code.value_name(d) for d in DIGIT_NAMES})
        row["class_name"] = code.class_name
        row["in_bank"] = code in in_bank
        rows.append(row)
    return pd.DataFrame(rows).set_index("code")


def model_spectra(bank: Bank, crops: torch.Tensor, residual_filter, batch: int = 64) -> dict:
    """Per model, spectra of the residuals of its outputs on `crops` (N, 3, H, W).

    Returns 'log2d' (models, H, W) centred mean log|DFT|, 'radial_db' (models, bins) mean
    radial power in dB, 'power2d' (models, H, W) unshifted mean power, and the same three for
    the real crops themselves under 'real_*'.
    """
    out = {"log2d": [], "radial_db": [], "power2d": []}

    def add(target, res):
        # one FFT for both views: mean power (radial, peaks) and mean log-magnitude (display)
        x = res.double()
        mag = torch.fft.fft2(x - x.mean(dim=(-2, -1), keepdim=True)).abs()
        power = mag.pow(2).mean(dim=(0, 1)).numpy()
        target["log2d"].append(np.fft.fftshift(torch.log(mag + 1e-8).mean(dim=(0, 1)).numpy()))
        target["power2d"].append(power)
        target["radial_db"].append(10 * np.log10(radial_profile(power) + 1e-12))

    for i in range(len(bank)):
        outs = torch.cat([bank.apply(i, crops[j:j + batch]) for j in range(0, len(crops), batch)])
        add(out, residuals(outs, residual_filter))
    real = {"log2d": [], "radial_db": [], "power2d": []}
    add(real, residuals(crops, residual_filter))
    result = {k: np.stack(v) for k, v in out.items()}
    result.update({f"real_{k}": v[0] for k, v in real.items()})
    return result


def grouped_mean(bank: Bank, values: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """digit -> {value name -> mean of `values` over the bank's models with that value}."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for d in DIGIT_NAMES:
        groups[d] = {}
        for v, name in enumerate(DIGITS[d][1]):
            sel = [i for i, (c, _) in enumerate(bank.entries) if getattr(c, d) == v]
            if sel:
                groups[d][name] = values[sel].mean(axis=0)
    return groups


def plot_grouped_spectra(groups: dict, real: np.ndarray | None = None, size: float = 1.9):
    """One row per digit, one panel per value: mean centred log-spectra, shared colour scale."""
    ncols = max(len(v) for v in groups.values()) + (real is not None)
    fig, axes = plt.subplots(len(groups), ncols, figsize=(ncols * size, len(groups) * size),
                             squeeze=False)
    everything = [s for g in groups.values() for s in g.values()] + ([real] if real is not None else [])
    vmin, vmax = np.percentile(np.stack(everything), [1, 99.5])
    for ax in axes.flat:
        ax.axis("off")
    for r, (digit, by_value) in enumerate(groups.items()):
        panels = list(by_value.items()) + ([("real photos", real)] if real is not None else [])
        for c, (name, spec) in enumerate(panels):
            axes[r, c].imshow(spec, vmin=vmin, vmax=vmax, cmap="viridis")
            axes[r, c].set_title(f"{digit}: {name}", fontsize=8)
    fig.suptitle("Mean log|DFT| of output residuals, grouped by each digit")
    fig.tight_layout()
    return fig


def plot_grouped_radial(bank: Bank, radial_db: np.ndarray, real_radial_db: np.ndarray):
    """Mean radial spectrum (dB, relative to the real crops' residual) per digit value."""
    groups = grouped_mean(bank, radial_db - real_radial_db)
    fig, axes = plt.subplots(2, 3, figsize=(11, 5.5), sharey=True)
    freq = np.arange(radial_db.shape[1]) / (2 * (radial_db.shape[1] - 1))
    for ax, (digit, by_value) in zip(axes.flat, groups.items()):
        for name, prof in by_value.items():
            ax.plot(freq, prof, label=name)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(f"{digit}: {DIGITS[digit][0]}", fontsize=9)
        ax.legend(fontsize=7)
        ax.set_xlabel("radial frequency (cycles/pixel)")
    axes[0, 0].set_ylabel("power vs real (dB)")
    axes[1, 0].set_ylabel("power vs real (dB)")
    fig.tight_layout()
    return fig


def high_band_db(radial_db: np.ndarray, real_radial_db: np.ndarray, start: float = 0.25) -> np.ndarray:
    """Per model: mean dB above the real crops' residual over radial frequencies >= `start`
    cycles/pixel (default: the upper half of the band up to Nyquist)."""
    freq = np.arange(radial_db.shape[1]) / (2 * (radial_db.shape[1] - 1))
    band = freq >= start
    return (radial_db[:, band] - real_radial_db[band]).mean(axis=1)


def periodic_peak_db(power2d: np.ndarray, period: int = 4) -> np.ndarray:
    """Per model: how much the power at the frequencies of a `period`-pixel grid (multiples
    of 1/period cycles/pixel, DC excluded) stands above its 8 neighbours, in dB.

    Upsampling by 2 and 4 and the nonlinearities acting on such an upsampled signal put
    energy exactly there (replicated spectra and their harmonics), so this is our proxy for
    "peaks and harmonics" in the spectrum."""
    power2d = np.asarray(power2d)
    n, h, w = power2d.shape
    ratios = []
    for a in range(period):
        for b in range(period):
            if a == 0 and b == 0:
                continue
            u, v = a * h // period, b * w // period
            ring = [power2d[:, (u + du) % h, (v + dv) % w] for du in (-1, 0, 1) for dv in (-1, 0, 1)
                    if du or dv]
            ratios.append(10 * np.log10((power2d[:, u, v] + 1e-20) / (np.median(np.stack(ring), axis=0) + 1e-20)))
    return np.mean(ratios, axis=0)


def per_model_table(bank: Bank, spectra: dict) -> pd.DataFrame:
    """One row per model: code digits, training report and the spectral measures."""
    rows = []
    hb = high_band_db(spectra["radial_db"], spectra["real_radial_db"])
    pk = periodic_peak_db(spectra["power2d"])
    for i, (code, seed) in enumerate(bank.entries):
        row = {"model": bank.label_of(i), "code": str(code), "seed": seed}
        row.update({d: code.value_name(d) for d in DIGIT_NAMES})
        row.update({"high_band_db": float(hb[i]), "periodic_peak_db": float(pk[i])})
        rows.append(row)
    table = pd.DataFrame(rows)
    rep = bank.report.set_index(["code", "seed"])
    for col in ("final_mse", "steps", "seconds", "eta_reached"):
        table[col] = [rep.loc[(c, s), col] for c, s in zip(table.code, table.seed)]
    return table


def by_digit(table: pd.DataFrame, columns) -> pd.DataFrame:
    """Mean of `columns` for every value of every digit (rows 'digit=value')."""
    frames = []
    for d in DIGIT_NAMES:
        g = table.groupby(d)[list(columns)].mean()
        g.index = [f"{d}={v}" for v in g.index]
        g["n_models"] = table.groupby(d).size().values
        frames.append(g)
    out = pd.concat(frames)
    out.index.name = "component"
    return out


def block_swap_influence(bank: Bank, crops: torch.Tensor, residual_filter) -> pd.DataFrame:
    """Later blocks dominate? For each 2-block model with a same-code partner (another seed),
    swap in the partner's FIRST up-block, or its LAST up-block, and measure how far the
    output residual's radial spectrum moves (mean |dB difference|) from the original's.
    The paper's claim predicts the last-block swap moves it more."""
    rows = []
    by_code: dict[ArchCode, list[int]] = {}
    for i, (code, _) in enumerate(bank.entries):
        by_code.setdefault(code, []).append(i)

    def radial(model):
        with torch.inference_mode():
            res = residuals(model(crops), residual_filter)
        return 10 * np.log10(radial_profile(power_spectrum(res).mean(axis=(0, 1))) + 1e-12)

    for code, idx in by_code.items():
        if code.K != 1 or len(idx) < 2:
            continue
        base, donor = bank.model(idx[0]), bank.model(idx[1])
        ref = radial(base)
        moved = {}
        for name, block in (("first", 0), ("last", -1)):
            swapped = copy.deepcopy(base)
            swapped.up[block].load_state_dict(donor.up[block].state_dict())
            moved[name] = float(np.abs(radial(swapped) - ref).mean())
        rows.append({"code": str(code), "swap_first_up_block_db": moved["first"],
                     "swap_last_up_block_db": moved["last"]})
    return pd.DataFrame(rows)


def training_summary(table: pd.DataFrame) -> pd.DataFrame:
    """eta reached, MSE and time by digit value (from the per-model table)."""
    t = table.assign(eta_reached=table.eta_reached.astype(float))
    return by_digit(t, ["eta_reached", "final_mse", "seconds", "steps"])
