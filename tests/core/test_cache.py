import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import tomllib

import pytest
import torch

from zsattr.core import atomic, cache, cache_admin, config
from zsattr.core.cache import ArtefactStore, DamagedArtefactError
from zsattr.core.keys import Stage, stage_key
from zsattr.core.paths import repo_root

DEMO = Stage("demo", 1, settings=("image_size",))
SEEDED = Stage("demo", 1, settings=("seed",))


@pytest.fixture
def store(tmp_path):
    return ArtefactStore(tmp_path / "cache")


def _writer(calls):
    def build(out, work):
        calls.append(out)
        (out / "a.txt").write_text("payload")
    return build


def test_get_or_build_builds_once_and_records_provenance(store):
    cfg, calls = config.resolve("smoke"), []
    first = store.get_or_build(cfg, DEMO, _writer(calls))
    second = store.get_or_build(cfg.replace(seed=5), DEMO, _writer(calls))
    assert len(calls) == 1 and first.built_now and not second.built_now
    assert first.path == second.path and (first.path / "a.txt").read_text() == "payload"
    manifest = json.loads((first.path / "manifest.json").read_text())
    assert manifest["inputs"]["settings"] == {"image_size": 32} and manifest["stage"] == "demo"
    assert manifest["files"] == ["a.txt"]
    for key in ("git_commit", "packages", "created", "build_seconds", "stage_version"):
        assert key in manifest
    assert "torch" in manifest["packages"]


def test_a_different_field_value_is_a_different_artefact(store):
    calls = []
    store.get_or_build(config.resolve("smoke"), DEMO, _writer(calls))
    store.get_or_build(config.resolve("cpu"), DEMO, _writer(calls))
    assert len(calls) == 2


def test_a_build_that_raises_leaves_nothing_readable(store):
    cfg = config.resolve("smoke")

    def broken(out, work):
        (out / "half.bin").write_bytes(b"x" * 100)
        raise KeyboardInterrupt  # what Ctrl-C in a notebook does mid-build

    with pytest.raises(KeyboardInterrupt):
        store.get_or_build(cfg, SEEDED, broken)
    key = stage_key(cfg, SEEDED)
    assert not store.is_complete(key)
    with pytest.raises(FileNotFoundError):
        store.load(key)
    assert store.get_or_build(cfg, SEEDED, _writer([])).built_now


