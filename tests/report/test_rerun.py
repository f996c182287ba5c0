"""`zsattr compare-runs`: a rerun's results set against a reference run's stated intervals."""

import json

import numpy as np
import pytest

from zsattr.cli import main
from zsattr.report import rerun


def _write(folder, notebook, metrics, training_seeds=3):
    folder.mkdir(parents=True, exist_ok=True)
    report = {"config": {"extractor": {"training_seeds": training_seeds}}, "metrics": metrics}
    (folder / f"{notebook}.json").write_text(json.dumps(report))


def _lastblock(flip_k2, per_seed_sd=0.05, seeds=4):
    stat = {"mean": flip_k2, "sd": per_seed_sd, "per_seed": [flip_k2] * seeds}
    return {"pair_seeds": seeds, "test1_accuracy": {"nearest": {"mean": 1.0, "sd": 0.0, "per_seed": [1.0] * seeds}},
            "flip_rate": {"nearest": {"2": stat}}, "control_flip_rate": {"nearest": {"mean": 0.0, "sd": None}}}


def _zero_shot(top1, sd):
    return {"identification": {"ours (linear)": {"held_out_top1": top1, "held_out_top1_sd": sd},
                               "spectrum_correlation": {"held_out_top1": 0.7, "held_out_top1_sd": None}},
            "verification_unseen_accuracy": {"ours (linear)": 0.87}, "verification_unseen_accuracy_sd": {}}


def test_inside_and_outside_follow_the_rerun_interval(tmp_path):
    ref, new = tmp_path / "ref", tmp_path / "new"
    _write(ref, "01_last_block", _lastblock(0.80))
    half = 3.1824 * 0.05 * np.sqrt(2 / 4)  # t(0.975, 3 df) * sd * sqrt(2 / n): 0.1125
    _write(new, "01_last_block", _lastblock(0.80 + half - 0.001))
    _write(ref, "05_zero_shot", _zero_shot(0.85, 0.01))
    _write(new, "05_zero_shot", _zero_shot(0.85 - 0.04, 0.01))  # 4 sd away; rerun95 = 0.0351 at 3 seeds
    table = rerun.compare(ref, new).set_index("result")
    row = table.loc["flip rate, nearest, last 2"]
    assert row["rerun95"] == pytest.approx(half, rel=1e-4) and row["verdict"] == "inside"
    assert table.loc["flip rate, nearest, first block (control)", "verdict"] == "no spread stated"
    assert table.loc["top-1 unseen, ours (linear)", "verdict"] == "outside"
    assert table.loc["top-1 unseen, ours (linear)", "difference"] == pytest.approx(-0.04)
    assert table.loc["top-1 unseen, spectrum_correlation", "verdict"] == "no spread stated"
    assert "verification unseen, ours (linear)" in table.index  # no sd: a row without an interval
    assert rerun.verdict_counts(table)["outside"] == 1

    _write(new, "01_last_block", _lastblock(0.80 + half + 0.001))
    assert rerun.compare(ref, new).set_index("result").loc["flip rate, nearest, last 2", "verdict"] == "outside"


def test_cli_exit_codes(tmp_path, capsys):
    ref, new = tmp_path / "ref", tmp_path / "new"
    _write(ref, "05_zero_shot", _zero_shot(0.85, 0.01))
    _write(new, "05_zero_shot", _zero_shot(0.851, 0.01))
    assert main(["compare-runs", str(ref), str(new)]) == 0
    assert "inside" in capsys.readouterr().out
    _write(new, "05_zero_shot", _zero_shot(0.70, 0.01))
    assert main(["compare-runs", str(ref), str(new)]) == 1
    assert main(["compare-runs", str(ref), str(tmp_path / "missing")]) == 2
    assert "no notebook report found" in capsys.readouterr().err
    (new / "05_zero_shot.json").write_text("{not json")
    assert main(["compare-runs", str(ref), str(new)]) == 2
    assert "is not a notebook report" in capsys.readouterr().err
