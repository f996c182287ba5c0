"""The per-key build lock: two real processes building one artefact, locks left by dead
processes, locks held from another machine."""

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from zsattr.core import config
from zsattr.core.cache import ArtefactStore
from zsattr.core.keys import Stage, stage_key
from zsattr.core.lock import FileLock

SEEDED = Stage("demo", 1, settings=("seed",))

def _slow_build(root, me):
    """A builder that records each run and is slow enough for the other process to arrive meanwhile."""
    def build(out, work):
        with open(root / "runs.txt", "a") as fh:
            fh.write(me + "\n")
        (out / "part1.bin").write_bytes(b"a" * 1000)
        time.sleep(0.5)
        (out / "part2.bin").write_bytes(b"b" * 1000)
    return build


# The other process: the same builder; it says it is ready, waits for this one, then asks for
# the same artefact.
RACER = textwrap.dedent("""
    import logging, sys, time
    from pathlib import Path
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    from zsattr.core import config
    from zsattr.core.cache import ArtefactStore
    from zsattr.core.keys import Stage
    root = Path(sys.argv[1])

    def build(out, work):
        with open(root / "runs.txt", "a") as fh:
            fh.write("child\\n")
        (out / "part1.bin").write_bytes(b"a" * 1000)
        time.sleep(0.5)
        (out / "part2.bin").write_bytes(b"b" * 1000)

    (root / "ready-child").touch()
    while not (root / "ready-parent").exists():
        time.sleep(0.01)
    art = ArtefactStore(root / "cache").get_or_build(config.resolve("smoke"), Stage("demo", 1, settings=("seed",)),
                                                     build)
    print(art.path.name, art.built_now, (art.path / "part2.bin").read_bytes() == b"b" * 1000)
""")


@pytest.mark.slow
def test_two_processes_building_the_same_key_build_it_once(tmp_path, caplog):
    """This process and a child ask for one artefact at the same moment; whichever loses the
    race waits for the other and reads what it published."""
    child = subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    while not (tmp_path / "ready-child").exists():  # the child has imported everything
        assert child.poll() is None, child.communicate()
        time.sleep(0.01)
    (tmp_path / "ready-parent").touch()
    cfg = config.resolve("smoke")
    with caplog.at_level(logging.INFO, logger="zsattr.core"):
        mine = ArtefactStore(tmp_path / "cache").get_or_build(cfg, SEEDED, _slow_build(tmp_path, "parent"))
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    runs = (tmp_path / "runs.txt").read_text().split()
    assert len(runs) == 1, f"the builder ran {runs}"
    key, child_built, child_complete = out.split()
    assert key == mine.key == stage_key(cfg, SEEDED) and child_complete == "True"
    assert (child_built == "True") == (runs == ["child"]) and mine.built_now == (runs == ["parent"])
    assert (mine.path / "part2.bin").read_bytes() == b"b" * 1000
    builder, waiter_log = (child.pid, caplog.text) if runs == ["child"] else (os.getpid(), err)
    assert f"waiting for pid {builder} on {socket.gethostname()}" in waiter_log
    assert "built by another process meanwhile" in waiter_log
    cache = tmp_path / "cache"
    assert not list(cache.glob(".building-*")) and not list((cache / ".locks").iterdir())


def _lock_record(path, **fields):
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"host": socket.gethostname(), "pid": os.getpid(), "since": "2025-01-01T00:00:00+00:00",
              "token": "t", "flock": True, **fields}
    path.write_text(json.dumps(record))


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, caplog):
    store = ArtefactStore(tmp_path / "cache")
    cfg = config.resolve("smoke")
    key = stage_key(cfg, SEEDED)
    lock_path = store.lock(key).path
    lock_path.parent.mkdir()
    killed = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os
        from zsattr.core.lock import FileLock
        assert FileLock({str(lock_path)!r}).try_acquire()
        os._exit(9)  # killed while holding it: nothing releases the lock
    """)], stderr=subprocess.PIPE, text=True)
    assert killed.wait(timeout=60) == 9, killed.stderr.read()
    assert json.loads(lock_path.read_text())["pid"] == killed.pid
    with caplog.at_level(logging.WARNING, logger="zsattr.core.lock"):
        art = store.get_or_build(cfg, SEEDED, lambda out, work: (out / "a.txt").write_text("x"))
    assert art.built_now
    assert f"owner (pid {killed.pid} on {socket.gethostname()}" in caplog.text and "taking the lock over" in caplog.text
    assert not lock_path.exists()


def test_a_running_pid_without_its_flock_is_a_reused_pid_and_stale(tmp_path, caplog):
    path = tmp_path / "k.lock"
    _lock_record(path, pid=os.getpid())  # this process runs, but holds no flock on the file
    with caplog.at_level(logging.WARNING, logger="zsattr.core.lock"):
        lock = FileLock(path)
        assert lock.try_acquire()
    assert "taking the lock over" in caplog.text
    assert json.loads(path.read_text())["token"] != "t"
    lock.release()
    assert not path.exists()


def test_a_live_lock_is_never_broken(tmp_path):
    held = FileLock(tmp_path / "k.lock")
    assert held.try_acquire()
    other = FileLock(tmp_path / "k.lock", poll_seconds=0.05)
    assert held.is_held() and not other.is_stale() and not other.try_acquire()
    with pytest.raises(TimeoutError, match=f"pid {os.getpid()}"):
        other.acquire(timeout=0.2)
    held.release()
    assert other.try_acquire()
    other.release()


def test_a_lock_held_from_another_machine_is_waited_for_with_the_file_to_delete(tmp_path, caplog):
    path = tmp_path / "k.lock"
    _lock_record(path, host="elsewhere.example", pid=1)
    lock = FileLock(path, what="building k", poll_seconds=0.05)
    with caplog.at_level(logging.WARNING, logger="zsattr.core.lock"), pytest.raises(TimeoutError):
        lock.acquire(timeout=0.2)
    assert "building k: waiting for pid 1 on elsewhere.example" in caplog.text
    assert "if that process is gone, delete the lock file" in caplog.text and str(path) in caplog.text
    assert path.exists() and not lock.is_stale()


def test_a_holder_that_writes_its_record_while_waited_for_is_named_at_once(tmp_path, caplog):
    """The waiter may first see the lock file before its owner has written who it is; once the
    record is there it says whom it waits for at once, not only at the next periodic message
    (under load, a whole build could pass with the owner never named)."""
    import threading
    path = tmp_path / "k.lock"
    path.touch()  # created, record not yet written
    writer = threading.Timer(0.15, _lock_record, args=(path,), kwargs={"host": "elsewhere.example", "pid": 1})
    writer.start()
    lock = FileLock(path, what="building k", poll_seconds=0.05, log_every_seconds=60)
    with caplog.at_level(logging.WARNING, logger="zsattr.core.lock"), pytest.raises(TimeoutError):
        lock.acquire(timeout=0.6)
    writer.join()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2, said
    assert "waiting for a process that is still writing its record" in said[0]
    assert "building k: waiting for pid 1 on elsewhere.example" in said[1]
