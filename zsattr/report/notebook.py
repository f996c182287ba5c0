"""The notebook contract's bookkeeping: each notebook starts a `NotebookRun`, saves its
figures and tables through it (with provenance), and ends by writing
`reports/<preset>/<notebook-stem>.json` (preset, git commit, wall time, versions, metrics)."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd

from ..core import atomic, provenance
from ..core.config import Config
from ..core.paths import figures_dir, reports_dir

log = logging.getLogger(__name__)

PROVENANCE_FILE = "provenance.json"


def _jsonable(value: Any) -> Any:
    """numpy/pandas scalars and arrays to plain JSON; NaN and inf become None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def markdown_table(df, floatfmt: str = ".3f") -> str:
    """A pandas DataFrame as a GitHub Markdown table (no `tabulate` dependency)."""
    # Keep the index as columns unless it is the default 0..n-1 (unnamed levels get names).
    frame = df if isinstance(df.index, pd.RangeIndex) else df.reset_index()
    cols = [str(c) for c in frame.columns]

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return format(v, floatfmt) if math.isfinite(v) else "–"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


class NotebookRun:
    """One notebook's outputs: figures and tables into the preset's figures folder, the report
    into reports/<preset>/; with `out_dir` (an evaluation of a user's folder) both go there
    instead, so such a run never overwrites the committed results."""

    def __init__(self, notebook: str, cfg: Config, out_dir: Path | None = None):
        self.notebook = notebook
        self.cfg = cfg
        self.started = time.perf_counter()
        self.reports = reports_dir(cfg.preset) if out_dir is None else Path(out_dir)
        self.figures = figures_dir(cfg.preset) if out_dir is None else Path(out_dir) / "figures"
        self.figures.mkdir(parents=True, exist_ok=True)

    def _stamp(self) -> dict[str, Any]:
        return {"notebook": self.notebook, "preset": self.cfg.preset,
                "git_commit": provenance.git_commit(), "created": provenance.now_iso()}

    def _record(self, *names: str) -> None:
        path = self.figures / PROVENANCE_FILE
        record = json.loads(path.read_text()) if path.exists() else {}
        for name in names:
            record[name] = self._stamp()
        atomic.write_json(path, record)

    def save_figure(self, fig, name: str, dpi: int = 110) -> Path:
        """PNG into the preset's figures folder, provenance in its PNG text and provenance.json."""
        path = self.figures / f"{name}.png"
        stamp = {k: str(v) for k, v in self._stamp().items()}
        with atomic.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", metadata=stamp)
        self._record(path.name)
        return path

    def save_table(self, df, name: str, floatfmt: str = ".3f") -> Path:
        """CSV and Markdown, each with the preset and commit that made it."""
        stamp = self._stamp()
        header = f"preset={stamp['preset']} git_commit={stamp['git_commit']} notebook={self.notebook}"
        csv_path, md_path = self.figures / f"{name}.csv", self.figures / f"{name}.md"
        atomic.write_bytes(csv_path, (f"# {header}\n" + df.to_csv()).encode())
        atomic.write_bytes(md_path, (markdown_table(df, floatfmt) + f"\n_{header}_\n").encode())
        self._record(csv_path.name, md_path.name)
        return md_path

    def finish(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Write reports/<preset>/<notebook>.json and return what was written."""
        out = {
            "notebook": self.notebook,
            "preset": self.cfg.preset,
            "git_commit": provenance.git_commit(),
            "wall_time_s": round(time.perf_counter() - self.started, 2),
            "created": provenance.now_iso(),
            "packages": provenance.package_versions(),
            "config": self.cfg.to_dict(),
            "metrics": _jsonable(metrics),
        }
        atomic.write_json(self.reports / f"{self.notebook}.json", out)
        log.info("wrote report for %s (%s)", self.notebook, self.cfg.preset)
        return out


def start(notebook: str, cfg: Config, out_dir: Path | None = None) -> NotebookRun:
    return NotebookRun(notebook, cfg, out_dir)
