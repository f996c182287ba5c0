"""Looking after the artefact store: what `zsattr cache list|verify|clean` do (the CLI prints).

- `artefacts`: every published artefact with its manifest (or why that cannot be read);
- `leftovers`: what builds leave behind (staging and work directories, artefacts without a
  manifest or half-removed, lock files of dead processes), each with the live build using it;
- `verify`: every artefact's files re-hashed against its manifest (no memo);
- `clean`: removes the leftovers of dead builds and, if asked, artefacts older than N days.
  Each removal holds the key's build lock, so nothing a running build uses is ever removed.
"""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import cache
from .cache import ArtefactStore, DamagedArtefactError
from .lock import FileLock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArtefactInfo:
    key: str
    path: Path
    size: int
    manifest: dict[str, Any] | None  # None when unreadable
    error: str | None = None

    def created(self) -> _dt.datetime:
        """From the manifest; the manifest file's time when it does not say."""
        try:
            when = _dt.datetime.fromisoformat(str(self.manifest["created"]))
        except (TypeError, KeyError, ValueError):
            when = _dt.datetime.fromtimestamp((self.path / cache.MANIFEST).stat().st_mtime, _dt.timezone.utc)
        return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)


@dataclass(frozen=True)
class Leftover:
    path: Path
    key: str
    what: str
    size: int
    in_use_by: str | None  # the live build that holds the key's lock, if any


@dataclass(frozen=True)
class Removal:
    path: Path
    why: str
    size: int
    done: bool  # False: kept (its build is running) or a dry run
    note: str = ""


def format_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for p in path.rglob("*"):
        try:
            total += p.stat().st_size if p.is_file() else 0
        except FileNotFoundError:  # removed while we looked
            pass
    return total


def _key_of_suffixed(name: str, prefix: str) -> str:
    return name[len(prefix):].rsplit("-", 1)[0]  # <prefix><key>-<8 hex>


def artefacts(store: ArtefactStore) -> list[ArtefactInfo]:
    out = []
    for path in sorted(p for p in store.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (path / cache.MANIFEST).is_file():
            continue  # a leftover
        try:
            manifest, error = cache.read_manifest(path), None
        except DamagedArtefactError as exc:
            manifest, error = None, str(exc)
        out.append(ArtefactInfo(path.name, path, _size(path), manifest, error))
    return out


def _holder(lock: FileLock) -> str | None:
    if not lock.is_held():
        return None
    holder = lock.holder()
    return holder.describe() if holder else "a process starting its build"


def leftovers(store: ArtefactStore) -> list[Leftover]:
    found: list[tuple[Path, str, str]] = []
    for path in sorted(store.root.iterdir()):
        if path.is_dir() and path.name.startswith(cache.BUILDING):
            found.append((path, _key_of_suffixed(path.name, cache.BUILDING), "interrupted build"))
        elif path.is_dir() and path.name.startswith(cache.REMOVING):
            found.append((path, _key_of_suffixed(path.name, cache.REMOVING), "half-removed artefact"))
        elif path.is_dir() and not path.name.startswith(".") and not (path / cache.MANIFEST).is_file():
            found.append((path, path.name, "incomplete artefact (no manifest)"))
    work = store.root / cache.WORK
    if work.is_dir():
        found += [(p, p.name, "checkpoints of an unfinished build") for p in sorted(work.iterdir())]
    locks = store.root / cache.LOCKS
    if locks.is_dir():
        for path in sorted(locks.glob("*.lock")):
            if FileLock(path).is_stale():
                found.append((path, path.name.removesuffix(".lock"), "lock of a dead process"))
    return [Leftover(path, key, what, _size(path), None if what.startswith("lock") else _holder(store.lock(key)))
            for path, key, what in found]


def verify(store: ArtefactStore) -> list[tuple[ArtefactInfo, str, str]]:
    """(artefact, "OK" | "DAMAGED" | "NO-HASHES", detail) for every artefact; files re-read."""
    out = []
    for art in artefacts(store):
        if art.manifest is None:
            out.append((art, "DAMAGED", art.error or ""))
            continue
        try:
            checked = cache.check_files(art.path, art.manifest, memo=False)
        except (DamagedArtefactError, OSError) as exc:
            out.append((art, "DAMAGED", str(exc)))
            continue
        n = len(art.manifest.get("sha256") or {})
        out.append((art, "OK", f"{n} files") if checked else (art, "NO-HASHES", "built by an older zsattr"))
    return out


def _remove_path(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def clean(store: ArtefactStore, older_than_days: float | None = None, dry_run: bool = False,
          now: _dt.datetime | None = None) -> list[Removal]:
    """Remove leftovers of dead builds, and artefacts created more than `older_than_days` ago;
    anything whose key's lock a live process holds is kept."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    plan: list[tuple[str, Path, str, int]] = [(item.key, item.path, item.what, item.size)
                                               for item in leftovers(store)]
    if older_than_days is not None:
        for art in artefacts(store):
            age = (now - art.created()).total_seconds() / 86400
            if age > older_than_days:
                plan.append((art.key, art.path, f"artefact created {age:.1f} days ago", art.size))
    removals = []
    for key, path, why, size in plan:
        lock = store.lock(key)
        if path.parent.name == cache.LOCKS:  # a dead process's lock: taking it over and releasing it removes it
            if not dry_run and lock.try_acquire():
                lock.release()
            removals.append(Removal(path, why, size, done=not dry_run and not path.exists()))
            continue
        if dry_run:
            holder = _holder(lock)
            removals.append(Removal(path, why, size, False, f"in use by {holder}" if holder else ""))
            continue
        (store.root / cache.LOCKS).mkdir(exist_ok=True)
        if not lock.try_acquire():
            removals.append(Removal(path, why, size, False, f"in use by {_holder(lock) or 'a running build'}"))
            continue
        try:
            if path.parent == store.root and (path / cache.MANIFEST).is_file():
                store.remove(key)  # a published artefact: renamed away first
            elif path.exists():
                _remove_path(path)
            log.info("removed %s (%s)", path, why)
            removals.append(Removal(path, why, size, True))
        finally:
            lock.release()
    return removals
