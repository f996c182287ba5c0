import subprocess
import sys

from zsattr.core import paths


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
