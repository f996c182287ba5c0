import numpy as np
import pandas as pd
import pytest

from zsattr.experiments import zero_shot


def test_headline_is_ours_minus_the_best_baseline_in_points():
    summary = pd.DataFrame({"method": ["ours (linear)", "ours (resnet) #0", "ours (resnet) #1", "spectrum_correlation",
                                       "closed_set #0", "closed_set #1", "random_init #0", "ours [w/o U, 5 steps] #0"],
                            "held_out_top1": [0.80, 0.60, 0.70, 0.70, 0.70, 0.80, 0.30, 0.99],
                            "accuracy_calibrated": [0.90, 0.5, 0.5, 0.92, 0.60, 0.60, 0.50, 0.99]})
    head = zero_shot.headline(summary, ours="ours (linear)")
    assert head["headline_gap_identification_points"] == pytest.approx(5.0)  # closed set: mean of 0.7, 0.8
    assert head["best_baseline_identification"] == "closed_set"
    assert head["headline_gap_verification_points"] == pytest.approx(-2.0)
    assert head["best_baseline_verification"] == "spectrum_correlation"  # ablations of ours never count
    resnet = zero_shot.headline(summary, ours="ours (resnet)")
    assert resnet["headline_gap_identification_points"] == pytest.approx(-10.0)


def test_by_family_gives_mean_and_sd_over_training_seeds():
    summary = pd.DataFrame({"method": ["a #0", "a #1", "a #2", "b"], "held_out_top1": [0.5, 0.7, 0.9, 0.4],
                            "top1_mean": [1, 1, 1, 1], "accuracy_calibrated": [0, 0, 0, 0], "roc_auc": [0, 0, 0, 0]})
    fam = zero_shot.by_family(summary).set_index("family")
    assert fam.loc["a", "held_out_top1"] == pytest.approx(0.7)
    assert fam.loc["a", "held_out_top1_sd"] == pytest.approx(0.2)
    assert fam.loc["a", "runs"] == 3 and fam.loc["b", "runs"] == 1 and pd.isna(fam.loc["b", "held_out_top1_sd"])


def test_subset_table_averages_over_models_then_over_training_runs():
    per_model = pd.DataFrame({"model": ["a", "b", "c"], "group": ["x"] * 3, "m #0": [1.0, 0.0, 0.5],
                              "m #1": [0.0, 0.0, 0.5], "s": [1.0, 1.0, 0.0]})
    table = zero_shot.subset_table(per_model, {"a and b": ["a", "b"], "empty": []})
    assert list(table.index) == ["a and b"] and table.loc["a and b", "models"] == 2
    assert table.loc["a and b", "m"] == pytest.approx(0.25)  # runs: 0.5 and 0.0
    assert table.loc["a and b", "m sd"] == pytest.approx(np.std([0.5, 0.0], ddof=1))
    assert table.loc["a and b", "s"] == 1.0 and np.isnan(table.loc["a and b", "s sd"])
