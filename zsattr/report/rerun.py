"""Does a rerun land inside the intervals a run states? (`zsattr compare-runs REFERENCE RERUN`)

Training amplifies float differences (another machine, another torch thread count), so the
project states every trained result as a mean over seeds with its spread. This module reads
two runs' report JSONs (`reports/<preset>/*.json`, one per notebook) and sets each result of
the rerun beside the reference's interval: mean +/- `rerun95`, the half-width in which a
rerun's mean over as many fresh seeds should fall with 95 % probability
(`attribution.metrics.rerun_halfwidth`), computed from the reference's sd and seed count.

Results read, where both runs have them:
- 01: Test I accuracy, flip rate per upsampling and k, the first-block control (over pair seeds);
- 04: held-out synthetic top-1 per method and group (over training seeds);
- 05: the headline measures per method family: top-1 on unseen models and verification accuracy
  on unseen pairs (over training seeds).
A deterministic method (one run, no sd) has no interval: its row says "no spread stated". Such a
method still moves when what it is measured on moves (e.g. a zoo trained on another float path).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterator

import pandas as pd

from ..attribution.metrics import rerun_halfwidth

NOTEBOOKS = {"01": "01_last_block", "04": "04_train_extractor", "05": "05_zero_shot"}
COLUMNS = ["notebook", "result", "reference", "sd", "seeds", "rerun95", "rerun", "difference", "verdict"]


def _load(folder: Path, notebook: str) -> dict | None:
    path = Path(folder) / f"{notebook}.json"
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text())
        return {**report["metrics"], "_training_seeds": report["config"]["extractor"]["training_seeds"]}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a notebook report ({exc})") from exc


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def _lastblock(metrics: dict) -> Iterator[tuple[str, float, float, int]]:
    seeds = int(metrics.get("pair_seeds", 0))
    for ups, stat in metrics.get("test1_accuracy", {}).items():
        yield f"Test I accuracy, {ups}", stat["mean"], _number(stat["sd"]), seeds
    for ups, by_k in metrics.get("flip_rate", {}).items():
        for k, stat in by_k.items():
            yield f"flip rate, {ups}, last {k}", stat["mean"], _number(stat["sd"]), seeds
    for ups, stat in metrics.get("control_flip_rate", {}).items():
        yield f"flip rate, {ups}, first block (control)", stat["mean"], _number(stat["sd"]), seeds


def _extractor(metrics: dict) -> Iterator[tuple[str, float, float, int]]:
    seeds = int(metrics["_training_seeds"])
    sds = metrics.get("heldout_top1_sd_over_seeds", {})
    for method, groups in metrics.get("heldout_top1", {}).items():
        for group, value in groups.items():
            sd = _number(sds.get(method, {}).get(group))
            yield f"held-out top-1, {method}, {group}", value, sd, seeds if math.isfinite(sd) else 1


def _zero_shot(metrics: dict) -> Iterator[tuple[str, float, float, int]]:
    seeds = int(metrics["_training_seeds"])
    for family, stat in metrics.get("identification", {}).items():
        sd = _number(stat.get("held_out_top1_sd"))
        yield f"top-1 unseen, {family}", stat["held_out_top1"], sd, seeds if math.isfinite(sd) else 1
    sds = metrics.get("verification_unseen_accuracy_sd", {})
    for family, value in metrics.get("verification_unseen_accuracy", {}).items():
        sd = _number(sds.get(family))
        yield f"verification unseen, {family}", value, sd, seeds if math.isfinite(sd) else 1


READERS = {"01": _lastblock, "04": _extractor, "05": _zero_shot}


def compare(reference: Path, rerun: Path, notebooks=tuple(NOTEBOOKS)) -> pd.DataFrame:
    """One row per result found in both runs (see the module docstring). `verdict`: "inside" or
    "outside" the reference's rerun interval, or "no spread stated"."""
    rows = []
    for nb in notebooks:
        ref, new = _load(reference, NOTEBOOKS[nb]), _load(rerun, NOTEBOOKS[nb])
        if ref is None or new is None:
            continue
        rerun_values = {name: value for name, value, _, _ in READERS[nb](new)}
        for name, mean, sd, seeds in READERS[nb](ref):
            if name not in rerun_values:
                continue
            half = rerun_halfwidth(sd, seeds)
            value = rerun_values[name]
            verdict = ("no spread stated" if not math.isfinite(half)
                       else "inside" if abs(value - mean) <= half else "outside")
            rows.append({"notebook": nb, "result": name, "reference": mean, "sd": sd, "seeds": seeds,
                         "rerun95": half, "rerun": value, "difference": value - mean, "verdict": verdict})
    if not rows:
        raise ValueError(f"no notebook report found in both {reference} and {rerun} "
                         f"(looked for {', '.join(f'{n}.json' for n in NOTEBOOKS.values())})")
    return pd.DataFrame(rows, columns=COLUMNS)


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in table["verdict"].value_counts().items()}
