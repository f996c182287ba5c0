"""The zero-shot comparison on the zoo: one evaluation set, every method, the same galleries
and pairs (notebooks 05 and 07 call this; `protocols` does the scoring).

- `evaluation_set(cfg)`: the zoo's samples, split into the real-training group (part of whose
  images the closed-set baseline trains on) and the held-out groups; the split and the
  verification pairs are written to files so every method and every rerun uses the same ones.
- `build_methods(cfg, evalset)`: ours (the synthetic-trained extractor of notebook 04), the
  training-free spectrum correlation, the closed-set ResNet trained on the real-training
  models, a random-weights ResNet (floor), and ours trained on reduced synthetic spaces
  (diversity ablations) with a full-space control at the same reduced budget.
- `evaluate(methods, evalset, cfg)`: features once per method, then identification,
  verification, open set and the k-shot sweep, as tidy tables.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..attribution import protocols, splits
from ..attribution.methods import ExtractorMethod, SpectrumCorrelation, random_init_method
from ..core.cache import ArtefactStore
from ..core.config import Config
from ..core.paths import reports_dir
from ..extractor import stage as extractor_stage
from ..fingerprint.chain import input_chain
from ..images import loading
from ..zoo import build_zoo

log = logging.getLogger(__name__)

OURS = "ours"
BASELINES = ("spectrum_correlation", "closed_set", "random_init")  # the methods ours is compared with
HELD_OUT = ("unseen_same_family", "unseen_family")  # the groups no trained method saw


@dataclass
class EvaluationSet:
    images: torch.Tensor  # (N, 3, H, W) in [0, 1], evaluation images of every zoo model
    labels: np.ndarray  # (N,) index into names
    names: list[str]  # zoo models, in label order
    groups: dict[str, str]  # model -> split group
    pairs: protocols.Pairs  # verification pairs over these images (persisted)
    folder: Path  # the zoo's samples folder
    files: dict[str, dict[str, list[str]]]  # splits.image_split output
    split_path: Path
    pairs_path: Path


def _data_id(folder: Path, files: dict[str, list[str]]) -> str:
    blob = json.dumps({"zoo": folder.parent.name, "files": files}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def evaluation_set(cfg: Config, store: ArtefactStore | None = None) -> EvaluationSet:
    folder = build_zoo(cfg, store)
    files = loading.list_files(folder)
    names = list(cfg.zoo.models)
    groups = splits.zoo_split(names)
    assigned = splits.image_split({n: files[n] for n in names}, groups, cfg.evaluation.baseline_train_fraction,
                                  cfg.seed)
    out = reports_dir(cfg.preset)
    out.mkdir(parents=True, exist_ok=True)
    split_path, pairs_path = out / "zoo_split.json", out / "verification_pairs.npz"
    splits.write_split(split_path, groups, assigned)
    images, labels, names = loading.load_images(folder, names, assigned[splits.EVAL], cfg.image_size)
    pairs = protocols.make_pairs(labels, cfg.evaluation.pairs, cfg.seed, cfg.evaluation.calibration_fraction)
    pairs.save(pairs_path)
    return EvaluationSet(images, labels, names, groups, pairs, folder, assigned, split_path, pairs_path)


def closed_set_extractor(cfg: Config, evalset: EvaluationSet, store: ArtefactStore | None = None):
    """The existing-approach baseline, trained on the real-training models' reserved images."""
    train_files = {m: f for m, f in evalset.files[splits.BASELINE_TRAIN].items() if f}
    trained_on = list(train_files)
    images, labels, _ = loading.load_images(evalset.folder, trained_on, train_files, cfg.image_size)
    return extractor_stage.train_closed_set(cfg, images, labels, cfg.evaluation.closed_set_steps,
                                            _data_id(evalset.folder, train_files), store), trained_on


