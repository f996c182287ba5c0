"""The zero-shot comparison on the zoo: one evaluation set, every method, the same galleries
and pairs (notebooks 05 and 07 call this; `protocols` does the scoring).

- `evaluation_set(cfg)`: the zoo's samples, split into the real-training group (part of whose
  images the closed-set baseline trains on) and the held-out groups; the split and the
  verification pairs are written to files so every method and every rerun uses the same ones.
- `build_methods(cfg, evalset)`: the two "ours" of notebook 04 (linear and ResNet, each once
  per training seed), the training-free spectrum correlation, the PCA-only control, the
  closed-set ResNet trained on the real-training models, a random-weights ResNet (floor), and
  both "ours" fitted on reduced synthetic spaces (diversity ablations; the ResNet's with a
  full-space control at the same reduced budget).
- `evaluate(methods, evalset, cfg)`: features once per method, then identification,
  verification, open set and the k-shot sweep, as tidy tables.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..attribution import metrics, protocols, splits
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
USER = "user"  # the group of the models of a user's folder: no method was trained on them
HELD_OUT = ("unseen_same_family", "unseen_family", USER)  # the groups no trained method saw
SPLIT_FILE, PAIRS_FILE = "zoo_split.json", "verification_pairs.npz"


@dataclass
class EvaluationSet:
    images: torch.Tensor  # (N, 3, H, W) in [0, 1], evaluation images of every evaluated model
    labels: np.ndarray  # (N,) index into names
    names: list[str]  # evaluated models, in label order
    groups: dict[str, str]  # model -> split group
    pairs: protocols.Pairs  # verification pairs over these images (persisted)
    folder: Path  # the zoo's samples folder (the closed-set baseline trains on part of it)
    files: dict[str, dict[str, list[str]]]  # splits.image_split output for the zoo
    split_path: Path
    pairs_path: Path
    user_folder: Path | None = None  # a user's folder of generated images, evaluated instead of or beside the zoo

    @property
    def unseen(self) -> list[str]:
        return [m for m in self.names if self.groups[m] in HELD_OUT]

    def unseen_pairs(self) -> protocols.Pairs:
        """The verification pairs between images of unseen models only: the headline's."""
        return protocols.restrict_pairs(self.pairs, np.isin(self.labels, [self.names.index(m) for m in self.unseen]))


