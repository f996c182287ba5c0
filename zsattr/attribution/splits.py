"""The zoo split: which real models a baseline may learn from, and which are held out.

The paper's claim is about *unseen* generators: existing approaches are trained on the
"classical" models and then fail on the "emerging" ones (PAPER.md section 7). To test that
fairly, every method is scored on the same held-out groups:

- ``real_training``: the classical models (some GANs and VAEs) that the closed-set baseline
  may train on. Part of each one's images is reserved for that training (``baseline_train``);
  the rest is still evaluated, so the baseline's advantage on models it has seen is visible.
- ``unseen_same_family``: other GANs and VAEs, seed twins included (the hardest case: same
  architecture, different initialisation).
- ``unseen_family``: diffusion, flow and transformer models, families no trained method saw,
  and the whole image-to-image tier (super-resolvers, autoencoders, denoisers applied to
  holdout photos: `zsattr.zoo.tier_models(names, "image_to_image")` selects it). The tier is
  never in ``real_training``: its models are the realistic unseen case, so asking for one of
  them there is an error.

The rule is a fixed tuple of names plus the registry's family, so the split never depends on
the order of a preset's model list and smaller zoos (smoke) get the subset that is present.
Per-model file assignment is seeded per model name (not per position), so adding a model to a
zoo never reshuffles the files of the others.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..core import atomic
from ..zoo.registry import IMAGE_TO_IMAGE, entry

REAL_TRAINING = ("dcgan_tconv", "dcgan_nearest", "lsgan_tconv", "sngan_resnet", "vae", "beta_vae")
SAME_FAMILIES = ("GAN", "VAE")  # the families of the real-training group
GROUPS = ("real_training", "unseen_same_family", "unseen_family")
BASELINE_TRAIN, EVAL = "baseline_train", "eval"
SPLIT_FORMAT = 2  # 2: the evaluation protocol is written beside the split


def zoo_split(model_names: Sequence[str], real_training: Sequence[str] = REAL_TRAINING) -> dict[str, str]:
    """model name -> group (one of GROUPS), in the order given. Names must be in the zoo registry."""
    trained_i2i = [n for n in real_training if n in model_names and entry(n).tier == IMAGE_TO_IMAGE]
    if trained_i2i:
        raise ValueError(f"image-to-image models are held out, never real-training: {trained_i2i}")
    groups = {}
    for name in model_names:
        if name in real_training:
            groups[name] = "real_training"
        elif entry(name).tier == IMAGE_TO_IMAGE:  # whatever its family: no method trains on the tier
            groups[name] = "unseen_family"
        elif entry(name).family in SAME_FAMILIES:
            groups[name] = "unseen_same_family"
        else:
            groups[name] = "unseen_family"
    n_train = sum(g == "real_training" for g in groups.values())
    if n_train < 2:
        raise ValueError(f"the real-training group has {n_train} model(s) among {list(model_names)}; a "
                         f"closed-set baseline needs at least 2 (candidates: {list(real_training)})")
    return groups


def _model_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def image_split(files_by_model: Mapping[str, Sequence[str]], split: Mapping[str, str],
                train_fraction: float, seed: int) -> dict[str, dict[str, list[str]]]:
    """{"baseline_train": {model: files}, "eval": {model: files}}.

    For each real-training model a seeded `train_fraction` of its files (sorted first, so the
    result does not depend on listing order) goes to baseline_train, the rest to eval; every
    other model's files all go to eval. Both parts of a real-training model must be non-empty.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    missing = sorted(set(files_by_model) - set(split))
    if missing:
        raise KeyError(f"models without a split group: {missing}")
    out: dict[str, dict[str, list[str]]] = {BASELINE_TRAIN: {}, EVAL: {}}
    for name, files in files_by_model.items():
        files = sorted(str(f) for f in files)
        if split[name] != "real_training":
            out[EVAL][name] = files
            continue
        n_train = int(round(train_fraction * len(files)))
        if not 0 < n_train < len(files):
            raise ValueError(f"model {name!r} has {len(files)} files; a train fraction of "
                             f"{train_fraction} leaves one part empty")
        order = _model_rng(seed, name).permutation(len(files))
        out[BASELINE_TRAIN][name] = sorted(files[i] for i in order[:n_train])
        out[EVAL][name] = sorted(files[i] for i in order[n_train:])
    return out


def write_split(path: str | Path, groups: Mapping[str, str],
                images: Mapping[str, Mapping[str, Sequence[str]]], protocol: Mapping | None = None) -> None:
    """Persist the model groups, the per-image split and the evaluation protocol (headline and
    side views, fixed before any result exists) as atomic JSON, so every method and notebook
    reads the very same split and a reader can check the headline was not chosen afterwards."""
    atomic.write_json(path, {"format": SPLIT_FORMAT, "protocol": dict(protocol or {}), "groups": dict(groups),
                             "images": {part: {m: list(f) for m, f in files.items()}
                                        for part, files in images.items()}})


def read_split(path: str | Path) -> tuple[dict[str, str], dict[str, dict[str, list[str]]]]:
    """(groups, images) as written by `write_split`."""
    data = json.loads(Path(path).read_text())
    if data.get("format") != SPLIT_FORMAT:
        raise ValueError(f"{path} is a split of format {data.get('format')}; this version reads {SPLIT_FORMAT}")
    return data["groups"], data["images"]


def shared_architecture(model_names: Sequence[str]) -> dict[str, str]:
    """model -> its architecture group, for the models that share an architecture with another
    model of `model_names`: the same registry architecture and upsampling (seed twins, fine-tunes,
    the same design under another objective) or trained weights of one inside the other (the
    latent diffusion model decodes with the VAE's decoder). Models with a design of their own are
    left out. The rule reads only the registry, never results."""
    def key(name: str) -> tuple[str, str]:
        e = entry(name)
        return e.architecture, e.upsampling

    parent = {name: name for name in model_names}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    by_key: dict[tuple[str, str], list[str]] = {}
    for name in model_names:
        by_key.setdefault(key(name), []).append(name)
        for dep in entry(name).requires:
            if dep in parent:
                parent[root(name)] = root(dep)
    for members in by_key.values():
        for other in members[1:]:
            parent[root(other)] = root(members[0])
    groups: dict[str, list[str]] = {}
    for name in model_names:
        groups.setdefault(root(name), []).append(name)
    return {name: f"{key(members[0])[0]} ({', '.join(members)})" for members in groups.values()
            if len(members) > 1 for name in members}
