"""Derived cache keys: a stage's key follows its own fields, its version, the keys of the
stages it reads and the contents of the folders it reads, and nothing else."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zsattr.core import config, keys
from zsattr.core.keys import Stage, folder_digest, stage_key
from zsattr.experiments.ffd import FFD_VECTORS
from zsattr.extractor.stage import CLOSED_SET_EXTRACTOR, EXTRACTOR
from zsattr.fingerprint.chain import INPUT_CHAIN
from zsattr.images.photos import PHOTO_POOL
from zsattr.synthesis.bank import BANK
from zsattr.zoo import ZOO
from zsattr.zoo.variants import LORA_VARIANTS


def _key(stage, **overrides):
    return stage_key(config.resolve("smoke", **overrides), stage)


def test_a_stage_key_is_named_stable_and_reads_only_its_own_inputs():
    key = _key(BANK)
    assert key.startswith("synth_bank-") and len(key) == len("synth_bank-") + 16
    assert key == _key(BANK, seed=7, **{"zoo.steps": 3, "lora.rank": 2})  # fields the bank never reads
    assert key != _key(BANK, **{"bank.steps": 3})
    assert key == _key(BANK, **{"bank.workers": 2})  # keyed=False: the same models either way


def test_bumping_or_changing_the_bank_changes_the_extractors_key_and_unrelated_fields_do_not():
    cfg = config.resolve("smoke")
    extractor = stage_key(cfg, EXTRACTOR, {"space": "full", "steps": 3})
    bumped = Stage(BANK.name, BANK.version + 1, BANK.section, BANK.settings, BANK.reads)
    reads_bumped = Stage(EXTRACTOR.name, EXTRACTOR.version, EXTRACTOR.section, EXTRACTOR.settings,
                         (bumped,) + tuple(r for r in EXTRACTOR.reads if r is not BANK))
    assert stage_key(cfg, reads_bumped, {"space": "full", "steps": 3}) != extractor
    assert stage_key(cfg.replace(**{"bank.lr": 0.5}), EXTRACTOR, {"space": "full", "steps": 3}) != extractor
    assert stage_key(cfg.replace(**{"lora.rank": 7}), EXTRACTOR, {"space": "full", "steps": 3}) == extractor
    assert stage_key(cfg.replace(**{"extractor.steps": 99}), EXTRACTOR, {"space": "full", "steps": 3}) == extractor
    assert stage_key(cfg, EXTRACTOR, {"space": "w/o U", "steps": 3}) != extractor


def test_the_dncnn_reaches_a_key_only_when_it_is_the_residual_filter():
    assert _key(INPUT_CHAIN) == _key(INPUT_CHAIN, **{"dncnn.steps": 99})
    dncnn = {"fingerprint.residual_filter": "dncnn"}
    assert _key(INPUT_CHAIN, **dncnn) != _key(INPUT_CHAIN, **dncnn, **{"dncnn.steps": 99})
    assert _key(CLOSED_SET_EXTRACTOR, **dncnn) != _key(CLOSED_SET_EXTRACTOR, **dncnn, **{"dncnn.steps": 99})


def test_downstream_stages_follow_the_zoo_and_ffd_follows_every_bank_it_reads():
    assert _key(LORA_VARIANTS) != _key(LORA_VARIANTS, **{"zoo.width": 4})
    assert _key(ZOO) == _key(ZOO, **{"lora.rank": 2})
    assert _key(FFD_VECTORS) != _key(FFD_VECTORS, **{"bank.steps": 5})
    assert _key(FFD_VECTORS) == _key(FFD_VECTORS, **{"ffd.bootstrap": 999})


def _folder(root, content=b"abc"):
    (root / "set_a").mkdir(parents=True)
    (root / "set_a" / "x.png").write_bytes(content)
    (root / "set_b").mkdir()
    (root / "set_b" / "y.png").write_bytes(b"def")
    return root


def test_a_user_folder_counts_by_its_contents_not_its_path(tmp_path, data_dir):
    one = _folder(tmp_path / "one")
    same_elsewhere = _folder(tmp_path / "two")
    key = _key(BANK, **{"photos.real_image_dir": str(one)})
    assert key == _key(BANK, **{"photos.real_image_dir": str(same_elsewhere)})
    assert key != _key(BANK)
    (one / "set_a" / "x.png").write_bytes(b"abd")  # same size, other bytes
    assert _key(BANK, **{"photos.real_image_dir": str(one)}) != key
    assert _key(PHOTO_POOL, **{"photos.real_image_dir": str(one)}) != _key(PHOTO_POOL)
    (one / "set_b" / "z.png").write_bytes(b"")  # a new file
    assert _key(BANK, **{"photos.real_image_dir": str(one)}) != key
    with pytest.raises(FileNotFoundError, match="missing is not a folder; it was named as a source of real images"):
        folder_digest(tmp_path / "missing")


def test_hidden_files_and_folders_do_not_count_and_files_after_them_do(tmp_path, data_dir):
    root = _folder(tmp_path / "root")
    before = folder_digest(root)
    (root / ".DS_Store").write_text("ignored")
    (root / ".thumbs").mkdir()
    (root / ".thumbs" / "x.png").write_bytes(b"ignored")
    (root / "set_a" / ".x.png.swp").write_bytes(b"ignored")
    assert folder_digest(root) == before
    # a visible file sorted after the hidden ones still counts
    (root / "set_b" / "y.png").write_bytes(b"DEF")
    assert folder_digest(root) != before


def _age(path, seconds):
    """Set `path`'s modification time `seconds` into the past (outside the racy window)."""
    past = time.time() - seconds
    os.utime(path, (past, past))


