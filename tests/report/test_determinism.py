"""The determinism check's comparison: exact on results, blind only to wall-clock entries."""

import json

from zsattr.report import determinism


def test_identical_metrics_have_no_differences():
    metrics = {"top1": 0.75, "per_seed": [0.5, 1.0], "nested": {"auc": float("nan"), "n": 3}}
    assert determinism.differences(metrics, json.loads(json.dumps(metrics))) == []


def test_a_changed_value_deep_inside_is_reported_with_its_path():
    first = {"flip_rate": {"nearest": {"2": {"per_seed": [0.9, 0.8]}}}}
    second = {"flip_rate": {"nearest": {"2": {"per_seed": [0.9, 0.8000001]}}}}
    (line,) = determinism.differences(first, second)
    assert line.startswith("flip_rate.nearest.2.per_seed[1]: 0.8 != 0.8000001")


def test_missing_entries_and_type_changes_are_differences():
    assert determinism.differences({"a": 1, "b": 2}, {"a": 1}) == ["b: 2 != '<missing>'"]
    assert determinism.differences({"a": 1}, {"a": 1.0}) == ["a: 1 != 1.0"]
    assert determinism.differences({"a": [1, 2]}, {"a": [1]}) == ["a[1]: 2 != '<missing>'"]


def test_wall_clock_entries_are_ignored_and_nothing_else():
    first = {"train_seconds": 1.0, "samples_per_second": 9.0, "synthesis_speedup": 3.0,
             "equal_time_comparison": {"top1": 0.5}, "per_seed": [1.0]}
    second = {"train_seconds": 2.0, "samples_per_second": 7.0, "synthesis_speedup": 2.0,
              "equal_time_comparison": {"top1": 0.6}, "per_seed": [2.0]}
    assert determinism.differences(first, second) == ["per_seed[0]: 1.0 != 2.0"]


def test_compare_reports_reads_every_report_but_the_timings(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder, value in ((first, 1.0), (second, 2.0)):
        folder.mkdir()
        (folder / "01_x.json").write_text(json.dumps({"metrics": {"m": value}}))
        (folder / "timings.json").write_text(json.dumps({"total_seconds": value}))
    assert determinism.compare_reports(first, second, ["01"]) == {"01_x.json": ["m: 1.0 != 2.0"]}


def test_compare_reports_takes_only_the_chosen_notebooks_reports(tmp_path):
    """An --against folder (a whole nbval run) holds every notebook's report; the second run has
    only the chosen ones, and a report of another notebook is not a difference."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    for name in ("01_x.json", "02_y.json", "05_z.json"):
        (first / name).write_text(json.dumps({"metrics": {"m": 1.0}}))
    (second / "01_x.json").write_text(json.dumps({"metrics": {"m": 1.0}}))
    (second / "02_y.json").write_text(json.dumps({"metrics": {"m": 3.0}}))
    assert determinism.compare_reports(first, second, ["01", "02"]) == {"01_x.json": [],
                                                                        "02_y.json": ["m: 1.0 != 3.0"]}


def test_against_a_missing_folder_is_a_one_line_error(tmp_path, capsys):
    assert determinism.main(["--only", "01", "--against", str(tmp_path / "nothing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
