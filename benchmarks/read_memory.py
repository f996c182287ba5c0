"""Peak memory of reading large images for small crops: the readers as they were before the
bounded reader (main's decode-everything-to-float path, inlined below) against the library's
readers now, side by side in one run.

    .venv/bin/python benchmarks/read_memory.py [--crop 64]

Two cases, written once to a temporary folder (one model sub-folder each):
- six 10-megapixel PNGs (3872 x 2592), read for 64 x 64 centre crops;
- one 64-megapixel PNG (8000 x 8000, one colour, about 200 KB on disk), read for one crop.
Three readers: `scan_image_folder` (`zsattr scan`, `zsattr evaluate`'s check), `load_images`
(notebook 05's user-folder evaluation) and `iter_chunks` (the attribution tool). Each
(reader, case, old/new) runs in a fresh child process; the number is the child's peak resident
memory during the read above its resident memory just before it, after the imports: the peak
(VmHWM in /proc/self/status) is reset just before the read by writing 5 to
/proc/self/clear_refs. Not `resource.getrusage`: Linux carries ru_maxrss over fork and exec, so
a child would report the parent's peak (here, writing the images). The target for the
six-10-MP crop read is under 200 MB. The inlined old path was checked against main's own
library (this script run with main's package first on PYTHONPATH): the same peaks.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch  # noqa: F401  the readers import it; loaded before a child's baseline is taken
from PIL import Image

from zsattr.images.folders import scan_image_folder
from zsattr.images.loading import load_images
from zsattr.images.queries import expand_paths, iter_chunks

CASES = {"six 10 MP PNGs": "six", "one 64 MP PNG": "big"}
READERS = ("scan", "load_images", "iter_chunks")
TARGET_MB = 200.0


def write_cases(root: Path) -> None:
    rng = np.random.default_rng(0)
    tile = (rng.random((256, 256, 3)) * 255).astype(np.uint8)
    (root / "six" / "model").mkdir(parents=True)
    for i in range(6):
        array = np.tile(np.roll(tile, i, axis=0), (11, 16, 1))[:2592, :3872]
        Image.fromarray(array).save(root / "six" / "model" / f"{i}.png", compress_level=1)
    (root / "big" / "model").mkdir(parents=True)
    Image.new("RGB", (8000, 8000), (90, 120, 150)).save(root / "big" / "model" / "big.png")


# -- main's read path before this change, kept verbatim in what it does for 8-bit RGB files ----------

def old_decode(path: Path) -> np.ndarray:
    """Full decode to float32 RGB (what main's `folders.decode_image` did for an RGB file)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            img.load()
            return np.clip(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0, 0.0, 1.0)


def old_read(reader: str, folder: Path, size: int) -> int:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if reader == "iter_chunks":  # main's iter_chunks: bytes read for the hash, full float decode, crops copied
        for path in files:
            data = path.read_bytes()
            crop = old_decode(path)[:size, :size].copy()
            del data, crop
        return len(files)
    for path in files:  # main's scan: every file decoded once, to float (the last one alive during the next)
        decoded = old_decode(path)
    del decoded
    if reader == "scan":
        return len(files)
    kept = []  # main's load_images: a centre-crop view keeps each full decode alive
    for path in files:
        decoded = old_decode(path)
        top, left = (decoded.shape[0] - size) // 2, (decoded.shape[1] - size) // 2
        kept.append(decoded[top:top + size, left:left + size])
    return len(np.stack(kept))


def new_read(reader: str, folder: Path, size: int) -> int:
    if reader == "scan":
        return len(scan_image_folder(folder, min_size=size))
    if reader == "load_images":
        return len(load_images(folder, size=size)[0])
    return sum(len(c.paths) for c in iter_chunks(expand_paths([folder]), size))


def memory_mb(field: str) -> float:
    """VmRSS (resident now) or VmHWM (peak resident) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def child(which: str, reader: str, folder: Path, size: int) -> None:
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from the resident memory now
    before = memory_mb("VmRSS")
    n = (old_read if which == "old" else new_read)(reader, folder, size)
    print(json.dumps({"images": n, "peak_mb": max(0.0, memory_mb("VmHWM") - before)}))


def measure(which: str, reader: str, folder: Path, size: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", which, reader, str(folder), "--crop", str(size)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"rc {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--child", nargs=3, metavar=("WHICH", "READER", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        which, reader, folder = args.child
        child(which, reader, Path(folder), args.crop)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_cases(root)
        print(f"peak resident memory above the pre-read level, MB ({args.crop} x {args.crop} centre crops)")
        print(f"{'case':<16} {'reader':<12} {'before':>9} {'now':>9} {'ratio':>7}")
        for case, sub in CASES.items():
            for reader in READERS:
                old = measure("old", reader, root / sub, args.crop)
                new = measure("new", reader, root / sub, args.crop)
                cells = [f"{r['peak_mb']:9.0f}" if "peak_mb" in r else f"{'error':>9}" for r in (old, new)]
                ratio = f"{old['peak_mb'] / max(new['peak_mb'], 1.0):6.1f}x" if "peak_mb" in old and "peak_mb" in new \
                    else ""
                print(f"{case:<16} {reader:<12} {cells[0]} {cells[1]} {ratio:>7}")
                for label, r in (("before", old), ("now", new)):
                    if "error" in r:
                        print(f"    {label}: {r['error']}")
                if sub == "six" and reader == "load_images" and "peak_mb" in new:
                    verdict = "meets" if new["peak_mb"] < TARGET_MB else "MISSES"
                    print(f"    target < {TARGET_MB:.0f} MB for the six-10-MP crop read: {verdict}")


if __name__ == "__main__":
    main()
