"""Identification throughput of the attribution tool: batched versus one image at a time, the
same extractor file, gallery and PNG files, in one run, side by side.

    .venv/bin/python benchmarks/identify.py [--extractor cpu|FILE] [--images 512] [--models 8]

Both paths run the tool's own code (`zsattr.attribution.tool.attribute`): decoding, cropping,
fingerprinting, scoring. "one at a time" calls it per image, as a naive script would. The
images are written once to a temporary folder as 64 x 64 PNGs (the `cpu` preset's size); the
stages are timed separately (decode + crop, fingerprints, gallery) so the bound is visible.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from zsattr.attribution import tool
from zsattr.attribution.gallery import Gallery
from zsattr.images.queries import expand_paths, iter_chunks


def write_images(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"{i:05d}.png"
        Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extractor", default="cpu", help="an extractor file or a preset (exported on first use)")
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--single", type=int, default=64, help="images for the one-at-a-time path")
    ap.add_argument("--models", type=int, default=8)
    args = ap.parse_args()
    extractor = tool.open_extractor(args.extractor)
    size = extractor.image_size
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = write_images(root / "queries", args.images, size)
        gallery = Gallery(extractor.id, {"name": extractor.name, "path": str(extractor.path)})
        rng = np.random.default_rng(1)
        for m in range(args.models):
            gallery.enrol(f"model_{m}", rng.normal(size=(10, extractor.describe()["fingerprint_dim"])))
        gpath = root / "g.gallery"
        gallery.save(gpath)

        tool.attribute(gpath, paths[:8], extractor, reject="none")  # warm-up
        t0 = time.perf_counter()
        table = tool.attribute(gpath, [root / "queries"], extractor, reject="none")
        batched = time.perf_counter() - t0
        assert len(table) == args.images

        t0 = time.perf_counter()
        for path in paths[:args.single]:
            tool.attribute(gpath, [path], extractor, reject="none")
        single = (time.perf_counter() - t0) / args.single * args.images

        # where the batched time goes
        t0 = time.perf_counter()
        chunks = list(iter_chunks(expand_paths([root / "queries"]), size))
        read = time.perf_counter() - t0
        t0 = time.perf_counter()
        features = [extractor.features(c.crops) for c in chunks]
        fingerprint = time.perf_counter() - t0
        t0 = time.perf_counter()
        for f in features:
            gallery.attribute(f, threshold=None)
        score = time.perf_counter() - t0

    print(f"extractor: {extractor.name} ({extractor.meta['kind']}), {size}x{size} crops, "
          f"torch threads {torch.get_num_threads()}; {args.images} PNG images, gallery of {args.models} models")
    print(f"batched (the tool, 256 per chunk): {args.images / batched:8.1f} images/s")
    print(f"one image per call:               {args.images / single:8.1f} images/s  (from {args.single} calls)")
    print(f"speed-up: {single / batched:.1f}x")
    print(f"batched time split: decode + crop {read:.2f} s, fingerprints {fingerprint:.2f} s, "
          f"gallery {score:.3f} s (of {batched:.2f} s in the tool; the rest: hashing, tables)")


if __name__ == "__main__":
    main()
