"""Estimate a preset's zoo training time from per-step timings, without training the zoo.

For every model of the preset: build it, time `--reps` training steps and one sampling batch
(the fastest of the repetitions, which is the least disturbed by other load), and extrapolate
to the preset's step budget and sample count. Prints one row per model and the total, beside
the 15-minute budget the `cpu` zoo must meet on 2 quiet cores.

    .venv/bin/python benchmarks/zoo_budget.py --preset cpu
"""

from __future__ import annotations

import argparse
import time

import torch

from zsattr.core import config
from zsattr.zoo import build, training_order

BUDGET_S = {"smoke": 60.0, "cpu": 900.0}


def fastest(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    cfg = config.resolve(args.preset)
    side = cfg.image_size
    data = torch.rand(max(64, cfg.zoo.batch_size), 3, side, side) * 2 - 1
    print(f"preset {cfg.preset}: {len(cfg.zoo.models)} models, {side}px, batch {cfg.zoo.batch_size}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'model':20s} {'steps':>6s} {'s/step':>8s} {'train_s':>8s} {'sample_s':>9s}")
    trained, total = {}, 0.0
    for name in training_order(cfg.zoo.models):
        torch.manual_seed(0)
        model = build.build_model(cfg, name, trained)
        trained[name] = model
        model_data = model.training_data(data)
        opts = model.make_optimizers()
        batch = model_data[:cfg.zoo.batch_size]
        model.train_step(batch, opts)  # warm-up
        per_step = fastest(lambda: model.train_step(batch, opts), args.reps)
        per_image = fastest(lambda: model.sample(min(50, cfg.zoo.n_samples)), 2) / min(50, cfg.zoo.n_samples)
        steps = build.model_steps(cfg, name)
        n_drawn = cfg.zoo.n_samples + min(build.N_MONITOR, cfg.zoo.n_samples)
        train_s, sample_s = per_step * steps, per_image * n_drawn
        total += train_s + sample_s
        print(f"{name:20s} {steps:6d} {per_step:8.3f} {train_s:8.1f} {sample_s:9.1f}", flush=True)
    budget = BUDGET_S.get(cfg.preset)
    ratio = f", {total / budget:.2f} x the {budget:.0f} s budget" if budget else ""
    print(f"estimated total {total:.0f} s ({total / 60:.1f} min){ratio}")


if __name__ == "__main__":
    main()
