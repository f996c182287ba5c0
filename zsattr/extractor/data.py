"""What the fingerprint extractor learns from: P x K batch sources and the held-out split.

Two sources implement `zsattr.extractor.training.BatchSource` (`n_classes`, `batch(rng, p, k)`):

- `SyntheticSource`: P synthetic models of the bank, each fingerprinting K real crops,
  synthesised on the fly (each model called once on its K crops, no autograd, outputs rounded
  to 8 bits as saved images are), then the input chain (residual -> |DFT| -> log/raw). The P
  models come in architecture groups (`seeds_per_code` seeds of each drawn architecture), so
  every batch asks the network to separate models that share an architecture, which is what
  attribution of seed twins and fine-tunes needs. Every batch sees fresh (model, crop) pairings;
  the cost is measured in the training log (`batch_seconds`) and in
  benchmarks/train_throughput.py.
- `ImageSetSource`: images that already carry their model's fingerprint (a real model's
  samples), one class per model: the closed-set "existing approach" baseline.

`CachedPoolSource` is the alternative the on-the-fly design was measured against: every
model's fingerprinted inputs computed once and indexed afterwards.

`holdout_split` keeps some synthetic models out of training entirely, so the extractor's
zero-shot ability can be checked inside the synthetic world: unseen seeds of trained
architectures, and architectures never seen at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..fingerprint.chain import InputChain
from ..synthesis.bank import Bank, fingerprint_batch
from ..synthesis.codes import ArchCode


def _choose_classes(rng: np.random.Generator, n_classes: int, p: int) -> np.ndarray:
    """P distinct classes (all of them, shuffled, if there are fewer than P)."""
    return rng.choice(n_classes, size=min(p, n_classes), replace=False)


def grouped_classes(rng: np.random.Generator, groups: Sequence[np.ndarray], p: int, per_group: int) -> np.ndarray:
    """P distinct classes drawn as whole groups: groups in random order, `per_group` members of
    each (all of a smaller group), until P classes are chosen; if the groups run out first, the
    rest is drawn uniformly from the classes not yet chosen (all classes if there are fewer)."""
    chosen: list[int] = []
    target = min(p, sum(len(g) for g in groups))
    for g in rng.permutation(len(groups)):
        take = min(per_group, len(groups[g]), target - len(chosen))
        chosen.extend(rng.choice(groups[g], size=take, replace=False).tolist())
        if len(chosen) == target:
            return np.asarray(chosen)
    rest = np.setdiff1d(np.concatenate(groups), chosen)
    return np.asarray(chosen + rng.choice(rest, size=target - len(chosen), replace=False).tolist())


class SyntheticSource:
    """P bank models x K real crops, fingerprinted on the fly; class c = bank model indices[c].

    `seeds_per_code` > 1: the P models are drawn as architectures with that many seeds each
    (`grouped_classes`); 1: uniformly, as the original trainer did (two seeds of one
    architecture then rarely meet in a batch: about 0.05 times per batch at `cpu`)."""

    def __init__(self, bank: Bank, indices: Sequence[int], crops: torch.Tensor, chain: InputChain,
                 seeds_per_code: int = 1):
        if len(indices) < 2:
            raise ValueError(f"training needs at least 2 synthetic models, got {len(indices)}")
        if crops.dim() != 4 or crops.shape[1] != 3:
            raise ValueError(f"crops must be (N, 3, H, W), got {tuple(crops.shape)}")
        if seeds_per_code < 1:
            raise ValueError(f"seeds_per_code must be >= 1, got {seeds_per_code}")
        self.bank, self.indices, self.crops, self.chain = bank, list(indices), crops, chain
        self.n_classes = len(self.indices)
        self.seeds_per_code = seeds_per_code
        by_code: dict = {}
        for c, i in enumerate(self.indices):
            by_code.setdefault(bank.entries[i][0], []).append(c)
        self.code_groups = [np.asarray(members) for _, members in sorted(by_code.items())]

    def batch(self, rng: np.random.Generator, p: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.seeds_per_code > 1:
            classes = grouped_classes(rng, self.code_groups, p, self.seeds_per_code)
        else:
            classes = _choose_classes(rng, self.n_classes, p)
        # K distinct crops per model; different models get independent draws.
        picks = np.stack([rng.choice(len(self.crops), size=k, replace=False) for _ in classes])
        images = self.crops[torch.from_numpy(picks)]  # (P, K, 3, H, W)
        x = fingerprint_batch(self.bank, [self.indices[c] for c in classes], images, self.chain)
        return x, torch.from_numpy(classes).repeat_interleave(k)


class ImageSetSource:
    """Fingerprinted images with model labels (0..n_classes-1), through the input chain per batch."""

    def __init__(self, images: torch.Tensor, labels: Sequence[int] | torch.Tensor, chain: InputChain):
        labels = torch.as_tensor(labels, dtype=torch.long)
        if images.dim() != 4 or len(images) != len(labels):
            raise ValueError(f"expected images (N, 3, H, W) and N labels, got {tuple(images.shape)} "
                             f"and {len(labels)}")
        self.images, self.labels, self.chain = images, labels, chain
        self.n_classes = int(labels.max()) + 1 if len(labels) else 0
        self._members = [torch.nonzero(labels == c).flatten() for c in range(self.n_classes)]
        empty = [c for c, m in enumerate(self._members) if len(m) == 0]
        if self.n_classes < 2 or empty:
            raise ValueError(f"need images of at least 2 classes labelled 0..C-1 with none empty; "
                             f"got {self.n_classes} classes, empty: {empty}")

    def batch(self, rng: np.random.Generator, p: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        classes = _choose_classes(rng, self.n_classes, p)
        picks = torch.cat([m[torch.from_numpy(rng.choice(len(m), size=k, replace=len(m) < k))]
                           for m in (self._members[c] for c in classes)])
        x = self.chain(self.images[picks])
        return x, torch.from_numpy(classes).repeat_interleave(k)


class CachedPoolSource:
    """The measured alternative: `per_model` fingerprinted inputs of every model computed once.

    Batches are then pure indexing, but each model only ever shows the same few crops and
    the pool costs len(indices) x per_model x 3 x H x W floats of memory."""

    def __init__(self, source: SyntheticSource, per_model: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        rows = []
        for c in range(source.n_classes):
            picks = torch.from_numpy(rng.choice(len(source.crops), size=per_model, replace=False))
            rows.append(fingerprint_batch(source.bank, [source.indices[c]], source.crops[picks][None],
                                          source.chain))
        self.pool = torch.stack(rows)  # (C, per_model, 3, H, W)
        self.n_classes = source.n_classes

    @property
    def nbytes(self) -> int:
        return self.pool.element_size() * self.pool.nelement()

    def batch(self, rng: np.random.Generator, p: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        classes = _choose_classes(rng, self.n_classes, p)
        picks = np.stack([rng.choice(self.pool.shape[1], size=k, replace=False) for _ in classes])
        x = self.pool[torch.from_numpy(classes)[:, None], torch.from_numpy(picks)]
        return x.flatten(0, 1), torch.from_numpy(classes).repeat_interleave(k)


@dataclass(frozen=True)
class HoldoutSplit:
    """Bank indices: trained on, unseen seeds (their architecture is trained with another
    seed), unseen codes (the architecture is never seen)."""

    train: tuple[int, ...]
    unseen_seed: tuple[int, ...]
    unseen_code: tuple[int, ...]

    def groups(self) -> dict[str, tuple[int, ...]]:
        return {"unseen seed": self.unseen_seed, "unseen code": self.unseen_code}


def holdout_split(entries: Sequence[tuple[ArchCode, int]], code_fraction: float, seed_fraction: float,
                  seed: int = 0, seeds_per_code: int = 2) -> HoldoutSplit:
    """Hold out `code_fraction` of the architectures (all their seeds) and, of the remaining
    architectures with at least two seeds, `seed_fraction` lose their `seeds_per_code` highest
    seeds (at most all but one: a trained sibling always stays). Two held seeds of one
    architecture make the unseen-seed group a test of seed discrimination, not only of
    architecture.

    Deterministic in `seed`; each group gets at least 2 models whenever its fraction is > 0 and
    the bank allows it (identification needs two candidates)."""
    for name, f in (("code_fraction", code_fraction), ("seed_fraction", seed_fraction)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {f}")
    rng = np.random.default_rng([seed, 4])
    by_code: dict[ArchCode, list[int]] = {}
    for i, (code, s) in enumerate(entries):
        by_code.setdefault(code, []).append(i)
    codes = sorted(by_code)
    order = [codes[j] for j in rng.permutation(len(codes))]
    n_codes = 0
    if code_fraction > 0:
        n_codes = max(round(code_fraction * len(codes)), 1)
        while n_codes < len(codes) - 2 and sum(len(by_code[c]) for c in order[:n_codes]) < 2:
            n_codes += 1
    held_codes = set(order[:n_codes])
    multi = [c for c in order[n_codes:] if len(by_code[c]) > 1]
    n_seeds = max(round(seed_fraction * len(multi)), min(2, len(multi))) if seed_fraction > 0 else 0
    held_seed_codes = multi[:n_seeds]
    unseen_seed = []
    for c in held_seed_codes:  # the highest seeds, always leaving at least one in training
        by_seed = sorted(by_code[c], key=lambda i: entries[i][1])
        unseen_seed += by_seed[-min(seeds_per_code, len(by_seed) - 1):]
    unseen_seed = sorted(unseen_seed)
    unseen_code = sorted(i for c in held_codes for i in by_code[c])
    train = sorted(set(range(len(entries))) - set(unseen_seed) - set(unseen_code))
    if len(train) < 2:
        raise ValueError(f"holding out {code_fraction:.0%} of codes and {seed_fraction:.0%} of seeds "
                         f"leaves {len(train)} model(s) to train on")
    return HoldoutSplit(tuple(train), tuple(unseen_seed), tuple(unseen_code))
