"""A content-addressed artefact store: get-or-build by key, published atomically.

An artefact is a directory `<cache>/<key>/` holding the builder's files and `manifest.json`
(everything its key hashes, `keys.stage_inputs`; git commit, package versions, creation time,
build seconds, and a SHA-256 per file). Keys come from the stage graph (`zsattr.core.keys`).

A build holds the key's lock (`<cache>/.locks/<key>.lock`, `core.lock`), so two processes never
build one artefact at once: the second waits, then reads what the first published. The builder
writes into a fresh `.building-*` directory; the manifest is written last and the directory is
renamed into place in one `os.rename`. So a directory named `<key>` with a manifest is complete
by construction; an interrupted build leaves only a `.building-*` directory, which is never
read and is swept by the next build of that key (under its lock, so never a live one).

`load` checks every file against the manifest's hashes (each file version once per process:
a small memo by path, size and mtime); a changed or missing file, or an unreadable manifest, is
a `DamagedArtefactError` naming the file, and `get_or_build` rebuilds such an artefact. An
artefact from before hashes were recorded loads with one warning per key.

Long builds that must resume after a kill get a persistent `work` directory
(`<cache>/.work/<key>/`) for their checkpoints; it is deleted once the artefact is published.
"""

from __future__ import annotations

import hashlib
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
from .lock import FileLock
from .paths import cache_dir, ensure_dir, not_writable

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LOCKS = ".locks"
WORK = ".work"
BUILDING = ".building-"  # + key + "-" + 8 hex: a build's staging directory
REMOVING = ".removing-"  # + key + "-" + 8 hex: an artefact being deleted
Builder = Callable[[Path, Path], None]  # build(out_dir, work_dir)
CHUNK = 1 << 20  # files are hashed in 1 MiB reads
MEMO_LIMIT = 20_000  # file versions remembered as checked; the memo is cleared beyond this

_checked: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256 found
_warned_no_hashes: set[str] = set()


class DamagedArtefactError(ValueError):
    """An artefact's manifest is unreadable, or a file differs from its recorded hash or is gone."""


@dataclass(frozen=True)
class Artefact:
    key: str
    path: Path
    manifest: dict[str, Any]
    built_now: bool


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _remember(path: Path, stat: os.stat_result, sha: str) -> None:
    if len(_checked) >= MEMO_LIMIT:
        _checked.clear()
    _checked[(str(path), stat.st_size, stat.st_mtime_ns)] = sha


def read_manifest(artefact_dir: Path) -> dict[str, Any]:
    path = artefact_dir / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise DamagedArtefactError(f"{path} is not a readable manifest ({exc})") from exc
    if not isinstance(manifest, dict):
        raise DamagedArtefactError(f"{path} is not a readable manifest (not a JSON object)")
    return manifest


def check_files(artefact_dir: Path, manifest: dict[str, Any], memo: bool = True) -> bool:
    """Check every file against the manifest's SHA-256; False if it records none (older code).
    `memo=False` re-reads every file (`zsattr cache verify`)."""
    recorded = manifest.get("sha256")
    if recorded is None:
        return False
    if not isinstance(recorded, dict):
        raise DamagedArtefactError(f"{artefact_dir / MANIFEST}: its 'sha256' entry is not a mapping")
    for rel, expected in sorted(recorded.items()):
        path = artefact_dir / rel
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise DamagedArtefactError(f"{path} is missing from the artefact (its manifest lists it)") from None
        found = _checked.get((str(path), stat.st_size, stat.st_mtime_ns)) if memo else None
        if found is None:
            try:
                found = file_sha256(path)
            except OSError as exc:  # e.g. a folder where the file was, or no read permission
                raise DamagedArtefactError(f"{path} cannot be read ({exc.strerror or exc})") from exc
            _remember(path, stat, found)
        if found != expected:
            raise DamagedArtefactError(f"{path} differs from the SHA-256 its manifest records "
                                       "(changed after the build)")
    return True


