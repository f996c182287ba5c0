"""The papermill chain: execute notebooks/NN_*.ipynb in order into reports/<preset>/.

Stops at the first failure, keeping the partially executed notebook (papermill saves it with
the failing cell marked), and writes reports/<preset>/timings.json after every notebook.

The kernels draw with matplotlib's inline backend whatever MPLBACKEND the caller set (the
Makefile sets Agg for the tests): the executed notebooks keep their figures, so a reader can
follow the argument in reports/<preset>/*.ipynb without running anything.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import papermill

from ..core import atomic, provenance
from ..core.paths import notebooks_dir, reports_dir

log = logging.getLogger(__name__)
NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_.+\.ipynb$")


@dataclass
class NotebookResult:
    notebook: str
    seconds: float
    status: str  # "ok" | "failed"
    output: Path
    error: str = ""
    finished: str = ""


def discover(folder: Path | None = None) -> list[Path]:
    folder = folder or notebooks_dir()
    found = sorted(p for p in folder.iterdir() if NOTEBOOK_PATTERN.match(p.name))
    if not found:
        raise FileNotFoundError(f"no NN_*.ipynb notebooks in {folder}")
    return found


def select(paths: list[Path], only: list[str] | None = None, start: str | None = None) -> list[Path]:
    """Filter by two-digit numbers: `only` keeps those listed, `start` drops earlier ones."""
    numbers = {p: NOTEBOOK_PATTERN.match(p.name).group(1) for p in paths}
    known = set(numbers.values())
    for wanted in (only or []) + ([start] if start else []):
        if wanted not in known:
            raise ValueError(f"no notebook numbered {wanted!r}; have {sorted(known)}")
    chosen = [p for p in paths if not only or numbers[p] in only]
    return [p for p in chosen if not start or numbers[p] >= start]


INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def run_chain(preset: str, only: list[str] | None = None, start: str | None = None,
              folder: Path | None = None, out_dir: Path | None = None,
              kernel_name: str = "python3", on_result=None,
              parameters: dict | None = None) -> list[NotebookResult]:
    """Execute the chosen notebooks in order with `scale=preset` (plus `parameters`, which
    every notebook run must declare) into `out_dir` (default reports/<preset>/)."""
    notebooks = select(discover(folder), only, start)
    out_dir = out_dir or reports_dir(preset)
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ["MPLBACKEND"] = INLINE_BACKEND  # inherited by the kernels: figures stay in the notebooks
    timings_path = out_dir / "timings.json"
    results: list[NotebookResult] = []
    for nb in notebooks:
        output = out_dir / nb.name
        started = time.perf_counter()
        status, error = "ok", ""
        try:
            papermill.execute_notebook(str(nb), str(output), parameters={"scale": preset, **(parameters or {})},
                                       kernel_name=kernel_name, cwd=str(nb.parent),
                                       progress_bar=False, report_mode=False)
        except Exception as exc:  # papermill's own error, a dead kernel, a bad parameter...
            status, error = "failed", f"{type(exc).__name__}: {str(exc)[:2000]}"
        result = NotebookResult(nb.stem, round(time.perf_counter() - started, 2), status, output, error,
                                provenance.now_iso())
        results.append(result)
        _write_timings(timings_path, preset, results)
        if on_result:
            on_result(result)
        if status != "ok":
            break
    return results


def _write_timings(path: Path, preset: str, results: list[NotebookResult]) -> None:
    """Merge this run's entries into timings.json so `--only` reruns keep the others."""
    previous = json.loads(path.read_text()).get("notebooks", {}) if path.exists() else {}
    for r in results:
        previous[r.notebook] = {"seconds": r.seconds, "status": r.status,
                                "git_commit": provenance.git_commit(), "finished": r.finished}
    atomic.write_json(path, {
        "preset": preset,
        "notebooks": dict(sorted(previous.items())),
        "total_seconds": round(sum(v["seconds"] for v in previous.values()), 2),
        "last_run": [r.notebook for r in results],
    })
