"""Properties of the metrics and protocols that must hold for any input (hypothesis draws the inputs)."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from zsattr.attribution import metrics as am
from zsattr.attribution import protocols
from zsattr.attribution.gallery import Gallery

# Few examples, no deadline; derandomised and without an example database, so every run draws the same cases.
FAST = settings(max_examples=40, deadline=None, derandomize=True, database=None)
finite = st.floats(-10, 10, allow_nan=False, width=64)


@st.composite
def scored_queries(draw, distinct=False):
    """(scores (Q, G), index of each query's true model), G >= 2; `distinct`: no two scores equal."""
    q, g = draw(st.integers(1, 12)), draw(st.integers(2, 6))
    scores = draw(arrays(np.float64, (q, g), elements=finite, unique=distinct))
    return scores, draw(arrays(np.int64, q, elements=st.integers(0, g - 1)))


@FAST
@given(scored_queries(distinct=True), st.randoms(use_true_random=False))
def test_identification_metrics_do_not_depend_on_the_order_of_the_models(data, random):
    scores, true = data
    g = scores.shape[1]
    order = np.array(random.sample(range(g), g))  # column j of the new table is old model order[j]
    new_index = np.argsort(order)
    shuffled, shuffled_true = scores[:, order], new_index[true]
    for k in range(1, g + 1):
        assert am.topk_accuracy(shuffled, shuffled_true, k) == am.topk_accuracy(scores, true, k)
    pred, shuffled_pred = scores.argmax(1), shuffled.argmax(1)
    assert am.macro_f1(shuffled_true, shuffled_pred, g) == pytest.approx(am.macro_f1(true, pred, g), abs=1e-12)
    np.testing.assert_array_equal(am.confusion_matrix(shuffled_true, shuffled_pred, g)[np.ix_(new_index, new_index)],
                                  am.confusion_matrix(true, pred, g))


@FAST
@given(scored_queries())
def test_top_k_accuracy_rises_with_k_to_one(data):
    scores, true = data
    accuracies = [am.topk_accuracy(scores, true, k) for k in range(1, scores.shape[1] + 1)]
    assert all(a <= b for a, b in zip(accuracies, accuracies[1:])) and accuracies[-1] == 1.0


@FAST
@given(arrays(np.float64, st.integers(1, 20), elements=finite), arrays(np.float64, st.integers(1, 20), elements=finite),
       st.floats(0.0, 1.0))
def test_perfectly_separated_scores_give_auc_one_and_eer_zero(high, low, far):
    positives = high - high.min() + low.max() + 1.0  # every positive above every negative
    s = np.r_[positives, low]
    p = np.r_[np.ones(len(positives), bool), np.zeros(len(low), bool)]
    assert am.roc_auc(s, p) == 1.0 and am.equal_error_rate(s, p) == 0.0 and am.tar_at_far(s, p, far) == 1.0
    assert am.accuracy_at(s, p, am.best_threshold(s, p)) == 1.0


@st.composite
def fingerprints(draw):
    """One fingerprint per model, no two pointing the same way (cosine below 0.999)."""
    n, d = draw(st.integers(2, 6)), draw(st.integers(2, 8))
    x = draw(arrays(np.float64, (n, d), elements=finite))
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
    cos = unit @ unit.T
    np.fill_diagonal(cos, 0.0)
    assume((np.linalg.norm(x, axis=1) > 1e-3).all() and cos.max() < 0.999)
    return x


@FAST
@given(fingerprints(), st.randoms(use_true_random=False))
def test_a_gallery_enrolled_from_the_queries_identifies_them_in_any_enrolment_order(x, random):
    names = [f"m{i}" for i in range(len(x))]
    order = random.sample(range(len(x)), len(x))
    gallery = Gallery.from_enrolment({names[i]: x[i:i + 1] for i in order}, calibrate=False)
    answers = gallery.identify(x)
    assert [a[0][0] for a in answers] == names
    assert all(abs(a[0][1] - 1.0) < 1e-9 for a in answers)
    labels = np.arange(len(x))
    assert protocols.identification(np.vstack([x, x]), np.r_[labels, labels], k=1, draws=2).top1.tolist() == [1.0, 1.0]
