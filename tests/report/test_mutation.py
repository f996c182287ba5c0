"""The mutation score reader: mutmut's exit codes become killed / survived counts per module."""

import json

import pytest

from zsattr.report import mutation


def _write_meta(root, relative, codes):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"exit_code_by_key": codes, "durations_by_key": {}}))
    return path


def test_exit_codes_are_counted_by_kind_and_the_score_is_noticed_over_checked(tmp_path):
    _write_meta(tmp_path, "zsattr/core/keys.py.meta", {
        "zsattr.core.keys.x_a__mutmut_1": 1,      # a test failed
        "zsattr.core.keys.x_a__mutmut_2": 1,
        "zsattr.core.keys.x_a__mutmut_3": 36,     # ran past the time limit: noticed
        "zsattr.core.keys.x_a__mutmut_4": 0,      # every test passed
        "zsattr.core.keys.x_b__mutmut_1": 33,     # no test reaches it: counts as survived
        "zsattr.core.keys.x_b__mutmut_2": 34,     # skipped: out of the score
        "zsattr.core.keys.x_b__mutmut_3": None,   # the run stopped before it
        "zsattr.core.keys.x_b__mutmut_4": -11,    # mutmut calls it suspicious: not a kill
    })
    [score] = mutation.read_scores(tmp_path)
    assert score.module == "zsattr.core.keys"
    assert (score.killed, score.timeout, score.skipped) == (2, 1, 1)
    assert score.survived == ["zsattr.core.keys.x_a__mutmut_4", "zsattr.core.keys.x_b__mutmut_4"]
    assert score.no_tests == ["zsattr.core.keys.x_b__mutmut_1"]
    assert score.not_checked == ["zsattr.core.keys.x_b__mutmut_3"]
    assert score.checked == 6
    assert score.score == pytest.approx(100 * 3 / 6)


def test_main_passes_at_the_required_score_and_fails_below_it(tmp_path, capsys):
    codes = {f"zsattr.attribution.metrics.x_f__mutmut_{i}": 1 for i in range(9)}
    codes["zsattr.attribution.metrics.x_f__mutmut_9"] = 0
    _write_meta(tmp_path, "zsattr/attribution/metrics.py.meta", codes)
    assert mutation.main(["--mutants", str(tmp_path), "--require", "90"]) == 0
    out = capsys.readouterr().out
    assert "zsattr.attribution.metrics" in out and "90.0" in out
    assert "survived: zsattr.attribution.metrics.x_f__mutmut_9" in out
    assert mutation.main(["--mutants", str(tmp_path), "--require", "90.1"]) == 1
    assert "below 90.1 %: zsattr.attribution.metrics" in capsys.readouterr().err


def test_an_unfinished_run_fails_even_at_a_full_score(tmp_path, capsys):
    _write_meta(tmp_path, "zsattr/core/keys.py.meta", {"zsattr.core.keys.x_a__mutmut_1": 1,
                                                        "zsattr.core.keys.x_a__mutmut_2": None})
    assert mutation.main(["--mutants", str(tmp_path), "--require", "0"]) == 1
    assert "1 mutants were never checked" in capsys.readouterr().err


def test_no_run_to_read_is_a_one_line_error(tmp_path, capsys):
    assert mutation.main(["--mutants", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make mutation" in err
