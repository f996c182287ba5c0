import json

import numpy as np
import pandas as pd

from zsattr import report
from zsattr.core import config


def test_finish_writes_the_contract_fields(monkeypatch, tmp_path):
    monkeypatch.setenv("ZSATTR_ROOT", str(tmp_path))
    run = report.start("99_demo", config.resolve("smoke"))
    out = run.finish({"acc": np.float32(0.5), "per": {"a": np.array([1, 2])}, "bad": float("nan")})
    written = json.loads((tmp_path / "reports" / "smoke" / "99_demo.json").read_text())
    assert written == json.loads(json.dumps(out, default=str))
    for key in ("preset", "git_commit", "wall_time_s", "packages", "metrics"):
        assert key in written
    assert written["metrics"] == {"acc": 0.5, "per": {"a": [1, 2]}, "bad": None}


def test_tables_and_figures_carry_provenance(monkeypatch, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("ZSATTR_ROOT", str(tmp_path))
    run = report.start("99_demo", config.resolve("cpu"))
    df = pd.DataFrame({"x": [1.0, float("nan")], "name": ["a", "b"]}, index=pd.Index(["r1", "r2"], name="row"))
    md = run.save_table(df, "t")
    text = md.read_text()
    assert "| row | x | name |" in text and "| r2 | – | b |" in text and "preset=cpu" in text
    assert (tmp_path / "figures" / "t.csv").read_text().startswith("# preset=cpu")
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    png = run.save_figure(fig, "f")
    from PIL import Image

    assert Image.open(png).text["preset"] == "cpu"
    prov = json.loads((tmp_path / "figures" / "provenance.json").read_text())
    assert set(prov) == {"t.csv", "t.md", "f.png"} and prov["f.png"]["notebook"] == "99_demo"


def test_markdown_table_keeps_an_unnamed_index_but_not_a_range_index():
    labelled = pd.DataFrame({"v": [1.0]}, index=["K=0"])
    assert "| K=0 | 1.000 |" in report.markdown_table(labelled)
    plain = pd.DataFrame({"v": [1.0]})
    assert report.markdown_table(plain).splitlines()[0] == "| v |"
