"""Tables of the zoo for notebooks and the README: the registry, and trained models as read
back from their folders' metadata.json (so a user's folder with such sidecars shows too)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .registry import REGISTRY
from .samples import METADATA


def registry_table():
    return pd.DataFrame([{"model": e.name, "family": e.family, "architecture": e.architecture,
                          "upsampling": e.upsampling, "seed_offset": e.seed,
                          "step_weight": e.step_weight, "description": e.description}
                         for e in REGISTRY.values()]).set_index("model")


def read_metadata(folder: str | Path) -> dict[str, dict]:
    """Per model sub-folder that has a metadata.json, its contents."""
    return {p.parent.name: json.loads(p.read_text())
            for p in sorted(Path(folder).glob(f"*/{METADATA}"))}


def model_table(folder: str | Path):
    """One row per trained model: family, upsampling, size, steps, losses, SWD, time."""
    rows = []
    for name, meta in read_metadata(folder).items():
        row = {"model": name, "family": meta["family"], "upsampling": meta["upsampling"],
               "gen_params_k": meta["generator_parameters"] / 1e3, "seed": meta["seed"],
               "steps": meta["steps"]}
        for key in meta["monitored_losses"]:
            row[f"{key}_first"] = meta["losses"][key]["first"]
            row[f"{key}_final"] = meta["losses"][key]["final"]
        row.update({"swd_start": meta["swd_start"], "swd_final": meta["swd_final"],
                    "train_s": meta["train_seconds"], "sample_s": meta["sample_seconds"]})
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def progress_table(folder: str | Path):
    """Did training work? Per model: its monitored losses (first vs final tenth of the steps)
    fell, and the sliced Wasserstein distance from its samples to real crops fell. GANs have
    no monitored loss (adversarial losses need not fall), so for them only the SWD counts."""
    rows = []
    for name, meta in read_metadata(folder).items():
        losses = meta["losses"]
        fell = [losses[k]["final"] < losses[k]["first"] for k in meta["monitored_losses"]]
        rows.append({"model": name, "monitored": ", ".join(meta["monitored_losses"]) or "-",
                     "loss_fell": all(fell), "swd_start": meta["swd_start"],
                     "swd_final": meta["swd_final"], "swd_fell": meta["swd_final"] < meta["swd_start"]})
    return pd.DataFrame(rows).set_index("model")
