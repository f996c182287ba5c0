"""Applying the synthetic bank: batched (each model once on its K images, no autograd, eval)
versus the authors' way (one image per call, autograd on), same models, same images, one run.

    .venv/bin/python benchmarks/synthesis.py [--preset smoke] [--models 16] [--k 32]
"""

from __future__ import annotations

import argparse

import torch

from zsattr.core import config
from zsattr.synthesis import bank as bank_mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--models", type=int, default=8, help="P models")
    ap.add_argument("--k", type=int, default=32, help="K images per model")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = config.resolve(args.preset)
    bank = bank_mod.load_bank(cfg)
    result = bank_mod.benchmark_application(bank, cfg.image_size, args.models, args.k, args.repeats)
    print(f"bank: {len(bank)} models; P={result['models']} x K={result['k']} images of "
          f"{cfg.image_size}px, torch threads={torch.get_num_threads()}")
    print(f"authors' way (1 image/call, autograd): {result['slow_images_per_s']:8.1f} images/s")
    print(f"batched (K/call, inference mode):      {result['fast_images_per_s']:8.1f} images/s")
    print(f"speed-up: {result['speedup']:.2f}x  (max |difference| {result['max_abs_diff']:.2e})")


if __name__ == "__main__":
    main()