def test_a_killed_build_is_never_read_as_complete_and_resumes_from_work_dir(store):
    """A process killed mid-write (no cleanup runs at all) leaves a staging directory and a
    checkpoint in the work directory; the next build ignores the former and resumes the latter."""
    script = textwrap.dedent(f"""
        import os
        from zsattr.core import config
        from zsattr.core.cache import ArtefactStore
        from zsattr.core.keys import Stage
        def build(out, work):
            (work / "checkpoint.txt").write_text("step 3")
            (out / "big.bin").write_bytes(b"x" * 1000)
            os._exit(9)  # killed: no finally blocks, no manifest, no rename
        stage = Stage("demo", 1, settings=("seed",))
        ArtefactStore({str(store.root)!r}).get_or_build(config.resolve("smoke"), stage, build)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    cfg = config.resolve("smoke")
    key = stage_key(cfg, SEEDED)
    assert not store.is_complete(key)
    assert list(store.root.glob(f".building-{key}-*")), "the staging directory should be left behind"

    resumed_from = []

    def resume(out, work):
        resumed_from.append((work / "checkpoint.txt").read_text())
        (out / "big.bin").write_bytes(b"y")

    art = store.get_or_build(cfg, SEEDED, resume)
    assert resumed_from == ["step 3"]
    assert (art.path / "big.bin").read_bytes() == b"y"
    assert not list(store.root.glob(f".building-{key}-*"))
    assert not (store.root / ".work" / key).exists()


def test_a_directory_without_manifest_is_not_complete(store):
    cfg = config.resolve("smoke")
    key = stage_key(cfg, SEEDED)
    (store.root / key).mkdir()
    (store.root / key / "a.txt").write_text("stale")
    assert not store.is_complete(key)
    art = store.get_or_build(cfg, SEEDED, _writer([]))
    assert (art.path / "a.txt").read_text() == "payload"


def test_atomic_json_write_keeps_old_file_on_failure(tmp_path):
    from zsattr.core import atomic

    target = tmp_path / "r.json"
    atomic.write_json(target, {"v": 1})
    with pytest.raises(TypeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "half')
            raise TypeError("interrupted")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_the_manifest_records_a_sha256_per_file(store):
    def build(out, work):
        (out / "a.txt").write_text("payload")
        (out / "sub").mkdir()
        (out / "sub" / "w.bin").write_bytes(b"\0" * 3_000_000)  # more than one 1 MiB chunk

    art = store.get_or_build(config.resolve("smoke"), DEMO, build)
    assert art.manifest["sha256"] == {"a.txt": hashlib.sha256(b"payload").hexdigest(),
                                      "sub/w.bin": hashlib.sha256(b"\0" * 3_000_000).hexdigest()}
    assert json.loads((art.path / "manifest.json").read_text())["sha256"] == art.manifest["sha256"]


def test_a_changed_or_missing_file_is_an_error_naming_it_and_get_or_build_rebuilds(store, caplog):
    cfg, calls = config.resolve("smoke"), []
    art = store.get_or_build(cfg, DEMO, _writer(calls))
    (art.path / "a.txt").write_text("swapped weights")
    with pytest.raises(DamagedArtefactError, match=re.escape(str(art.path / "a.txt")) + ".*differs"):
        store.load(art.key)
    with caplog.at_level(logging.WARNING, logger="zsattr.core.cache"):
        again = store.get_or_build(cfg, DEMO, _writer(calls))
    assert len(calls) == 2 and again.built_now and (again.path / "a.txt").read_text() == "payload"
    assert "a.txt differs" in caplog.text and f"rebuilding artefact {art.key}" in caplog.text
    (art.path / "a.txt").unlink()
    with pytest.raises(DamagedArtefactError, match=re.escape(str(art.path / "a.txt")) + " is missing"):
        store.load(art.key)
    assert store.get_or_build(cfg, DEMO, _writer(calls)).built_now and len(calls) == 3


def test_each_file_version_is_hashed_once_per_process_and_verify_rereads(store):
    art = store.get_or_build(config.resolve("smoke"), DEMO, _writer([]))
    target = art.path / "a.txt"
    stat = target.stat()
    target.write_text("PAYLOAD")  # same size, and the old mtime put back: the same (path, size, mtime_ns)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    store.load(art.key)  # the memo answers: the file is not read again
    [(_, status, detail)] = cache_admin.verify(store)
    assert status == "DAMAGED" and str(target) in detail
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new version: read again
    with pytest.raises(DamagedArtefactError):
        store.load(art.key)


def test_an_artefact_from_before_hashes_loads_with_one_warning_per_key(store, caplog, monkeypatch):
    cfg, calls = config.resolve("smoke"), []
    legacy = Stage("legacy", 1, settings=("seed",))
    # the warned-about keys are remembered per process: start from none (the test may run twice in one)
    monkeypatch.setattr(cache, "_warned_no_hashes", set())
    art = store.get_or_build(cfg, legacy, _writer(calls))
    manifest = dict(art.manifest)
    del manifest["sha256"]
    atomic.write_json(art.path / "manifest.json", manifest)
    with caplog.at_level(logging.WARNING, logger="zsattr.core.cache"):
        store.load(art.key)
        reused = store.get_or_build(cfg, legacy, _writer(calls))
    assert not reused.built_now and len(calls) == 1
    warnings = [r.getMessage() for r in caplog.records if "no recorded file hashes" in r.getMessage()]
    assert len(warnings) == 1 and art.key in warnings[0]


def test_a_corrupt_manifest_is_an_error_naming_it_and_get_or_build_rebuilds(store, caplog):
    cfg, calls = config.resolve("smoke"), []
    art = store.get_or_build(cfg, DEMO, _writer(calls))
    (art.path / "manifest.json").write_text('{"key": "demo-')  # cut short
    with pytest.raises(DamagedArtefactError, match=re.escape(str(art.path / "manifest.json"))):
        store.load(art.key)
    with caplog.at_level(logging.WARNING, logger="zsattr.core.cache"):
        assert store.get_or_build(cfg, DEMO, _writer(calls)).built_now
    assert len(calls) == 2 and "manifest.json is not a readable manifest" in caplog.text


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_atomic_writes_end_with_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic.write_json(tmp_path / "r.json", {"v": 1})
        art = ArtefactStore(tmp_path / "cache").get_or_build(config.resolve("smoke"), DEMO, _writer([]))
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == mode
    assert (art.path / "manifest.json").stat().st_mode & 0o777 == mode


def test_checkpoints_load_weights_only_on_a_torch_where_that_is_safe():
    """`atomic.torch_load` relies on weights_only=True, which is not safe before torch 2.6: the
    package must not admit an older torch (requirements.txt pins the tested one)."""
    deps = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]["dependencies"]
    [torch_dep] = [d for d in deps if re.match(r"torch\b(?!vision)", d)]
    lower = re.fullmatch(r"torch\s*>=\s*(\d+)\.(\d+).*", torch_dep)
    assert lower and (int(lower[1]), int(lower[2])) >= (2, 6), torch_dep
    assert tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 6)