def _data_id(folder: Path, files: dict[str, list[str]]) -> str:
    blob = json.dumps({"zoo": folder.parent.name, "files": files}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def folder_reports(preset: str, images: str | Path) -> Path:
    """Where notebook 05 run on a user's folder writes its report, tables, figures, split and
    pairs: reports/<preset>/folders/<folder name>/, never over the zoo's committed results."""
    return reports_dir(preset) / "folders" / Path(images).expanduser().resolve().name


def protocol(cfg: Config, evalset: EvaluationSet) -> dict:
    """What notebook 05 reports, fixed from the config, the registry and the split before any
    method is built or scored: the headline (k-shot identification and verification on the unseen
    models only) and the views reported beside it, never instead of it."""
    e = cfg.evaluation
    return {
        "headline": {
            "identification": f"top-1 at k = {e.k} (nearest centroid, cosine), mean over the unseen models, the "
                              f"gallery holding every evaluated model; mean over {e.draws} gallery draws, then "
                              f"mean +/- sd over {cfg.extractor.training_seeds} training seeds",
            "verification": "accuracy at the threshold calibrated on the calibration pairs, on the test pairs whose "
                            "two images both come from unseen models; mean +/- sd over training seeds",
            "ours": "the 'ours' family notebook 04's rule ships (better on held-out synthetic models)",
            "baselines": list(BASELINES),
            "unseen_groups": list(HELD_OUT),
        },
        "beside": ["k = 1 on the unseen models", "population subsets (model_subsets)",
                   "open set: AUROC of rejecting models left out of the gallery (chosen among the unseen)",
                   "every group and all models"],
        "k": e.k, "draws": e.draws, "training_seeds": cfg.extractor.training_seeds, "seed": cfg.seed,
        "unseen_models": evalset.unseen, "populations": model_subsets(evalset),
        "open_set_unknown_models": unknown_models(cfg, evalset),
        "user_folder": None if evalset.user_folder is None else str(evalset.user_folder),
    }


def evaluation_set(cfg: Config, store: ArtefactStore | None = None, images: str | Path | None = None,
                   with_zoo: bool = True, out_dir: Path | None = None) -> EvaluationSet:
    """The zoo's evaluation images (and/or, with `images`, a user's folder with one sub-folder per
    model, whose models form the `user` group), the split, the verification pairs and the protocol,
    written to `out_dir` (default reports/<preset>/) before any method is built."""
    if images is None and not with_zoo:
        raise ValueError("nothing to evaluate: give a folder of images or keep the zoo")
    folder = build_zoo(cfg, store)  # the closed-set baseline always trains on the zoo's real-training group
    files = loading.list_files(folder)
    zoo_names = list(cfg.zoo.models)
    groups = splits.zoo_split(zoo_names)
    assigned = splits.image_split({n: files[n] for n in zoo_names}, groups, cfg.evaluation.baseline_train_fraction,
                                  cfg.seed)
    parts, names = [], []
    if with_zoo:
        zoo_images, zoo_labels, _ = loading.load_images(folder, zoo_names, assigned[splits.EVAL], cfg.image_size)
        parts.append((zoo_images, zoo_labels))
        names += zoo_names
    else:
        groups = {}
    user_folder = None
    if images is not None:
        user_folder = Path(images).expanduser().resolve()
        user_images, user_labels, user_names = loading.load_images(user_folder, size=cfg.image_size)
        clash = sorted(set(user_names) & set(names))
        if clash:
            raise ValueError(f"model folder(s) {clash} of {user_folder} have the names of zoo models; rename them "
                             "or evaluate the folder without the zoo")
        parts.append((user_images, user_labels + len(names)))
        names += user_names
        groups.update({n: USER for n in user_names})
    all_images = torch.cat([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    out = out_dir or reports_dir(cfg.preset)
    out.mkdir(parents=True, exist_ok=True)
    split_path, pairs_path = out / SPLIT_FILE, out / PAIRS_FILE
    pairs = protocols.make_pairs(labels, cfg.evaluation.pairs, cfg.seed, cfg.evaluation.calibration_fraction)
    pairs.save(pairs_path)
    evalset = EvaluationSet(all_images, labels, names, groups, pairs, folder, assigned, split_path, pairs_path,
                            user_folder)
    if not evalset.unseen:
        raise ValueError("no unseen model to evaluate: every evaluated model is in the closed-set baseline's "
                         "training group")
    splits.write_split(split_path, groups, assigned, protocol(cfg, evalset))
    return evalset


def unknown_models(cfg: Config, evalset: EvaluationSet) -> list[str]:
    """The open-set protocol's models left out of the gallery: a seeded choice of
    round(`evaluation.unknown_fraction` x models) among the unseen models (never one the closed-set
    baseline trained on), leaving at least two known; none when fewer than 3 models exist."""
    unseen, total = evalset.unseen, len(evalset.names)
    n = min(max(1, int(round(cfg.evaluation.unknown_fraction * total))), len(unseen), total - 2)
    if n < 1:
        return []
    rng = np.random.default_rng([cfg.seed, 5])
    return sorted(unseen[i] for i in rng.choice(len(unseen), size=n, replace=False))


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


def ablation_name(ours: str, space: str, steps: int | None = None) -> str:
    """"ours (linear) [w/o U]", "ours (resnet) [w/o seed, 100 steps]": one extractor family fitted
    on a slice of the synthetic space (the ResNet's at the ablation's shorter budget)."""
    return f"{ours} [{space}]" if steps is None else f"{ours} [{space}, {steps} steps]"


def _renamed(method: linear.LinearExtractor, name: str) -> linear.LinearExtractor:
    return dataclasses.replace(method, name=name)


def build_methods(cfg: Config, evalset: EvaluationSet, ablations: bool = True,
                  store: ArtefactStore | None = None) -> MethodSet:
    """Every method of the comparison; each trained one once per training seed
    (`extractor.training_seeds`), so tables can state the spread over training runs."""
    chain = input_chain(cfg, store)
    seeds = range(cfg.extractor.training_seeds)
    batch = cfg.evaluation.batch
    methods = {"spectrum_correlation": SpectrumCorrelation(chain, batch_size=batch)}
    trained = {}
    n_classes = None
    for s in seeds:
        fit = linear.fit_linear_extractor(cfg, store, training_seed=s)
        methods[_seeded(OURS_LINEAR, s)] = _renamed(fit.ours, _seeded(OURS_LINEAR, s))
        methods[_seeded("pca_only", s)] = _renamed(fit.pca_only, _seeded("pca_only", s))
        trained[_seeded(OURS_LINEAR, s)] = fit.summary
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
        for space in cfg.evaluation.ablation_spaces:  # the linear extractor's control is its full-space fit
            for s in seeds:
                name = _seeded(ablation_name(OURS_LINEAR, space), s)
                fit = linear.fit_linear_extractor(cfg, store, space=space, training_seed=s)
                methods[name], trained[name] = _renamed(fit.ours, name), fit.summary
        for space in ("full",) + tuple(cfg.evaluation.ablation_spaces):
            for s in seeds:
                name = _seeded(ablation_name(OURS_RESNET, space, cfg.evaluation.ablation_steps), s)
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
    """Every method on the same galleries and pairs. Besides the all-model tables, each summary row
    carries the headline's columns: `held_out_top1` (unseen models, with `held_out_top1_draw_sd`,
    its sd over gallery draws), `held_out_top1_k1` (the same at k = 1) and `unseen_*` verification
    on the pairs of unseen-model images only."""
    features = features_of(methods, evalset.images)
    per_model, per_group, summary, open_rows, kshot = [], [], [], [], []
    unknown = unknown_models(cfg, evalset)
    known = [i for i, n in enumerate(evalset.names) if n not in unknown]
    unseen_pairs = evalset.unseen_pairs()
    k, draws = cfg.evaluation.k, cfg.evaluation.draws
    for name, feats in features.items():
        out = protocols.evaluate_method(feats, evalset.labels, evalset.names, evalset.groups, evalset.pairs,
                                        k, draws, cfg.seed)
        per_model.append(out["per_model"].set_index(["model", "group"])["top1"].rename(name))
        per_group.append(out["per_group"].set_index("group")["top1"].rename(name))
        held = out["identification"].subset_top1(evalset.unseen)
        one_shot = protocols.identification(feats, evalset.labels, 1, draws, cfg.seed, evalset.names)
        unseen_verification = protocols.verification(feats, unseen_pairs, evalset.labels)
        summary.append(out["summary"].assign(
            method=name, held_out_top1=float(held.mean()), held_out_top1_draw_sd=float(held.std()),
            held_out_top1_k1=float(one_shot.subset_top1(evalset.unseen).mean()),
            **{f"unseen_{key}": unseen_verification[key] for key in UNSEEN_VERIFICATION}))
        if unknown:
            open_rows.append({"method": name, "unknown_models": ", ".join(unknown),
                              **protocols.open_set(feats, evalset.labels, known, k, cfg.seed)})
        kshot.append(protocols.kshot_sweep(feats, evalset.labels, cfg.evaluation.kshots, draws,
                                           cfg.seed).assign(method=name))
    return Results(pd.concat(per_model, axis=1).reset_index(), pd.concat(per_group, axis=1).reset_index(),
                   pd.concat(summary).set_index("method").reset_index(),
                   pd.DataFrame(open_rows, columns=None if open_rows else ["method", "open_set_auroc", "oscr"]),
                   pd.concat(kshot, ignore_index=True), features)


UNSEEN_VERIFICATION = ("roc_auc", "eer", "accuracy_calibrated", "n_test_pairs")
FAMILY_METRICS = ("held_out_top1", "held_out_top1_k1", "unseen_accuracy_calibrated", "unseen_roc_auc",
                  "top1_mean", "accuracy_calibrated", "roc_auc")


def by_family(summary: pd.DataFrame, metrics=FAMILY_METRICS) -> pd.DataFrame:
    """Method family x metric: the mean over training seeds and its sd over them (`<metric>_sd`,
    NaN for a single run). A trained method's rows are its training-seed runs."""
    frame = summary.assign(family=summary["method"].map(heldout.family))
    grouped = frame.groupby("family", sort=False)[list(metrics)]
    means, sds = grouped.mean(), grouped.std()
    out = means.join(sds.add_suffix("_sd")).join(grouped.size().rename("runs"))
    return out[[c for m in metrics for c in (m, f"{m}_sd")] + ["runs"]].reset_index()


HEADLINE_METRICS = (("held_out_top1", "identification"), ("unseen_accuracy_calibrated", "verification"))


def headline(summary: pd.DataFrame, ours: str, baselines=BASELINES) -> dict:
    """The protocol's headline (written to the split file before any result): ours (the shipped
    family) and the best baseline, each as mean and sd over training seeds, and their difference
    in points, for identification on the unseen models (k-shot top-1) and verification on pairs
    of unseen-model images (accuracy at the calibrated threshold). `*_rerun95`: the half-width of
    the interval a rerun's mean should fall in (`metrics.rerun_halfwidth`)."""
    rows = by_family(summary, tuple(m for m, _ in HEADLINE_METRICS)).set_index("family")
    out = {"ours": ours}
    for metric, key in HEADLINE_METRICS:
        best = rows.loc[list(baselines), metric].idxmax()
        out[f"headline_gap_{key}_points"] = round(100 * float(rows.loc[ours, metric] - rows.loc[best, metric]), 2)
        out[f"best_baseline_{key}"] = best
        for who, family in (("ours", ours), ("best_baseline", best)):
            out[f"{key}_{who}"] = float(rows.loc[family, metric])
            out[f"{key}_{who}_sd"] = float(rows.loc[family, f"{metric}_sd"])
            runs = int(rows.loc[family, "runs"])
            out[f"{key}_{who}_rerun95"] = metrics.rerun_halfwidth(out[f"{key}_{who}_sd"], runs)
    return out


def model_subsets(evalset: EvaluationSet) -> dict[str, list[str]]:
    """The populations the tables report, each fixed by the registry and the split, never by
    results: the unseen models (the headline's), those of them that share an architecture with
    another zoo model (seed twins, fine-tunes, a design under another objective, a decoder reused)
    and those that do not, the unseen image-to-image tier, a user's folder, and all models."""
    zoo = [m for m in evalset.names if evalset.groups[m] != USER]
    shared = splits.shared_architecture(zoo)
    unseen = evalset.unseen
    return {"unseen": unseen,
            "unseen, shared architecture": [m for m in unseen if m in shared],
            "unseen, own architecture": [m for m in unseen if m in zoo and m not in shared],
            "unseen, image-to-image tier": [m for m in unseen if m in zoo and entry(m).tier == IMAGE_TO_IMAGE],
            "user folder": [m for m in evalset.names if evalset.groups[m] == USER],
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
