"""Who made an artefact: git commit, package versions, time. Used by cache manifests,
notebook reports and figure sidecars."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
from functools import lru_cache

from .. import __version__
from .paths import repo_root

TRACKED_PACKAGES = (
    "torch", "torchvision", "numpy", "scipy", "pandas", "scikit-learn", "scikit-image",
    "matplotlib", "seaborn", "pillow", "papermill",
)


@lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD's hash, suffixed '+dirty' when tracked source files differ; 'unknown' outside git.

    The run's own outputs (figures/, reports/) do not count: a `cpu` run rewrites the committed
    figures, and that must not mark the commit that produced them as dirty. Nor does prose
    (`*.md`, e.g. the README's results being written while the chain runs): it computes nothing.
    """
    try:
        root = repo_root()
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":!figures", ":!reports", ":!*.md"],
                               cwd=root, capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError, RuntimeError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "zsattr": __version__}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
