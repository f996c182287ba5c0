"""Cache keys derived from the stage graph, never hand-kept.

Each cached stage declares a `Stage`: its name and version, the config section it owns, the
scale-wide settings it reads (`seed`, `image_size`), the stages it reads, and the user folders
it reads. Its key is

    hash(name, version, the section's keyed fields, the settings, the upstream stages' keys,
         the contents of its folders, the call's extra inputs)

so bumping a stage's version or changing one of its fields changes the key of every stage
downstream of it, and nothing else. A user folder counts by its contents (file names, sizes,
a SHA-256 of each file), never by its path string: editing one image rebuilds what read it,
moving the folder rebuilds nothing. Stages without an artefact of their own (the photo pool,
the input chain) are `Stage`s too, so that their settings reach the keys of their readers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import atomic
from .config import Config, get
from .paths import cache_dir

log = logging.getLogger(__name__)

DIGEST_MEMO = ".file_digests.json"  # per-file hashes, keyed by (size, mtime), so a folder is read once
RACY_SECONDS = 2.0  # a file modified this recently may change again within one mtime tick: never memoised


@dataclass(frozen=True)
class Stage:
    """One node of the stage graph (see the module docstring)."""

    name: str
    version: int
    section: str | None = None  # config section the stage owns; its keyed fields are hashed
    settings: tuple[str, ...] = ()  # scale-wide settings it reads, e.g. ("seed", "image_size")
    reads: tuple["Stage", ...] | Callable[[Config], tuple["Stage", ...]] = ()  # upstream stages
    folders: Callable[[Config], dict[str, str | None]] | None = None  # name -> user folder it reads

    def upstream(self, cfg: Config) -> tuple["Stage", ...]:
        return tuple(self.reads(cfg)) if callable(self.reads) else tuple(self.reads)


def stage_inputs(cfg: Config, stage: Stage, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the key hashes, as a JSON-able dict (also written to the artefact's manifest)."""
    folders = stage.folders(cfg) if stage.folders else {}
    return {
        "stage": stage.name,
        "version": stage.version,
        "config": getattr(cfg, stage.section).keyed() if stage.section else {},
        "settings": {name: get(cfg, name) for name in stage.settings},
        "reads": {up.name: stage_key(cfg, up) for up in stage.upstream(cfg)},
        "folders": {name: folder_digest(path) for name, path in folders.items() if path},
        "extra": extra or {},
    }


def stage_key(cfg: Config, stage: Stage, extra: dict[str, Any] | None = None) -> str:
    """`<name>-<16 hex>`: stable across processes and Python versions (sorted JSON, SHA-256)."""
    return key_of(stage_inputs(cfg, stage, extra))


def key_of(inputs: dict[str, Any]) -> str:
    """The key of `stage_inputs(...)` already computed (a user folder is then not read again)."""
    blob = json.dumps(inputs, sort_keys=True, default=str).encode()
    return f"{inputs['stage']}-{hashlib.sha256(blob).hexdigest()[:16]}"


def folder_digest(root: str | os.PathLike) -> str:
    """SHA-256 over every file under `root` (hidden ones skipped): relative path, size, content hash.

    Content hashes are remembered in the cache folder by (path, size, modification time), so
    a large folder is read in full once and only stat-ed after that. A file modified in the
    last RACY_SECONDS is always read (it could change again without its mtime moving)."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; it was named as a source of real images")
    memo_path = cache_dir() / DIGEST_MEMO
    try:
        memo = json.loads(memo_path.read_text()) if memo_path.exists() else {}
    except (OSError, json.JSONDecodeError):
        memo = {}
    changed = False
    listing = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        known = memo.get(str(path))
        if known is None or known[:2] != stamp:
            known = stamp + [_file_sha256(path)]
            if time.time() - stat.st_mtime > RACY_SECONDS:
                memo[str(path)] = known
                changed = True
        listing.append([relative.as_posix(), stat.st_size, known[2]])
    if changed:
        atomic.write_json(memo_path, memo)
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()  # reads in blocks
