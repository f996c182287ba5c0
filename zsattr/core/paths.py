"""Where things live. Found from this file's location, never from the working directory,
so JupyterLab, papermill, nbval, pytest and the CLI all agree.

- `ZSATTR_ROOT` overrides the repository root (a non-editable install has no repo around it).
- `ZSATTR_DATA_DIR` moves the data/cache directory (default: `<root>/data`).

A data directory that cannot be used (a file is in the way, it cannot be created or written)
raises `DataDirError`, one line naming the path; the CLI prints it and exits 2.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

_MARKER = "pyproject.toml"
_MOVE_IT = "set ZSATTR_DATA_DIR to a writable folder to put the data and cache elsewhere"
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class DataDirError(RuntimeError):
    """The data directory (or the cache inside it) is not a usable, writable folder."""


def ensure_dir(path: Path) -> Path:
    """`path` as an existing folder (created if absent), or DataDirError saying why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise not_writable(path, exc) from exc
    return path


def not_writable(path: Path, exc: OSError) -> DataDirError:
    """The DataDirError for an OSError met while creating or writing `path` (or inside it)."""
    blocker = next((p for p in (path, *path.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        why = f"{blocker} is a file, not a folder"
    elif exc.errno in _NOT_WRITABLE and blocker == path:
        why = f"{path} is not writable ({exc.strerror})"
    elif exc.errno in _NOT_WRITABLE:
        why = f"{blocker} is not writable (cannot create {path}: {exc.strerror})"
    else:
        why = f"{path} cannot be used ({exc.strerror or exc})"
    return DataDirError(f"data directory unusable: {why}; {_MOVE_IT}")


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
    return ensure_dir(Path(env).expanduser().resolve() if env else repo_root() / "data")


def cache_dir() -> Path:
    return ensure_dir(data_dir() / "cache")


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
