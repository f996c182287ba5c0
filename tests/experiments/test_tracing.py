import numpy as np
import pytest

from zsattr.attribution import protocols
from zsattr.experiments import tracing


def _clusters(n_models=4, per=12, dim=16, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_models, dim))
    labels = np.repeat(np.arange(n_models), per)
    return centres[labels] + spread * rng.normal(size=(len(labels), dim)), labels, centres


def test_variants_near_their_base_are_traced_and_verified():
    zoo, labels, centres = _clusters()
    rng = np.random.default_rng(1)
    bases = np.array([0, 0, 2, 2] * 5)
    variant_ids = np.array([0, 1, 2, 3] * 5)
    variants = centres[bases] + 0.2 * rng.normal(size=(len(bases), 16))  # moved, still closest to base
    pairs = protocols.make_pairs(labels, 60, seed=0)
    summary, table = tracing.tracing_report(zoo, labels, pairs, variants, bases, variant_ids,
                                            ["a", "b", "c", "d"], k=3, draws=2, seed=0)
    assert summary["lora_tracing_accuracy"] == 1.0 and summary["variant_base_roc_auc"] == 1.0
    assert list(table["traced_to_base"]) == [1.0] * 4 and list(table["most_predicted"]) == [0, 0, 2, 2]


def test_variants_that_moved_to_another_model_are_not_traced():
    zoo, labels, centres = _clusters()
    bases = np.zeros(10, dtype=int)
    variants = centres[[3] * 10]  # variant images look like model 3, not like base 0
    preds = tracing.trace(zoo, labels, variants, bases, k=3, draws=3, seed=0)
    assert preds.shape == (3, 10) and (preds == 3).all()
    with pytest.raises(ValueError, match="base"):
        tracing.trace(zoo, labels, variants, np.full(10, 9), k=3, draws=1, seed=0)


def test_base_pairs_have_one_positive_and_one_negative_per_variant_image():
    labels = np.repeat(np.arange(3), 5)
    pairs = tracing.base_pairs(labels, np.array([1, 2, 0]), seed=4)
    assert pairs.shape == (6, 3)
    for v, z, same in pairs:
        assert (labels[z] == [1, 2, 0][v]) == bool(same)
    assert np.array_equal(pairs, tracing.base_pairs(labels, np.array([1, 2, 0]), seed=4))