def _count_reads(monkeypatch):
    reads = []
    real = keys._file_sha256
    monkeypatch.setattr(keys, "_file_sha256", lambda path: reads.append(path.name) or real(path))
    return reads


def test_file_hashes_are_remembered_by_size_and_mtime_so_a_folder_is_read_once(tmp_path, data_dir, monkeypatch):
    root = _folder(tmp_path / "root")
    for path in root.rglob("*.png"):
        _age(path, 60)
    reads, writes = _count_reads(monkeypatch), []
    real_write = keys.atomic.write_json
    monkeypatch.setattr(keys.atomic, "write_json", lambda path, obj: writes.append(path) or real_write(path, obj))
    first = folder_digest(root)
    assert sorted(reads) == ["x.png", "y.png"] and writes == [data_dir / "cache" / keys.DIGEST_MEMO]
    memo = json.loads(writes[0].read_text())
    x = root.resolve() / "set_a" / "x.png"
    assert memo[str(x)] == [3, x.stat().st_mtime_ns, hashlib.sha256(b"abc").hexdigest()]

    reads.clear()
    assert folder_digest(root) == first
    assert reads == [] and len(writes) == 1  # only stat-ed, and the memo is not rewritten

    (root / "set_a" / "x.png").write_bytes(b"abd")  # same size, new mtime
    _age(root / "set_a" / "x.png", 30)
    changed = folder_digest(root)
    assert reads == ["x.png"] and changed != first and len(writes) == 2
    assert json.loads(writes[1].read_text())[str(x)][2] == hashlib.sha256(b"abd").hexdigest()


def test_a_file_modified_within_the_racy_window_is_read_every_time_and_never_remembered(tmp_path, data_dir,
                                                                                         monkeypatch):
    root = _folder(tmp_path / "root")
    _age(root / "set_b" / "y.png", 60)
    reads = _count_reads(monkeypatch)
    folder_digest(root)
    folder_digest(root)
    assert reads == ["x.png", "y.png", "x.png"]  # x is fresh: read twice; y memoised after one read
    memo = json.loads((data_dir / "cache" / keys.DIGEST_MEMO).read_text())
    assert [Path(p).name for p in memo] == ["y.png"]


def test_a_corrupt_memo_is_ignored_and_replaced(tmp_path, data_dir):
    root = _folder(tmp_path / "root")
    for path in root.rglob("*.png"):
        _age(path, 60)
    expected = folder_digest(root)
    memo_path = data_dir / "cache" / keys.DIGEST_MEMO
    memo_path.write_text("{not json")
    assert folder_digest(root) == expected
    assert len(json.loads(memo_path.read_text())) == 2


def test_keys_are_stable_across_processes():
    code = ("from zsattr.core import config; from zsattr.core.keys import stage_key; "
            "from zsattr.extractor.stage import EXTRACTOR; "
            "print(stage_key(config.resolve('cpu'), EXTRACTOR, {'space': 'full', 'steps': 7}))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == stage_key(config.resolve("cpu"), EXTRACTOR, {"space": "full", "steps": 7})


def test_stage_inputs_name_every_part_the_key_hashes(tmp_path, data_dir):
    """The manifest shows these fields; renaming one would also change every key (every cache)."""
    cfg = config.resolve("smoke")
    upstream = Stage("upstream", 2)
    folder = _folder(tmp_path / "mine")
    stage = Stage("toy", 3, section="bank", settings=("seed",), reads=(upstream,),
                  folders=lambda cfg: {"mine": str(folder), "unset": None})
    inputs = keys.stage_inputs(cfg, stage, {"space": "full"})
    assert inputs == {"stage": "toy", "version": 3, "config": cfg.bank.keyed(), "settings": {"seed": cfg.seed},
                      "reads": {"upstream": stage_key(cfg, upstream)}, "folders": {"mine": folder_digest(folder)},
                      "extra": {"space": "full"}}
    assert keys.stage_inputs(cfg, Stage("bare", 1))["extra"] == {}


def test_a_key_is_pinned_and_ignores_the_order_of_its_inputs():
    """A key is sorted JSON under SHA-256, so it does not depend on dict order, takes values JSON
    cannot hold (paths) by their text, and stays the same across versions of the code: a change
    here invalidates every user's cache, so it must be deliberate."""
    inputs = {"stage": "toy", "version": 1, "extra": {"b": 2, "a": Path("/x")}}
    reordered = {"extra": {"a": Path("/x"), "b": 2}, "version": 1, "stage": "toy"}
    assert keys.key_of(inputs) == keys.key_of(reordered)
    expected = hashlib.sha256(b'{"extra": {"a": "/x", "b": 2}, "stage": "toy", "version": 1}').hexdigest()[:16]
    assert keys.key_of(inputs) == f"toy-{expected}"