def build_methods(cfg: Config, evalset: EvaluationSet, ablations: bool = True,
                  store: ArtefactStore | None = None) -> tuple[dict, dict]:
    """name -> method, and name -> training summary (for the trained ones)."""
    chain = input_chain(cfg, store)
    ours = extractor_stage.train_extractor(cfg, store=store)
    closed, trained_on = closed_set_extractor(cfg, evalset, store)
    methods = {
        OURS: ExtractorMethod(OURS, ours.model, chain, cfg.evaluation.batch),
        "spectrum_correlation": SpectrumCorrelation(chain, batch_size=cfg.evaluation.batch),
        "closed_set": ExtractorMethod("closed_set", closed.model, chain, cfg.evaluation.batch),
        "random_init": random_init_method(len(ours.train_indices), cfg.extractor.backbone, cfg.seed, chain,
                                          batch_size=cfg.evaluation.batch),
    }
    summaries = {OURS: ours.summary, "closed_set": {**closed.summary, "trained_on": trained_on}}
    if ablations:
        for space in ("full",) + tuple(cfg.evaluation.ablation_spaces):
            name = f"ours [{space}, {cfg.evaluation.ablation_steps} steps]"
            trained = extractor_stage.train_extractor(cfg, space=space, steps=cfg.evaluation.ablation_steps,
                                                      store=store)
            methods[name] = ExtractorMethod(name, trained.model, chain, cfg.evaluation.batch)
            summaries[name] = trained.summary
    return methods, summaries


def features_of(methods: dict, images: torch.Tensor) -> dict[str, np.ndarray]:
    return {name: m.features(images) for name, m in methods.items()}


@dataclass
class Results:
    per_model: pd.DataFrame  # model x method top-1, with the model's group
    per_group: pd.DataFrame  # group x method mean top-1
    summary: pd.DataFrame  # method x identification + verification metrics
    open_set: pd.DataFrame  # method x open-set metrics
    kshot: pd.DataFrame  # method x k -> top-1
    features: dict[str, np.ndarray]


def evaluate(methods: dict, evalset: EvaluationSet, cfg: Config) -> Results:
    features = features_of(methods, evalset.images)
    per_model, per_group, summary, open_rows, kshot = [], [], [], [], []
    unknown = protocols.choose_unknown(evalset.names, cfg.evaluation.unknown_fraction, cfg.seed)
    known = [i for i, n in enumerate(evalset.names) if n not in unknown]
    for name, feats in features.items():
        out = protocols.evaluate_method(feats, evalset.labels, evalset.names, evalset.groups, evalset.pairs,
                                        cfg.evaluation.k, cfg.evaluation.draws, cfg.seed)
        per_model.append(out["per_model"].set_index(["model", "group"])["top1"].rename(name))
        per_group.append(out["per_group"].set_index("group")["top1"].rename(name))
        summary.append(out["summary"].assign(method=name))
        # identification against the whole zoo's gallery, averaged over the held-out models
        held = out["per_model"][out["per_model"]["group"].isin(HELD_OUT)]
        summary[-1] = summary[-1].assign(held_out_top1=held["top1"].mean())
        open_rows.append({"method": name, "unknown_models": ", ".join(unknown),
                          **protocols.open_set(feats, evalset.labels, known, cfg.evaluation.k, cfg.seed)})
        kshot.append(protocols.kshot_sweep(feats, evalset.labels, cfg.evaluation.kshots, cfg.evaluation.draws,
                                           cfg.seed).assign(method=name))
    return Results(pd.concat(per_model, axis=1).reset_index(), pd.concat(per_group, axis=1).reset_index(),
                   pd.concat(summary).set_index("method").reset_index(), pd.DataFrame(open_rows),
                   pd.concat(kshot, ignore_index=True), features)


def headline(summary: pd.DataFrame, baselines=BASELINES) -> dict:
    """Ours minus the best baseline, in points: identification on the held-out groups (no trained
    method saw them) and verification accuracy at the calibrated threshold."""
    rows = summary.set_index("method")
    out = {}
    for metric, key in (("held_out_top1", "identification"), ("accuracy_calibrated", "verification")):
        best = rows.loc[list(baselines), metric].idxmax()
        out[f"headline_gap_{key}_points"] = round(100 * float(rows.loc[OURS, metric] - rows.loc[best, metric]), 2)
        out[f"best_baseline_{key}"] = best
    return out
