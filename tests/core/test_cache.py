import json
import subprocess
import sys
import textwrap

import pytest

from zsattr.core import config
from zsattr.core.cache import ArtefactStore
from zsattr.core.keys import Stage, stage_key

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
