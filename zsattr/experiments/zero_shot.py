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
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..attribution import protocols, splits
from ..attribution.methods import ExtractorMethod, SpectrumCorrelation, random_init_method
from ..core.cache import ArtefactStore
from ..core.config import Config
from ..core.paths import reports_dir
from ..extractor import linear
from ..extractor import stage as extractor_stage
from ..fingerprint.chain import input_chain
from ..images import loading
from ..synthesis.bank import load_bank
from ..zoo import build_zoo
from ..zoo.registry import IMAGE_TO_IMAGE, entry
from . import heldout

log = logging.getLogger(__name__)

OURS_RESNET, OURS_LINEAR = "ours (resnet)", "ours (linear)"  # the paper's deep extractor; the linear one
OURS_FAMILIES = (OURS_RESNET, OURS_LINEAR)
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


def closed_set_extractor(cfg: Config, evalset: EvaluationSet, store: ArtefactStore | None = None,
                         training_seed: int = 0):
    """The existing-approach baseline, trained on the real-training models' reserved images."""
    train_files = {m: f for m, f in evalset.files[splits.BASELINE_TRAIN].items() if f}
    trained_on = list(train_files)
    images, labels, _ = loading.load_images(evalset.folder, trained_on, train_files, cfg.image_size)
    return extractor_stage.train_closed_set(cfg, images, labels, cfg.evaluation.closed_set_steps,
                                            _data_id(evalset.folder, train_files), store, training_seed), trained_on


@dataclass
class MethodSet:
    methods: dict  # name -> method; trained ones once per training seed ("ours (resnet) #1")
    trained: dict  # name -> training summary of the trained ones
    heldout: pd.DataFrame  # the two "ours" on the held-out synthetic models (heldout.heldout_table)
    ours: str  # the "ours" family the project ships: the better one on held-out synthetic models


def _seeded(name: str, training_seed: int) -> str:
    return f"{name}{heldout.SEED_MARK}{training_seed}"


def build_methods(cfg: Config, evalset: EvaluationSet, ablations: bool = True,
                  store: ArtefactStore | None = None) -> MethodSet:
    """Every method of the comparison; each trained one once per training seed
    (`extractor.training_seeds`), so tables can state the spread over training runs."""
    chain = input_chain(cfg, store)
    seeds = range(cfg.extractor.training_seeds)
    batch = cfg.evaluation.batch
    linear_fit = linear.fit_linear_extractor(cfg, store)
    methods = {OURS_LINEAR: linear_fit.ours, "pca_only": linear_fit.pca_only,
               "spectrum_correlation": SpectrumCorrelation(chain, batch_size=batch)}
    trained = {OURS_LINEAR: linear_fit.summary}
    n_classes = None
    for s in seeds:
        ours = extractor_stage.train_extractor(cfg, store=store, training_seed=s)
        closed, trained_on = closed_set_extractor(cfg, evalset, store, training_seed=s)
        n_classes = len(ours.train_indices)
        methods[_seeded(OURS_RESNET, s)] = ExtractorMethod(_seeded(OURS_RESNET, s), ours.model, chain, batch)
        methods[_seeded("closed_set", s)] = ExtractorMethod(_seeded("closed_set", s), closed.model, chain, batch)
        trained[_seeded(OURS_RESNET, s)] = ours.summary
        trained[_seeded("closed_set", s)] = {**closed.summary, "trained_on": trained_on}
    for s in seeds:  # the floor: as many random draws of the same network
        name = _seeded("random_init", s)
        methods[name] = random_init_method(n_classes, cfg.extractor.backbone, extractor_stage.run_seed(cfg, s),
                                           chain, name=name, batch_size=batch)
    if ablations:
        for space in ("full",) + tuple(cfg.evaluation.ablation_spaces):
            for s in seeds:
                name = _seeded(f"ours [{space}, {cfg.evaluation.ablation_steps} steps]", s)
                run = extractor_stage.train_extractor(cfg, space=space, steps=cfg.evaluation.ablation_steps,
                                                      store=store, training_seed=s)
                methods[name] = ExtractorMethod(name, run.model, chain, batch)
                trained[name] = run.summary
    bank = load_bank(cfg, store)
    candidates = {n: m for n, m in methods.items() if heldout.family(n) in OURS_FAMILIES}
    table = heldout.heldout_table(cfg, bank, extractor_stage.split_of(cfg, bank), candidates)
    return MethodSet(methods, trained, table, heldout.choose_extractor(table, OURS_FAMILIES))


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


FAMILY_METRICS = ("held_out_top1", "top1_mean", "accuracy_calibrated", "roc_auc")


def by_family(summary: pd.DataFrame, metrics=FAMILY_METRICS) -> pd.DataFrame:
    """Method family x metric: the mean over training seeds and its sd over them (`<metric>_sd`,
    NaN for a single run). A trained method's rows are its training-seed runs."""
    frame = summary.assign(family=summary["method"].map(heldout.family))
    grouped = frame.groupby("family", sort=False)[list(metrics)]
    means, sds = grouped.mean(), grouped.std()
    out = means.join(sds.add_suffix("_sd")).join(grouped.size().rename("runs"))
    return out[[c for m in metrics for c in (m, f"{m}_sd")] + ["runs"]].reset_index()


def headline(summary: pd.DataFrame, ours: str, baselines=BASELINES) -> dict:
    """Ours (the shipped family) minus the best baseline, in points, on means over training seeds:
    identification on the held-out groups (no trained method saw them) and verification
    accuracy at the calibrated threshold."""
    rows = by_family(summary, ("held_out_top1", "accuracy_calibrated")).set_index("family")
    out = {"ours": ours}
    for metric, key in (("held_out_top1", "identification"), ("accuracy_calibrated", "verification")):
        best = rows.loc[list(baselines), metric].idxmax()
        out[f"headline_gap_{key}_points"] = round(100 * float(rows.loc[ours, metric] - rows.loc[best, metric]), 2)
        out[f"best_baseline_{key}"] = best
    return out


def model_subsets(evalset: EvaluationSet) -> dict[str, list[str]]:
    """The populations the tables report, each fixed by the registry and the split, never by
    results: the unseen models (the headline's), those of them that share an architecture with
    another zoo model (seed twins, fine-tunes, a design under another objective, a decoder reused)
    and those that do not, the unseen image-to-image tier, and all models."""
    shared = splits.shared_architecture(evalset.names)
    unseen = [m for m in evalset.names if evalset.groups[m] in HELD_OUT]
    return {"unseen": unseen,
            "unseen, shared architecture": [m for m in unseen if m in shared],
            "unseen, own architecture": [m for m in unseen if m not in shared],
            "unseen, image-to-image tier": [m for m in unseen if entry(m).tier == IMAGE_TO_IMAGE],
            "all": list(evalset.names)}


def subset_table(per_model: pd.DataFrame, subsets: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Subset x method family: top-1 averaged over the subset's models in each run, then the mean
    over the family's training-seed runs and its sd (`<family> sd`, NaN for a single run).
    `per_model` is `Results.per_model` (columns model, group, then one per method run)."""
    runs = per_model.set_index("model").drop(columns="group")
    rows = []
    for subset, models in subsets.items():
        if not models:
            continue
        per_run = runs.loc[list(models)].mean()
        by_fam = per_run.groupby(heldout.family, sort=False)
        rows.append({"subset": subset, "models": len(models), **by_fam.mean().to_dict(),
                     **by_fam.std().add_suffix(" sd").to_dict()})
    return pd.DataFrame(rows).set_index("subset")
