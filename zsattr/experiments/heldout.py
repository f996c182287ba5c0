"""Zero-shot inside the synthetic world: every method on the held-out synthetic models, and the
rule that picks the extractor the project ships from those results (never from the zoo).

Each held-out model fingerprints the same holdout-photo crops (`extractor.stage.heldout_images_of`),
so only the fingerprint differs between its images and another model's. A group (unseen seeds:
two seeds of each chosen architecture, whose other seeds were trained; unseen codes: every seed
of architectures never trained) is identified among itself: k images per model enrol it, the
rest are queries, over seeded draws.
"""

from __future__ import annotations

import time
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..attribution import protocols
from ..attribution.methods import ExtractorMethod
from ..core.config import Config
from ..extractor import stage as extractor_stage
from ..extractor import training
from ..extractor.data import HoldoutSplit, SyntheticSource
from ..extractor.network import FingerprintExtractor
from ..fingerprint.chain import input_chain
from ..synthesis.bank import Bank, load_bank

SEED_MARK = " #"  # "ours (resnet) #1": training seed 1 of the method family "ours (resnet)"


def family(method: str) -> str:
    """The method a training-seed run belongs to ("ours (resnet) #2" -> "ours (resnet)")."""
    return method.split(SEED_MARK)[0]


def group_images(cfg: Config, bank: Bank, indices: Sequence[int]) -> tuple[torch.Tensor, np.ndarray]:
    """`extractor.stage.heldout_images_of`, synthesised once per bank and settings, then reused:
    notebook 04 scores many methods and backbone variants on the same held-out images. The
    images depend only on the bank, the models, the holdout crops (photos, seed, size, count).
    Callers must not modify the returned tensor in place."""
    key = ("heldout_images", tuple(indices), cfg.seed, cfg.image_size, cfg.extractor.heldout_images, cfg.photos)
    if key not in bank.derived:
        bank.derived[key] = extractor_stage.heldout_images_of(cfg, bank, list(indices))
    return bank.derived[key]


def heldout_table(cfg: Config, bank: Bank, split: HoldoutSplit, methods: Mapping, draws: int = 5) -> pd.DataFrame:
    """One row per (group, method): models, chance, top-1 mean and sd over gallery draws, macro F1."""
    rows = []
    for group, indices in split.groups().items():
        if len(indices) < 2:
            continue
        images, labels = group_images(cfg, bank, indices)
        for name, method in methods.items():
            result = protocols.identification(method.features(images), labels, k=cfg.extractor.eval_k,
                                              draws=draws, seed=cfg.seed).summary()
            rows.append({"group": group, "method": name, "family": family(name), "models": len(indices),
                         "chance": 1 / len(indices), "top1": result["top1_mean"], "top1_std": result["top1_std"],
                         "macro_f1": result["macro_f1_mean"]})
    return pd.DataFrame(rows)


def by_family(table: pd.DataFrame) -> pd.DataFrame:
    """Group x method family: mean top-1 over training seeds, and its sd over those seeds (NaN for
    a method with one run, e.g. a training-free one)."""
    out = table.groupby(["group", "family"], sort=False)["top1"].agg(["mean", "std", "count"]).reset_index()
    return out.rename(columns={"mean": "top1", "std": "top1_sd_over_seeds", "count": "runs"})


def choose_extractor(table: pd.DataFrame, candidates: Sequence[str]) -> str:
    """The candidate family with the highest top-1 averaged over the held-out groups (and seeds):
    the extractor the project ships, chosen on synthetic models only."""
    families = by_family(table)
    means = families[families["family"].isin(candidates)].groupby("family")["top1"].mean()
    missing = set(candidates) - set(means.index)
    if missing:
        raise ValueError(f"no held-out results for {sorted(missing)}")
    return str(means.idxmax())



# The backbones and inputs compared at equal wall time (notebook 04): the paper's ResNet-50,
# smaller ResNets, a stem without max-pool (keeps 4x more of the spectrum's layout), raw |DFT|.
VARIANTS = tuple({"extractor.backbone": b, "extractor.stem": stem, "fingerprint.spectrum": spectrum}
                 for b, stem, spectrum in (("resnet50", "standard", "log"), ("resnet34", "standard", "log"),
                                           ("resnet18", "standard", "log"), ("resnet18", "no_maxpool", "log"),
                                           ("resnet18", "standard", "raw")))


def variant_name(overrides: Mapping) -> str:
    return ", ".join(str(v) for v in overrides.values())


def step_seconds(cfg: Config, bank: Bank, split: HoldoutSplit, steps: int = 4) -> float:
    """Median wall time of one training step (batch drawn and synthesised, forward, backward,
    update) of cfg's network on real batches, after one warm-up step; nothing is cached."""
    chain = input_chain(cfg)
    source = SyntheticSource(bank, split.train, extractor_stage.training_crops(cfg), chain,
                             cfg.extractor.seeds_per_code)
    settings = extractor_stage.settings_for(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = FingerprintExtractor(len(split.train), cfg.extractor.backbone, stem=cfg.extractor.stem)
        optimizer, _ = training.make_optimizer(model, settings)
        times = []
        for step in range(steps + 1):
            t0 = time.perf_counter()
            x, y = source.batch(np.random.default_rng([cfg.seed, step, 99]), settings.p, settings.k)
            training.train_step(model, optimizer, x, y, settings)
            times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def equal_time_comparison(cfg: Config, seconds: float, variants=VARIANTS, store=None,
                          bank: Bank | None = None) -> pd.DataFrame:
    """Each variant trained for about `seconds` of this machine's time (its step count from a
    timing probe, rounded to 10 steps), then scored on the held-out synthetic models. Pass the
    loaded `bank` to reuse its held-out images (`group_images`); the variants do not change them."""
    bank = load_bank(cfg, store) if bank is None else bank
    split = extractor_stage.split_of(cfg, bank)
    rows = []
    for overrides in variants:
        vcfg = cfg.replace(**overrides)
        per_step = step_seconds(vcfg, bank, split)
        steps = max(10, int(round(seconds / per_step / 10)) * 10)
        run = extractor_stage.train_extractor(vcfg, steps=steps, store=store)
        method = ExtractorMethod(variant_name(overrides), run.model, input_chain(vcfg, store), cfg.evaluation.batch)
        table = heldout_table(vcfg, bank, split, {method.name: method})
        rows.append({"variant": method.name, "seconds_per_step": round(per_step, 3), "steps": steps,
                     "train_seconds": run.summary["train_seconds"],
                     **{f"top1 {g}": t for g, t in zip(table["group"], table["top1"])},
                     "top1 (mean of groups)": float(table["top1"].mean())})
    return pd.DataFrame(rows)
