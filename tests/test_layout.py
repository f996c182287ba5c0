"""The house by stage: packages import only packages below them, imports sit at the head of
each file, and the tests mirror the packages."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "zsattr"
# Lowest first: a package may import itself and the packages before it, never one after it.
ORDER = ("core", "images", "fingerprint", "synthesis", "zoo", "extractor", "attribution", "experiments",
         "report", "cli")
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def _package_of(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0] if parts[0] in ORDER else None


def _imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, zsattr package) of every import of zsattr code in `path`, relative or absolute."""
    tree = ast.parse(path.read_text())
    here = path.relative_to(ROOT).with_suffix("").parts  # ("zsattr", "zoo", "build")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level]
                target = base + tuple(node.module.split(".")) if node.module else base
            else:
                target = tuple((node.module or "").split("."))
            if target[:1] != ("zsattr",):
                continue
            if len(target) == 1:  # from zsattr import x, y
                found += [(node.lineno, alias.name) for alias in node.names]
            else:
                found.append((node.lineno, target[1]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[1]) for alias in node.names
                      if alias.name.startswith("zsattr.")]
    return found


def test_every_folder_is_a_regular_package():
    """A folder without __init__.py is a namespace package: an editable install finds it, a
    regular install (setuptools' find) silently leaves it out."""
    folders = [p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"]
    assert [str(p) for p in folders if not (p / "__init__.py").is_file()] == []


def test_every_module_belongs_to_a_package_of_the_order():
    loose = [str(p.relative_to(PACKAGE)) for p in MODULES if _package_of(p) is None and p.name != "__init__.py"]
    assert not loose, f"modules outside the stage packages: {loose}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")} == set(ORDER) - {"cli"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_upward_import(path):
    package = _package_of(path)
    if package is None:
        return
    rank = ORDER.index(package)
    upward = [(line, name) for line, name in _imported_packages(path)
              if name in ORDER and ORDER.index(name) > rank]
    assert not upward, f"{path.relative_to(ROOT)} ({package}) imports higher packages: {upward}"


# The command line imports a command's stage when that command runs (its docstring says why);
# the package root imports the tool's Python API on first use, so `import zsattr` stays light.
LAZY_BY_DESIGN = {PACKAGE / "cli.py", PACKAGE / "__init__.py"}


@pytest.mark.parametrize("path", sorted(set(MODULES) - LAZY_BY_DESIGN), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_project_imports_sit_at_the_head_of_the_file(path):
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    hidden = [node.lineno for node in ast.walk(tree)
              if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top
              and (getattr(node, "level", 0) or "zsattr" in ast.unparse(node))]
    assert not hidden, f"{path.relative_to(ROOT)}: project imports inside functions at lines {hidden}"


def test_the_checker_sees_an_upward_import(tmp_path):
    fake = PACKAGE / "core" / "_layout_probe.py"
    try:
        fake.write_text("from ..zoo import registry\nfrom zsattr.report import plots\n")
        assert [name for _, name in _imported_packages(fake)] == ["zoo", "report"]
    finally:
        fake.unlink()


def test_tests_mirror_the_packages():
    folders = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and not p.name.startswith((".", "__"))}
    assert folders == set(ORDER) - {"cli"}
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert len(names) == len(set(names)), "test file names must be unique (pytest imports them by name)"
