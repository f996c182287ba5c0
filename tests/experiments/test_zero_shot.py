import pandas as pd
import pytest

from zsattr.experiments import zero_shot


def test_headline_is_ours_minus_the_best_baseline_in_points():
    summary = pd.DataFrame({"method": ["ours", "spectrum_correlation", "closed_set", "random_init", "ours [w/o U]"],
                            "held_out_top1": [0.80, 0.70, 0.75, 0.30, 0.99],
                            "accuracy_calibrated": [0.90, 0.92, 0.60, 0.50, 0.99]})
    head = zero_shot.headline(summary)
    assert head["headline_gap_identification_points"] == pytest.approx(5.0)
    assert head["best_baseline_identification"] == "closed_set"
    assert head["headline_gap_verification_points"] == pytest.approx(-2.0)
    assert head["best_baseline_verification"] == "spectrum_correlation"  # ablations of ours never count
