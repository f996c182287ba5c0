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
    """One row per trained model: tier, family, upsampling, size, steps, losses, SWD, PSNR
    (image-to-image tier only), time."""
    rows = []
    for name, meta in read_metadata(folder).items():
        row = {"model": name, "tier": _tier(meta), "family": meta["family"], "upsampling": meta["upsampling"],
               "gen_params_k": meta["generator_parameters"] / 1e3, "seed": meta["seed"],
               "steps": meta["steps"]}
        for key in meta["monitored_losses"]:
            row[f"{key}_first"] = meta["losses"][key]["first"]
            row[f"{key}_final"] = meta["losses"][key]["final"]
        row.update({"swd_start": meta["swd_start"], "swd_final": meta["swd_final"],
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
