"""Tables of the zoo for notebooks and the README: the registry, and trained models as read
back from their folders' metadata.json (so a user's folder with such sidecars shows too)."""

from __future__ import annotations

import json
from pathlib import Path

from .registry import REGISTRY
from .samples import METADATA


def registry_table():
    import pandas as pd

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
    import pandas as pd

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
