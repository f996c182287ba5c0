"""Tables of the zoo for notebooks and the README: the registry, and trained models as read
back from their folders' metadata.json (so a user's folder with such sidecars shows too)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .reconstruction import IMAGE_TO_IMAGE, passes
from .registry import REGISTRY, UNCONDITIONAL
from .samples import METADATA


def registry_table():
    return pd.DataFrame([{"model": e.name, "tier": e.tier, "family": e.family, "architecture": e.architecture,
                          "upsampling": e.upsampling, "seed_offset": e.seed, "finetune_of": e.finetune_of,
                          "step_weight": e.step_weight, "description": e.description}
                         for e in REGISTRY.values()]).set_index("model")


def read_metadata(folder: str | Path) -> dict[str, dict]:
    """Per model sub-folder that has a metadata.json, its contents."""
    return {p.parent.name: json.loads(p.read_text())
            for p in sorted(Path(folder).glob(f"*/{METADATA}"))}


def _tier(meta: dict) -> str:
    return meta.get("tier", UNCONDITIONAL)  # sidecars written before the tiers existed


def model_table(folder: str | Path):
    """One row per trained model: tier, family, upsampling, size, steps, losses, SWD, random-feature
    FD and diversity (unconditional tier), PSNR (image-to-image tier only), time."""
    rows = []
    for name, meta in read_metadata(folder).items():
        row = {"model": name, "tier": _tier(meta), "family": meta["family"], "upsampling": meta["upsampling"],
               "gen_params_k": meta["generator_parameters"] / 1e3, "seed": meta["seed"],
               "steps": meta["steps"]}
        for key in meta["monitored_losses"]:
            row[f"{key}_first"] = meta["losses"][key]["first"]
            row[f"{key}_final"] = meta["losses"][key]["final"]
        row.update({"swd_start": meta["swd_start"], "swd_final": meta["swd_final"],
                    "fd_final": meta.get("fd_final", np.nan), "diversity": meta.get("diversity", np.nan),
                    "psnr_db": meta.get("psnr_db", np.nan),
                    "train_s": meta["train_seconds"], "sample_s": meta["sample_seconds"]})
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def quality_table(folder: str | Path, bar: float | None):
    """The image-to-image tier's check, one row per model of the tier: PSNR (dB) of its holdout
    outputs against the clean crops, before training and of the no-learning input, and whether
    it reaches `bar` (`passed` is None when `bar` is None: reported, not enforced). The check
    uses `bar` as given, so a changed bar needs no retraining."""
    rows = []
    for name, meta in read_metadata(folder).items():
        if _tier(meta) != IMAGE_TO_IMAGE:
            continue
        passed = passes(meta["psnr_db"], bar)
        rows.append({"model": name, "architecture": meta["architecture"], "degradation": meta["degradation"],
                     "finetune_of": meta.get("finetune_of") or "-", "steps": meta["steps"],
                     "psnr_input_db": np.nan if meta["psnr_input_db"] is None else meta["psnr_input_db"],
                     "psnr_start_db": meta["psnr_start_db"], "psnr_db": meta["psnr_db"],
                     "bar_db": np.nan if bar is None else bar, "passed": passed,
                     "check": "not enforced" if passed is None else ("pass" if passed else "FAIL"),
                     "train_s": meta["train_seconds"]})
    columns = ["model", "architecture", "degradation", "finetune_of", "steps", "psnr_input_db", "psnr_start_db",
               "psnr_db", "bar_db", "passed", "check", "train_s"]
    return pd.DataFrame(rows, columns=columns).set_index("model")


def generation_passes(swd_start: float, swd_final: float, diversity: float, swd_bar: float | None,
                      diversity_bar: float | None, fd_start: float = np.nan, fd_final: float = np.nan,
                      fd_bar: float | None = None) -> bool | None:
    """The unconditional tier's check: None when the preset states no bar (reported only), else
    every stated bar must hold: the SWD of its samples to real crops fell below the untrained
    model's and is at most `swd_bar`; the random-feature Frechet distance fell below the untrained
    model's and is at most `fd_bar`; the relative diversity is at least `diversity_bar`. A bar that
    is None is not applied; a measure that was not recorded (NaN) fails its bar."""
    if swd_bar is None and diversity_bar is None and fd_bar is None:
        return None
    ok = True
    if swd_bar is not None:
        ok = ok and swd_final < swd_start and swd_final <= swd_bar
    if fd_bar is not None:
        ok = ok and fd_final < fd_start and fd_final <= fd_bar
    if diversity_bar is not None:
        ok = ok and diversity >= diversity_bar
    return bool(ok)


def _nan(value) -> float:
    return np.nan if value is None else float(value)


def generation_table(folder: str | Path, swd_bar: float | None, diversity_bar: float | None,
                     fd_bar: float | None = None):
    """The unconditional tier's check, one row per model of the tier (GANs, VAEs, flow,
    diffusion): the sliced Wasserstein distance (16x16) and the random-feature Frechet distance of
    its samples to real crops before and after training, next to two sets of real crops
    (`*_real_floor`), and its samples' diversity relative to real crops
    (`samples.relative_diversity`: ~1 as varied as real crops, ~0 collapsed), against the bars;
    `check` is "pass", "FAIL" or "not enforced" (no bar stated). Uses the bars as given: a changed
    bar needs no retraining. Sidecars without a measure show NaN and fail that measure's bar."""
    rows = []
    for name, meta in read_metadata(folder).items():
        if _tier(meta) != UNCONDITIONAL:
            continue
        row = {"model": name, "family": meta["family"], "upsampling": meta["upsampling"], "steps": meta["steps"],
               "swd_start": meta["swd_start"], "swd_final": meta["swd_final"],
               "swd_real_floor": _nan(meta.get("swd_real_floor")), "swd_bar": _nan(swd_bar),
               "fd_start": _nan(meta.get("fd_start")), "fd_final": _nan(meta.get("fd_final")),
               "fd_real_floor": _nan(meta.get("fd_real_floor")), "fd_bar": _nan(fd_bar),
               "diversity_start": _nan(meta.get("diversity_start")), "diversity": _nan(meta.get("diversity")),
               "diversity_bar": _nan(diversity_bar)}
        passed = generation_passes(row["swd_start"], row["swd_final"], row["diversity"], swd_bar, diversity_bar,
                                   row["fd_start"], row["fd_final"], fd_bar)
        rows.append({**row, "passed": passed,
                     "check": "not enforced" if passed is None else ("pass" if passed else "FAIL"),
                     "train_s": meta["train_seconds"]})
    columns = ["model", "family", "upsampling", "steps", "swd_start", "swd_final", "swd_real_floor", "swd_bar",
               "fd_start", "fd_final", "fd_real_floor", "fd_bar", "diversity_start", "diversity", "diversity_bar",
               "passed", "check", "train_s"]
    return pd.DataFrame(rows, columns=columns).set_index("model")


def progress_table(folder: str | Path):
    """Did training work? Per model: its monitored losses (first vs final tenth of the steps)
    fell, and the sliced Wasserstein distance from its samples to real crops fell. GANs have
    no monitored loss (adversarial losses need not fall), so for them only the SWD counts.
    For the image-to-image tier the measure is the PSNR of its holdout outputs (`psnr_rose`:
    above the model's PSNR before this training); its SWD is to the very crops it was given."""
    rows = []
    for name, meta in read_metadata(folder).items():
        losses = meta["losses"]
        fell = [losses[k]["final"] < losses[k]["first"] for k in meta["monitored_losses"]]
        i2i = _tier(meta) == IMAGE_TO_IMAGE
        rows.append({"model": name, "tier": _tier(meta), "monitored": ", ".join(meta["monitored_losses"]) or "-",
                     "loss_fell": all(fell), "swd_start": meta["swd_start"],
                     "swd_final": meta["swd_final"], "swd_fell": meta["swd_final"] < meta["swd_start"],
                     "psnr_rose": meta["psnr_db"] > meta["psnr_start_db"] if i2i else None})
    return pd.DataFrame(rows).set_index("model")
