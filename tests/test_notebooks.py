"""The notebook contract, checked statically (nbval executes them separately)."""

import json
import re

import pytest

from zsattr.core.paths import notebooks_dir

NOTEBOOKS = sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name.startswith("00_")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_contract(path):
    cells = json.loads(path.read_text())["cells"]
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# "), "title card"
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"
    params = "".join(tagged[0]["source"])
    assert re.search(r'^scale: str = "smoke"\s+#', params, re.M), "typed, commented smoke default"
    code = [("".join(c["source"]), c) for c in cells if c["cell_type"] == "code"]
    for src, cell in code:
        assert not re.search(r"^\s*(def|class)\s", src, re.M), f"def/class in a notebook:\n{src}"
        assert "import *" not in src
        assert not cell.get("outputs") and cell.get("execution_count") is None, "committed with outputs"
    stem = path.stem
    assert f'report.start("{stem}"' in "\n".join(s for s, _ in code), "report named after the notebook"
    assert "run.finish(" in code[-1][0], "the closing cell writes the metrics"
    assert any("assert " in s for s, _ in code), "assertions on results"
