import subprocess

import pytest

from zsattr.core import provenance


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})


@pytest.fixture
def repo(tmp_path, monkeypatch):
    for name, text in (("code.py", "x = 1\n"), ("README.md", "# r\n"), ("figures/t.md", "a\n"),
                       ("notebooks/n.ipynb", "{}\n")):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "init")
    monkeypatch.setenv("ZSATTR_ROOT", str(tmp_path))
    provenance.git_commit.cache_clear()
    yield tmp_path
    provenance.git_commit.cache_clear()


def _commit_after_editing(root, name):
    (root / name).write_text((root / name).read_text() + "changed\n")
    provenance.git_commit.cache_clear()
    return provenance.git_commit()


def test_a_clean_tree_gives_the_bare_hash(repo):
    commit = provenance.git_commit()
    assert len(commit) == 40 and not commit.endswith("+dirty")


@pytest.mark.parametrize("name", ["README.md", "figures/t.md"])
def test_prose_and_the_runs_own_outputs_do_not_make_the_commit_dirty(repo, name):
    assert not _commit_after_editing(repo, name).endswith("+dirty")


@pytest.mark.parametrize("name", ["code.py", "notebooks/n.ipynb"])
def test_code_and_notebooks_do(repo, name):
    assert _commit_after_editing(repo, name).endswith("+dirty")
