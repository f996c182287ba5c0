import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_requirements_are_exact_pins():
    lines = [l.split("#")[0].strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    lines = [l for l in lines if l]
    assert lines and all("==" in l for l in lines), lines
    pins = _pins(lines)
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    for needed in ["jupyterlab", "papermill", "numpy", "pandas", "seaborn", "scikit-learn", "nbval",
                   "scikit-image", "scipy", "tqdm", "pytest", "hypothesis"]:
        assert needed in pins, needed


def test_environment_yml_mirrors_requirements():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env_text = (ROOT / "environment.yml").read_text()
    env = _pins(env_text.split("- pip:")[1].splitlines())
    assert env == req
    assert re.search(r"^\s*-\s*python=3\.11\s*$", env_text, re.M)


def test_console_script_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "zsattr"
    assert project["scripts"]["zsattr"] == "zsattr.cli:main"


def test_make_help_lists_the_targets():
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for target in ["test", "reproduce", "smoke", "lab", "venv"]:
        assert re.search(rf"make {target}\s+\S", out), out


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_starts_with_the_two_commands_and_its_preset_table_matches_the_code():
    import io
    from contextlib import redirect_stdout

    from zsattr import cli

    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make reproduce" in first_block and "make test" in first_block
    buf = io.StringIO()
    with redirect_stdout(buf):
        cli.main(["presets", "--markdown"])
    table = readme.split("<!-- presets:start -->")[1].split("<!-- presets:end -->")[0].strip()
    assert table == buf.getvalue().strip()
