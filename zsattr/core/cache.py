"""A content-addressed artefact store: get-or-build by key, published atomically.

An artefact is a directory `<cache>/<key>/` holding the builder's files and `manifest.json`
(everything its key hashes, `keys.stage_inputs`; git commit, package versions, creation time,
build seconds). Keys come from the stage graph (`zsattr.core.keys`). The builder writes into
a fresh `.building-*` directory; the manifest is written last and the directory is renamed
into place in one `os.rename`. So a directory named `<key>` with a manifest is
complete by construction; an interrupted build leaves only a `.building-*` directory, which
is never read and is swept on the next build.

Long builds that must resume after a kill get a persistent `work` directory
(`<cache>/.work/<key>/`) for their checkpoints; it is deleted once the artefact is published.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import atomic, provenance
from .config import Config
from .keys import Stage, key_of, stage_inputs
from .paths import cache_dir

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
Builder = Callable[[Path, Path], None]  # build(out_dir, work_dir)


@dataclass(frozen=True)
class Artefact:
    key: str
    path: Path
    manifest: dict[str, Any]
    built_now: bool


class ArtefactStore:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else cache_dir()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / key

    def is_complete(self, key: str) -> bool:
        return (self.path(key) / MANIFEST).is_file()

    def load(self, key: str) -> Artefact:
        if not self.is_complete(key):
            raise FileNotFoundError(f"artefact {key} is not in the cache at {self.root}")
        manifest = json.loads((self.path(key) / MANIFEST).read_text())
        return Artefact(key, self.path(key), manifest, built_now=False)

    def work_dir(self, key: str) -> Path:
        path = self.root / ".work" / key
        path.mkdir(parents=True, exist_ok=True)
        return path

    def get_or_build(self, cfg: Config, stage: Stage, build: Builder,
                     extra: dict[str, Any] | None = None) -> Artefact:
        """Return the cached artefact of `stage` for `cfg` (and `extra` inputs), building it once."""
        inputs = stage_inputs(cfg, stage, extra)
        key = key_of(inputs)
        if self.is_complete(key):
            log.info("cache hit %s", key)
            return self.load(key)
        self._sweep_partial(key)
        staging = self.root / f".building-{key}-{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        log.info("building %s", key)
        started = time.perf_counter()
        try:
            build(staging, self.work_dir(key))
            manifest = {
                "key": key,
                "stage": stage.name,
                "stage_version": stage.version,
                "inputs": inputs,
                "preset": cfg.preset,
                "git_commit": provenance.git_commit(),
                "packages": provenance.package_versions(),
                "created": provenance.now_iso(),
                "build_seconds": round(time.perf_counter() - started, 3),
                "files": sorted(str(p.relative_to(staging)) for p in staging.rglob("*")
                                if p.is_file()),
            }
            atomic.write_json(staging / MANIFEST, manifest)
            try:
                os.rename(staging, self.path(key))
            except OSError:
                if not self.is_complete(key):  # not a concurrent builder winning the race
                    raise
                log.info("another process published %s first; using theirs", key)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(self.root / ".work" / key, ignore_errors=True)
        artefact = self.load(key)
        return Artefact(key, artefact.path, artefact.manifest, built_now=True)

    def _sweep_partial(self, key: str) -> None:
        for stale in self.root.glob(f".building-{key}-*"):
            log.warning("removing interrupted build %s", stale.name)
            shutil.rmtree(stale, ignore_errors=True)
        target = self.path(key)
        if target.exists() and not self.is_complete(key):  # e.g. a copy someone left half-made
            log.warning("removing incomplete artefact %s (no manifest)", key)
            shutil.rmtree(target, ignore_errors=True)
