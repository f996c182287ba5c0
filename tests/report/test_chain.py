import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from zsattr.report import chain as reproduce


def _notebook(path, body):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = new_code_cell('scale = "smoke"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell(body)]
    nbformat.write(nb, path)


@pytest.fixture
def chain(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "00_first.ipynb", "print('first', scale)")
    _notebook(nbs / "01_broken.ipynb", "print('partial output'); raise RuntimeError('boom')")
    _notebook(nbs / "02_never.ipynb", "print('never')")
    (nbs / "scratch.ipynb").write_text("{}")  # not numbered: not part of the chain
    return nbs


def test_select_by_number(chain):
    found = reproduce.discover(chain)
    assert [p.name for p in found] == ["00_first.ipynb", "01_broken.ipynb", "02_never.ipynb"]
    assert [p.name for p in reproduce.select(found, only=["02"])] == ["02_never.ipynb"]
    assert [p.name for p in reproduce.select(found, start="01")] == ["01_broken.ipynb", "02_never.ipynb"]
    with pytest.raises(ValueError, match="no notebook numbered"):
        reproduce.select(found, only=["07"])


@pytest.mark.slow
def test_chain_stops_at_first_failure_and_keeps_the_partial_notebook(chain, tmp_path):
    out = tmp_path / "reports"
    results = reproduce.run_chain("cpu", folder=chain, out_dir=out)
    assert [(r.notebook, r.status) for r in results] == [("00_first", "ok"), ("01_broken", "failed")]
    assert "boom" in results[1].error
    executed = nbformat.read(out / "00_first.ipynb", as_version=4)
    assert "first cpu" in json.dumps(executed.cells[-1].outputs)  # the preset was injected
    partial = nbformat.read(out / "01_broken.ipynb", as_version=4)
    assert "partial output" in json.dumps(partial.cells)
    assert not (out / "02_never.ipynb").exists()
    timings = json.loads((out / "timings.json").read_text())
    assert timings["preset"] == "cpu" and set(timings["notebooks"]) == {"00_first", "01_broken"}
    assert timings["notebooks"]["01_broken"]["status"] == "failed"
    assert timings["notebooks"]["00_first"]["seconds"] > 0

    reproduce.run_chain("cpu", only=["00"], folder=chain, out_dir=out)  # a rerun keeps other entries
    assert set(json.loads((out / "timings.json").read_text())["notebooks"]) == {"00_first", "01_broken"}


@pytest.mark.slow
def test_executed_notebooks_keep_their_figures_and_take_parameters(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # as the Makefile sets it: the chain must still show figures
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "00_plot.ipynb", "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
                                      "ax.plot([0, 1], [1, 0])\nprint('folder', folder)")
    nb = nbformat.read(nbs / "00_plot.ipynb", as_version=4)
    nb.cells[0].source += '\nfolder = ""'
    nbformat.write(nb, nbs / "00_plot.ipynb")
    out = tmp_path / "reports"
    [result] = reproduce.run_chain("smoke", folder=nbs, out_dir=out, parameters={"folder": "/my/images"})
    assert result.status == "ok", result.error
    outputs = nbformat.read(out / "00_plot.ipynb", as_version=4).cells[-1].outputs
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert "folder /my/images" in json.dumps(outputs)
