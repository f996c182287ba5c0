"""Files of arrays plus JSON metadata, without pickle: the tool's extractor and gallery files.

One NumPy `.npz` archive: the arrays by name, and `meta`, one JSON string (with a `format`
version). Written atomically (`core.atomic`); read with `allow_pickle=False`, so a file can hold
numbers and text only, never code. `read` turns every way a file can be unreadable into one
`ArrayFileError` naming the file; `check_format` words a version mismatch for the user.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import atomic


class ArrayFileError(ValueError):
    """The file is missing, not an archive, damaged, or has no readable metadata."""


def write(path: str | Path, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    if "meta" in arrays:
        raise ValueError("'meta' is reserved for the metadata")
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a handle: np.savez would add ".npz"
        np.savez(fh, meta=np.array(json.dumps(dict(meta))), **arrays)


def read(path: str | Path, what: str, how_to_make: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of the file at `path`; `what` names the kind of file in errors ("gallery
    file"), `how_to_make` says how to get one ("create one with `zsattr gallery create`")."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ArrayFileError(f"{what} {path} does not exist ({how_to_make})")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ArrayFileError(f"{path} is not a readable {what} ({type(exc).__name__}: {exc})") from exc
    if "meta" not in arrays:
        raise ArrayFileError(f"{path} holds no {what.removesuffix(' file')} metadata; it is not a file zsattr wrote")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as exc:
        raise ArrayFileError(f"{path}: its metadata is damaged ({exc})") from exc
    if not isinstance(meta, dict):
        raise ArrayFileError(f"{path}: its metadata is not a JSON object")
    return meta, arrays


def check_format(path: str | Path, meta: Mapping[str, Any], expected: int, what: str, redo: str) -> None:
    """Raise ArrayFileError unless `meta["format"]` is `expected`: a newer file asks for a newer
    zsattr, an older one for `redo` (e.g. "Re-enrol the models with this version.")."""
    found = meta.get("format")
    if found != expected:
        newer = isinstance(found, int) and found > expected
        raise ArrayFileError(f"{path} is a {what} of format {found}; this version of zsattr reads format "
                             f"{expected}. " + ("Upgrade zsattr to read it." if newer else redo))
