"""Where things live. Found from this file's location, never from the working directory,
so JupyterLab, papermill, nbval, pytest and the CLI all agree.

- `ZSATTR_ROOT` overrides the repository root (a non-editable install has no repo around it).
- `ZSATTR_DATA_DIR` moves the data/cache directory (default: `<root>/data`).
"""

from __future__ import annotations

import os
from pathlib import Path

_MARKER = "pyproject.toml"


def repo_root() -> Path:
    env = os.environ.get("ZSATTR_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        marker = parent / _MARKER
        if marker.is_file() and 'name = "zsattr"' in marker.read_text(encoding="utf-8"):
            return parent
    raise RuntimeError(
        f"cannot find the zsattr repository above {here}; install with `pip install -e .` "
        "from a clone, or set ZSATTR_ROOT"
    )


def data_dir() -> Path:
    env = os.environ.get("ZSATTR_DATA_DIR")
    path = Path(env).expanduser().resolve() if env else repo_root() / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    path = data_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def reports_dir(preset: str) -> Path:
    path = repo_root() / "reports" / preset
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir(preset: str) -> Path:
    """Committed figures come from the `cpu` run; other presets keep theirs beside their reports."""
    path = repo_root() / "figures" if preset == "cpu" else reports_dir(preset) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path
