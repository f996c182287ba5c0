"""Does a notebook give the same numbers twice? Run it twice from empty caches and compare.

Each run executes the chosen notebooks with papermill (every kernel is a fresh process) with a
temporary folder as the repository root (reports and figures land there, never over the
committed ones) and its own empty data directory, so the second run
rebuilds every artefact instead of loading the first run's. Then the `metrics` of each report
JSON are compared exactly, value by value; wall-clock entries (any key naming seconds, a speed-up, time or
throughput) are left out, since they are the one thing allowed to differ.

    python -m zsattr.report.determinism --preset smoke --only 01 02

exits 0 when every metric is identical, 1 (listing each difference) when not, 2 when a run fails.
`--against DIR` takes the reports of a run already made (DIR, a `reports/<preset>` folder of a run
from an empty cache) as the first run and makes only the second: `make test` passes the folder its
nbval run wrote, so the notebooks run twice in all, not three times.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from ..core.paths import notebooks_dir
from .chain import run_chain

# Keys whose values are measurements of time, or results of a wall-clock budget (notebook 04's
# equal-time comparison trains each network for a fixed number of seconds), not results.
TIMING = re.compile(r"second|speedup|time|throughput", re.IGNORECASE)


def is_timing(key: str) -> bool:
    return bool(TIMING.search(key))


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf) pairs of nested dicts and lists, skipping timing keys."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not is_timing(str(key)):
                yield from flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) is type(b)


def differences(first: dict, second: dict) -> list[str]:
    """Every metric path whose value differs (or exists in one report only), as readable lines."""
    a, b = dict(flatten(first)), dict(flatten(second))
    lines = [f"{path}: {a.get(path, '<missing>')!r} != {b.get(path, '<missing>')!r}"
             for path in sorted(set(a) | set(b))
             if path not in a or path not in b or not _same(a[path], b[path])]
    return lines


def run_once(preset: str, only: list[str], folder: Path) -> Path:
    """One run with `folder` as the repository root (its `notebooks` a link to the real ones, so
    reports and figures land under it) and `folder`/data as the empty data directory."""
    (folder / "notebooks").parent.mkdir(parents=True, exist_ok=True)
    (folder / "notebooks").symlink_to(notebooks_dir(), target_is_directory=True)
    reports = folder / "reports" / preset
    overrides = {"ZSATTR_ROOT": str(folder), "ZSATTR_DATA_DIR": str(folder / "data")}
    previous = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)  # inherited by the kernels
    try:
        results = run_chain(preset, only=only, folder=folder / "notebooks", out_dir=reports)
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    failed = [r for r in results if r.status != "ok"]
    if failed:
        first = failed[0]
        raise RuntimeError(f"{first.notebook} failed: {first.error.splitlines()[0] if first.error else ''}"
                           f" (executed copy: {first.output})")
    return reports


def compare_reports(first: Path, second: Path, notebooks: list[str]) -> dict[str, list[str]]:
    """{report name: differences} for the report JSON of each chosen notebook (an --against
    folder may hold other notebooks' reports too)."""
    names = sorted(p.name for p in first.glob("*.json") if p.name.split("_")[0] in notebooks)
    if not names:
        raise RuntimeError(f"the run wrote no report JSON into {first} (notebooks {notebooks})")
    out = {}
    for name in names:
        other = second / name
        if not other.is_file():
            out[name] = [f"missing in the second run: {other}"]
            continue
        out[name] = differences(json.loads((first / name).read_text())["metrics"],
                                json.loads(other.read_text())["metrics"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zsattr.report.determinism", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--only", nargs="+", required=True, metavar="NN", help="two-digit notebook numbers")
    parser.add_argument("--against", type=Path, metavar="DIR",
                        help="reports of a run already made from an empty cache, used as the first run")
    args = parser.parse_args(argv)
    if args.against is not None and not args.against.is_dir():
        print(f"determinism check: --against {args.against} is not a folder", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="zsattr-determinism-") as tmp:
        try:
            first = args.against or run_once(args.preset, args.only, Path(tmp) / "first")
            runs = [first, run_once(args.preset, args.only, Path(tmp) / "second")]
        except (RuntimeError, ValueError, FileNotFoundError) as exc:
            print(f"determinism check: {exc}", file=sys.stderr)
            return 2
        found = compare_reports(*runs, args.only)
    bad = {name: lines for name, lines in found.items() if lines}
    for name, lines in found.items():
        compared = "identical" if not lines else f"{len(lines)} differences"
        print(f"{name:<32} {compared}")
        for line in lines[:20]:
            print(f"  {line}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
