"""Extractor training throughput: our step against the authors' way, same backbone, one run.

Paths (same bank, same crops, same backbone and P x K batch; each timed over --steps steps
after one warm-up step, best of --repeats rounds):
  ours            bank models called once per K crops, inference mode, fixed high-pass residual
  ours + autocast the same with mixed precision (bf16 on the CPU, fp16 on CUDA)
  cached pool     fingerprinted inputs computed once, batches are pure indexing
  authors' way    one image per synthetic-model call with autograd on, 17-layer 64-channel
                  DnCNN residual (per image, autograd off: the charitable reading)
Also: the share of our step time spent outside the backbone (drawing the batch).

    .venv/bin/python benchmarks/train_throughput.py [--preset cpu] [--steps 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from zsattr.core import config
from zsattr.extractor import stage as es
from zsattr.extractor import training as train
from zsattr.extractor.data import CachedPoolSource, SyntheticSource
from zsattr.extractor.network import FingerprintExtractor
from zsattr.fingerprint.chain import InputChain, dft_magnitude
from zsattr.fingerprint.residual import DnCNN, HighPass
from zsattr.synthesis.bank import apply_authors_way, load_bank


class AuthorsWaySource:
    """The authors' data path: every image through its model alone, autograd on, DnCNN-17."""

    def __init__(self, source: SyntheticSource):
        self.source = source
        self.n_classes = source.n_classes
        self.models = {}
        self.dncnn = DnCNN(depth=17, width=64).eval()

    def batch(self, rng, p, k):
        classes = rng.choice(self.n_classes, size=p, replace=False)
        picks = np.stack([rng.choice(len(self.source.crops), size=k, replace=False) for _ in classes])
        outs = []
        for c, row in zip(classes, picks):
            i = self.source.indices[c]
            model = self.models.setdefault(i, self.source.bank.fresh_model(i))
            images = apply_authors_way(model, self.source.crops[torch.from_numpy(row)])
            with torch.no_grad():
                outs += [self.dncnn(img[None]) for img in images.detach()]
        x = dft_magnitude(torch.cat(outs))  # raw |DFT|: the authors' input
        return x, torch.from_numpy(classes).repeat_interleave(k)


def time_path(model, source, settings, steps: int, repeats: int) -> dict:
    optimizer, _ = train.make_optimizer(model, settings)
    model.train()
    best = None
    for r in range(repeats):
        batch_s = step_s = 0.0
        for s in range(steps + (r == 0)):
            t0 = time.perf_counter()
            x, y = source.batch(np.random.default_rng([r, s]), settings.p, settings.k)
            t1 = time.perf_counter()
            train.train_step(model, optimizer, x, y, settings)
            t2 = time.perf_counter()
            if r == 0 and s == 0:
                continue  # warm-up
            batch_s, step_s = batch_s + t1 - t0, step_s + t2 - t1
        total = batch_s + step_s
        if best is None or total < best["total"]:
            best = {"total": total, "batch": batch_s, "step": step_s}
    n = steps * settings.p * settings.k
    return {"samples_per_s": n / best["total"], "batch_share": best["batch"] / best["total"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per path and round")
    ap.add_argument("--repeats", type=int, default=2, help="rounds per path; the best is kept")
    ap.add_argument("--pool-per-model", type=int, default=16, help="inputs per model in the cached pool")
    args = ap.parse_args()
    cfg = config.resolve(args.preset)
    settings = es.settings_for(cfg, steps=10 ** 6)
    bank = load_bank(cfg)
    split = es.split_of(cfg, bank)
    chain = InputChain(HighPass(cfg.fingerprint.highpass_kernel), cfg.fingerprint.spectrum)
    ours = SyntheticSource(bank, list(split.train), es.training_crops(cfg), chain)
    started = time.perf_counter()
    pool = CachedPoolSource(ours, args.pool_per_model)
    pool_seconds = time.perf_counter() - started
    paths = {"ours": (ours, False), "ours + autocast": (ours, True), "cached pool": (pool, False),
             "authors' way": (AuthorsWaySource(ours), False)}
    print(f"preset {cfg.preset}: {cfg.extractor.backbone} at {cfg.image_size}px, batch P={settings.p} x "
          f"K={settings.k}, {len(ours.indices)} synthetic models, torch threads {torch.get_num_threads()}, "
          f"device cpu")
    results = {}
    for name, (source, amp) in paths.items():
        torch.manual_seed(0)
        model = FingerprintExtractor(source.n_classes, cfg.extractor.backbone)
        st = train.TrainSettings(**{**settings.__dict__, "amp": amp})
        results[name] = time_path(model, source, st, args.steps, args.repeats)
        r = results[name]
        print(f"{name:<16} {r['samples_per_s']:8.1f} samples/s   time outside the backbone step: "
              f"{100 * r['batch_share']:5.1f}%")
    base = results["authors' way"]["samples_per_s"]
    for name in ("ours", "ours + autocast", "cached pool"):
        print(f"ratio {name} / authors' way: {results[name]['samples_per_s'] / base:.2f}x")
    print(f"cached pool: {pool.nbytes / 2 ** 20:.1f} MiB for {args.pool_per_model} inputs per model, "
          f"built in {pool_seconds:.1f} s; the full bank at {args.pool_per_model} inputs/model would need "
          f"{pool.nbytes / len(ours.indices) * len(bank) / 2 ** 20:.1f} MiB")


if __name__ == "__main__":
    main()
