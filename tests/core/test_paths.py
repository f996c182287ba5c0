import subprocess
import sys
from pathlib import Path

import pytest

from zsattr.core import config, paths
from zsattr.core.cache import ArtefactStore
from zsattr.core.keys import Stage


def test_root_is_found_from_any_working_directory(tmp_path):
    code = "from zsattr.core import paths; print(paths.repo_root())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == str(paths.repo_root())
    assert (paths.repo_root() / "pyproject.toml").is_file()


def test_data_dir_follows_the_environment_variable(data_dir):
    assert paths.data_dir() == data_dir.resolve()
    assert paths.cache_dir() == data_dir.resolve() / "cache"


def test_figures_of_the_cpu_run_are_the_committed_ones():
    assert paths.figures_dir("cpu") == paths.repo_root() / "figures"
    assert paths.figures_dir("smoke") == paths.repo_root() / "reports" / "smoke" / "figures"


def test_a_data_dir_that_is_a_file_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "data.txt"
    blocker.write_text("not a folder")
    for value in (blocker, blocker / "sub"):
        monkeypatch.setenv("ZSATTR_DATA_DIR", str(value))
        with pytest.raises(paths.DataDirError) as info:
            paths.cache_dir()
        message = str(info.value)
        assert f"{blocker} is a file, not a folder" in message and "ZSATTR_DATA_DIR" in message
        assert "\n" not in message


@pytest.fixture
def read_only_dir(tmp_path):
    """An existing folder this process cannot create anything in. root ignores permission bits,
    so as root the test uses sysfs, which refuses new entries even to root."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    candidates = (folder, Path("/sys"))
    try:
        for candidate in candidates:
            try:
                (candidate / ".zsattr-probe").mkdir()
            except OSError:
                yield candidate
                return
            (candidate / ".zsattr-probe").rmdir()
        pytest.skip("no folder here refuses writes to this user")
    finally:
        folder.chmod(0o755)


def test_a_read_only_data_dir_is_a_clear_error(read_only_dir, monkeypatch):
    monkeypatch.setenv("ZSATTR_DATA_DIR", str(read_only_dir))
    with pytest.raises(paths.DataDirError, match=f"{read_only_dir} is not writable .*cache.*ZSATTR_DATA_DIR"):
        paths.cache_dir()
    monkeypatch.setenv("ZSATTR_DATA_DIR", str(read_only_dir / "data"))
    with pytest.raises(paths.DataDirError, match=f"{read_only_dir} is not writable"):
        paths.data_dir()
    # A cache that exists but is read-only: a build says so instead of a PermissionError.
    with pytest.raises(paths.DataDirError, match=f"{read_only_dir} is not writable"):
        ArtefactStore(read_only_dir).get_or_build(config.resolve("smoke"), Stage("demo", 1), lambda out, work: None)