class ArtefactStore:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = ensure_dir(Path(root)) if root is not None else cache_dir()

    def path(self, key: str) -> Path:
        return self.root / key

    def is_complete(self, key: str) -> bool:
        return (self.path(key) / MANIFEST).is_file()

    def load(self, key: str) -> Artefact:
        """The artefact, its files checked against their hashes (DamagedArtefactError if not)."""
        if not self.is_complete(key):
            raise FileNotFoundError(f"artefact {key} is not in the cache at {self.root}")
        manifest = read_manifest(self.path(key))
        if not check_files(self.path(key), manifest) and key not in _warned_no_hashes:
            _warned_no_hashes.add(key)
            log.warning("artefact %s has no recorded file hashes (built by an older zsattr); loading it "
                        "unchecked", key)
        return Artefact(key, self.path(key), manifest, built_now=False)

    def work_dir(self, key: str) -> Path:
        path = self.root / WORK / key
        path.mkdir(parents=True, exist_ok=True)
        return path

    def lock(self, key: str) -> FileLock:
        return FileLock(self.root / LOCKS / f"{key}.lock", what=f"building {key}")

    def get_or_build(self, cfg: Config, stage: Stage, build: Builder,
                     extra: dict[str, Any] | None = None) -> Artefact:
        """Return the cached artefact of `stage` for `cfg` (and `extra` inputs), building it once."""
        inputs = stage_inputs(cfg, stage, extra)
        key = key_of(inputs)
        if self.is_complete(key):
            try:
                artefact = self.load(key)
                log.info("cache hit %s", key)
                return artefact
            except DamagedArtefactError:
                pass  # looked at again under the lock: another process may be rebuilding it
        lock = self.lock(key)
        try:
            ensure_dir(lock.path.parent)
            lock.acquire()
        except OSError as exc:
            raise not_writable(lock.path.parent, exc) from exc
        try:
            if self.is_complete(key):
                try:
                    artefact = self.load(key)
                    log.info("cache hit %s (built by another process meanwhile)", key)
                    return artefact
                except DamagedArtefactError as exc:
                    log.warning("%s; rebuilding artefact %s", exc, key)
                    self.remove(key)
            self._sweep_partial(key)
            return self._build(cfg, stage, build, inputs, key)
        finally:
            lock.release()

    def _build(self, cfg: Config, stage: Stage, build: Builder, inputs: dict[str, Any], key: str) -> Artefact:
        staging = self.root / f"{BUILDING}{key}-{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        log.info("building %s", key)
        started = time.perf_counter()
        try:
            build(staging, self.work_dir(key))
            files = sorted(p for p in staging.rglob("*") if p.is_file())
            hashes = {str(p.relative_to(staging)): file_sha256(p) for p in files}
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
                "files": sorted(hashes),
                "sha256": hashes,
            }
            atomic.write_json(staging / MANIFEST, manifest)
            try:
                os.rename(staging, self.path(key))
                published = True
            except OSError:
                if not self.is_complete(key):  # not a builder elsewhere that ignored the lock
                    raise
                log.info("another process published %s first; using theirs", key)
                published = False
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        for rel, sha in hashes.items() if published else ():  # just hashed: the load need not reread
            final = self.path(key) / rel
            _remember(final, final.stat(), sha)
        shutil.rmtree(self.root / WORK / key, ignore_errors=True)
        artefact = self.load(key)
        return Artefact(key, artefact.path, artefact.manifest, built_now=True)

    def remove(self, key: str) -> None:
        """Move the artefact out of the way in one rename (no reader sees it half-deleted), then
        delete it. The caller holds the key's lock."""
        trash = self.root / f"{REMOVING}{key}-{uuid.uuid4().hex[:8]}"
        os.rename(self.path(key), trash)
        shutil.rmtree(trash, ignore_errors=True)

    def _sweep_partial(self, key: str) -> None:
        """Remove what dead builds of `key` left; only ever called with the key's lock held."""
        for stale in self.root.glob(f"{BUILDING}{key}-*"):
            log.warning("removing interrupted build %s", stale.name)
            shutil.rmtree(stale, ignore_errors=True)
        target = self.path(key)
        if target.exists() and not self.is_complete(key):  # e.g. a copy someone left half-made
            log.warning("removing incomplete artefact %s (no manifest)", key)
            shutil.rmtree(target, ignore_errors=True)
