"""P x K batch sources and the held-out split (zsattr.extractor.data).

The sources are checked against a stand-in bank whose model i adds 100 * (i + 1) to its input,
on crops where crop j is filled with the value j: every pixel of a batch then says which model
(hundreds) and which crop (units) produced it. The real bank is exercised in
test_extractor_stage.py.
"""

import numpy as np
import pytest
import torch

from zsattr.extractor.data import (
    CachedPoolSource,
    HoldoutSplit,
    ImageSetSource,
    SyntheticSource,
    grouped_classes,
    holdout_split,
)


class OffsetBank:
    """Model i adds 100 * (i + 1) to its images; `entries` as a Bank's: (code, seed)."""

    def __init__(self, entries):
        self.entries = entries

    def apply_pk(self, indices, images):
        assert images.dim() == 5 and images.shape[0] == len(indices)
        return images + torch.tensor([100.0 * (i + 1) for i in indices]).view(-1, 1, 1, 1, 1)


def negate(x):
    """An input chain that leaves a mark: the source must apply it to every row."""
    return -x


def numbered_crops(n, size=4):
    return torch.arange(n, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 3, size, size).clone()


def decode(x):
    """(model index, crop index) of each row of a batch made through `negate` by an OffsetBank."""
    value = (-x[:, 0, 0, 0]).round().long()
    assert torch.equal(-x, (-x)[:, :1, :1, :1].expand_as(x)), "a row mixes values"
    return (value // 100 - 1).tolist(), (value % 100).tolist()


SIX_CODES_TWO_SEEDS = [(code, seed) for code in "abcdef" for seed in (0, 1)]


def check_batch(x, y, indices, p, k, n_crops):
    """Rows: P distinct classes, K consecutive rows each, made by model indices[label] from K
    distinct crops."""
    assert x.shape == (p * k, 3, 4, 4) and y.dtype == torch.int64
    classes = y[::k]
    assert torch.equal(y, classes.repeat_interleave(k)) and len(set(classes.tolist())) == p
    models, crops = decode(x)
    assert models == [indices[c] for c in y.tolist()]
    for row in range(p):
        shown = crops[row * k:(row + 1) * k]
        assert len(set(shown)) == k and all(0 <= c < n_crops for c in shown)


# --- SyntheticSource ---------------------------------------------------------------------------

def test_synthetic_rows_are_the_labelled_model_on_k_distinct_crops():
    bank = OffsetBank(SIX_CODES_TWO_SEEDS)
    indices = [5, 0, 7, 2, 9]  # class c is bank model indices[c], not model c
    source = SyntheticSource(bank, indices, numbered_crops(6), negate)
    assert source.n_classes == 5
    for step in range(10):
        x, y = source.batch(np.random.default_rng(step), 3, 4)
        check_batch(x, y, indices, 3, 4, 6)
    x, y = source.batch(np.random.default_rng(0), 2, 6)  # K = every crop: each exactly once
    assert sorted(decode(x)[1][:6]) == list(range(6)) and sorted(decode(x)[1][6:]) == list(range(6))
    again = source.batch(np.random.default_rng(0), 2, 6)
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])


def test_synthetic_p_above_the_number_of_models_gives_each_model_once():
    source = SyntheticSource(OffsetBank(SIX_CODES_TWO_SEEDS), [3, 8, 1], numbered_crops(4), negate)
    x, y = source.batch(np.random.default_rng(1), 10, 2)
    check_batch(x, y, [3, 8, 1], 3, 2, 4)
    assert sorted(y[::2].tolist()) == [0, 1, 2]


def test_grouped_synthetic_batches_pair_seeds_of_one_architecture_and_uniform_ones_only_by_chance():
    bank = OffsetBank(SIX_CODES_TWO_SEEDS)
    indices = [11, 0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8]  # seeds of a code far apart in class order
    grouped = SyntheticSource(bank, indices, numbered_crops(3), negate, seeds_per_code=2)
    for step in range(20):
        x, y = grouped.batch(np.random.default_rng([1, step]), 4, 2)
        check_batch(x, y, indices, 4, 2, 3)
        codes = [bank.entries[indices[c]][0] for c in y[::2].tolist()]
        assert sorted(codes.count(c) for c in set(codes)) == [2, 2]  # two codes, both their seeds
    uniform = SyntheticSource(bank, indices, numbered_crops(3), negate)  # the default: seeds_per_code=1
    paired = 0
    for step in range(50):
        x, y = uniform.batch(np.random.default_rng([1, step]), 4, 2)
        codes = [bank.entries[indices[c]][0] for c in y[::2].tolist()]
        paired += len(set(codes)) < 4
    assert 0 < paired < 50  # P(no pair among 4 of 12) = 0.48


def test_synthetic_source_needs_two_models_rgb_crops_and_a_positive_group_size():
    bank, crops = OffsetBank(SIX_CODES_TWO_SEEDS), numbered_crops(5)
    x, y = SyntheticSource(bank, [4, 9], crops, negate).batch(np.random.default_rng(0), 2, 5)
    check_batch(x, y, [4, 9], 2, 5, 5)  # two models are enough
    with pytest.raises(ValueError, match=r"^training needs at least 2 synthetic models, got 1$"):
        SyntheticSource(bank, [4], crops, negate)
    with pytest.raises(ValueError, match=r"^crops must be \(N, 3, H, W\), got \(5, 1, 4, 4\)$"):
        SyntheticSource(bank, [4, 9], crops[:, :1], negate)
    with pytest.raises(ValueError, match=r"^crops must be \(N, 3, H, W\), got \(5, 3, 4\)$"):
        SyntheticSource(bank, [4, 9], crops[..., 0], negate)
    with pytest.raises(ValueError, match=r"^seeds_per_code must be >= 1, got 0$"):
        SyntheticSource(bank, [4, 9], crops, negate, seeds_per_code=0)


# --- CachedPoolSource --------------------------------------------------------------------------

def test_cached_pool_holds_distinct_crops_of_each_model_through_the_chain():
    indices = [7, 2, 10]
    source = SyntheticSource(OffsetBank(SIX_CODES_TWO_SEEDS), indices, numbered_crops(6), negate)
    pool = CachedPoolSource(source, per_model=4)
    assert pool.pool.shape == (3, 4, 3, 4, 4) and pool.n_classes == 3
    assert pool.nbytes == 3 * 4 * 3 * 4 * 4 * 4  # float32
    for c in range(3):
        models, crops = decode(pool.pool[c])
        assert models == [indices[c]] * 4 and len(set(crops)) == 4
    # deterministic in its seed, 0 by default
    assert torch.equal(pool.pool, CachedPoolSource(source, per_model=4, seed=0).pool)
    others = [CachedPoolSource(source, per_model=4, seed=s).pool for s in (1, 2, 3)]
    assert any(not torch.equal(pool.pool, other) for other in others)


def test_cached_pool_batches_index_the_pool():
    indices = [7, 2, 10, 4]
    source = SyntheticSource(OffsetBank(SIX_CODES_TWO_SEEDS), indices, numbered_crops(8), negate)
    pool = CachedPoolSource(source, per_model=5, seed=3)
    pooled = [set(decode(pool.pool[c])[1]) for c in range(4)]
    for step in range(10):
        x, y = pool.batch(np.random.default_rng(step), 3, 2)
        check_batch(x, y, indices, 3, 2, 8)
        crops = decode(x)[1]
        assert all(crop in pooled[c] for crop, c in zip(crops, y.tolist()))
    x, y = pool.batch(np.random.default_rng(0), 9, 5)  # P > classes, K = the pool's size
    check_batch(x, y, indices, 4, 5, 8)
    for row, c in enumerate(y[::5].tolist()):
        assert set(decode(x)[1][row * 5:(row + 1) * 5]) == pooled[c]


# --- ImageSetSource ----------------------------------------------------------------------------

def test_image_set_draws_k_distinct_images_of_a_class_and_repeats_only_when_short():
    """Class sizes 6, 3, 2 and K = 3: the class of exactly K images shows each once; the class
    of 2 is drawn with replacement."""
    labels = np.array([0, 1, 0, 2, 0, 1, 0, 0, 2, 1, 0])
    images = numbered_crops(len(labels))
    source = ImageSetSource(images, labels, negate)
    assert source.n_classes == 3
    for step in range(15):
        x, y = source.batch(np.random.default_rng(step), 3, 3)
        assert x.shape == (9, 3, 4, 4) and torch.equal(y, y[::3].repeat_interleave(3))
        assert sorted(y[::3].tolist()) == [0, 1, 2]
        shown = (-x[:, 0, 0, 0]).long().numpy()
        assert np.array_equal(labels[shown], y.numpy())  # each row is an image of its label
        by_class = {c: shown[y.numpy() == c] for c in range(3)}
        assert len(set(by_class[0])) == 3 and sorted(by_class[1]) == [1, 5, 9]
        assert len(by_class[2]) == 3 and set(by_class[2]) <= {3, 8}
    x, y = source.batch(np.random.default_rng(0), 2, 2)  # P < classes: P distinct ones
    assert len(set(y[::2].tolist())) == 2 and len(y) == 4


def test_image_set_accepts_two_classes_and_a_class_of_one_image():
    source = ImageSetSource(numbered_crops(3), [1, 0, 1], negate)
    x, y = source.batch(np.random.default_rng(0), 2, 2)
    shown = (-x[:, 0, 0, 0]).long().tolist()
    assert source.n_classes == 2 and [[1, 0, 1][i] for i in shown] == y.tolist()


def test_image_set_rejects_bad_shapes_and_incomplete_labels():
    images = numbered_crops(4)
    with pytest.raises(ValueError, match=r"^expected images \(N, 3, H, W\) and N labels, got \(4, 3, 4\) and 4$"):
        ImageSetSource(images[..., 0], [0, 1, 0, 1], negate)
    with pytest.raises(ValueError, match=r"got \(4, 3, 4, 4\) and 3$"):
        ImageSetSource(images, [0, 1, 0], negate)
    with pytest.raises(ValueError, match=r"^need images of at least 2 classes labelled 0\.\.C-1 with none empty; "
                                         r"got 1 classes, empty: \[\]$"):
        ImageSetSource(images, [0, 0, 0, 0], negate)
    with pytest.raises(ValueError, match=r"got 3 classes, empty: \[1\]$"):
        ImageSetSource(images, [0, 2, 2, 0], negate)
    with pytest.raises(ValueError, match=r"got 0 classes, empty: \[\]$"):
        ImageSetSource(images[:0], [], negate)


# --- grouped_classes ---------------------------------------------------------------------------

def test_grouped_classes_fill_p_with_whole_groups_first():
    groups = [np.array([0, 1, 2]), np.array([3, 4, 5]), np.array([6, 7, 8])]
    group_of = {c: g for g, members in enumerate(groups) for c in members.tolist()}
    seen_first = set()
    for step in range(30):
        chosen = grouped_classes(np.random.default_rng(step), groups, 4, 2)
        assert chosen.dtype.kind == "i" and len(set(chosen.tolist())) == 4
        touched = [group_of[c] for c in chosen.tolist()]
        assert sorted(touched.count(g) for g in set(touched)) == [2, 2]  # two groups, two members each
        assert touched[0] == touched[1] and touched[2] == touched[3]  # group after group
        seen_first.add(touched[0])
    assert seen_first == {0, 1, 2}  # groups come in random order
    for step in range(5):  # P = 3: the second group is cut short
        touched = [group_of[c] for c in grouped_classes(np.random.default_rng(step), groups, 3, 2).tolist()]
        assert touched[0] == touched[1] != touched[2]
    # per_group above P: P members of one group
    chosen = grouped_classes(np.random.default_rng(0), groups, 2, 5)
    assert len({group_of[c] for c in chosen.tolist()}) == 1 and len(set(chosen.tolist())) == 2


def test_grouped_classes_take_small_groups_whole_and_draw_the_rest_without_repeats():
    groups = [np.array([0, 1, 2]), np.array([3]), np.array([4, 5, 6, 7])]
    for step in range(30):
        rng = np.random.default_rng(step)
        # 2 + 1 + 2 from the groups, then 3 more from the 3 classes not yet chosen
        assert sorted(grouped_classes(rng, groups, 8, 2).tolist()) == list(range(8))
        assert sorted(grouped_classes(rng, groups, 20, 3).tolist()) == list(range(8))  # P > classes
        chosen = grouped_classes(rng, groups, 7, 2).tolist()
        assert len(chosen) == 7 and len(set(chosen)) == 7 and 3 in chosen[:5]


# --- holdout_split -----------------------------------------------------------------------------

TEN_CODES_THREE_SEEDS = [(code, seed) for code in "abcdefghij" for seed in range(3)]


def codes_of(entries, indices):
    return {entries[i][0] for i in indices}


def check_partition(split, entries):
    parts = [set(split.train), set(split.unseen_seed), set(split.unseen_code)]
    assert sum(map(len, parts)) == len(entries) and set.union(*parts) == set(range(len(entries)))
    assert all(list(part) == sorted(part) for part in (split.train, split.unseen_seed, split.unseen_code))
    assert not codes_of(entries, split.unseen_code) & codes_of(entries, split.train)
    assert codes_of(entries, split.unseen_seed) <= codes_of(entries, split.train)


def test_holdout_split_sizes_follow_the_fractions():
    entries = TEN_CODES_THREE_SEEDS
    split = holdout_split(entries, 0.2, 0.5)
    check_partition(split, entries)
    assert len(codes_of(entries, split.unseen_code)) == 2 and len(split.unseen_code) == 6  # 0.2 x 10 codes
    # 0.5 x the 8 remaining codes lose their 2 highest seeds
    assert len(codes_of(entries, split.unseen_seed)) == 4 and len(split.unseen_seed) == 8
    assert sorted(entries[i][1] for i in split.unseen_seed) == [1] * 4 + [2] * 4
    assert len(split.train) == 16
    assert split.groups() == {"unseen seed": split.unseen_seed, "unseen code": split.unseen_code}
    nothing = holdout_split(entries, 0.0, 0.0)
    assert nothing == HoldoutSplit(tuple(range(30)), (), ())
    codes_only = holdout_split(entries, 0.3, 0.0)
    assert len(codes_only.unseen_code) == 9 and codes_only.unseen_seed == ()
    seeds_only = holdout_split(entries, 0.0, 0.3)
    assert seeds_only.unseen_code == () and len(seeds_only.unseen_seed) == 2 * 3


def test_holdout_split_is_pinned_for_a_seed():
    """Results recorded for a config seed must be reproducible: the split drawn from seed 0
    must not change."""
    split = holdout_split(TEN_CODES_THREE_SEEDS, 0.2, 0.5)
    assert split == holdout_split(TEN_CODES_THREE_SEEDS, 0.2, 0.5, seed=0)  # 0 is the default seed
    assert split.unseen_code == (15, 16, 17, 27, 28, 29)  # codes f and j
    assert split.unseen_seed == (1, 2, 19, 20, 22, 23, 25, 26)  # seeds 1, 2 of codes a, g, h, i
    assert len({holdout_split(TEN_CODES_THREE_SEEDS, 0.2, 0.5, seed=s) for s in range(4)}) > 1


def test_holdout_split_holds_the_highest_seeds_whatever_the_entry_order():
    entries = [(code, seed) for code in "abcdef" for seed in (3, 0, 2, 1)]  # 4 seeds, listed out of order
    split = holdout_split(entries, 0.0, 0.5)  # seeds_per_code=2 by default
    check_partition(split, entries)
    assert len(split.unseen_seed) == 6 and sorted({entries[i][1] for i in split.unseen_seed}) == [2, 3]
    three = holdout_split(entries, 0.0, 0.5, seeds_per_code=3)
    assert sorted(entries[i][1] for i in three.unseen_seed) == [1] * 3 + [2] * 3 + [3] * 3
    # never all seeds of a code: with 4 seeds, at most 3 are held and seed 0 stays in training
    everything = holdout_split(entries, 0.0, 0.5, seeds_per_code=9)
    held = codes_of(entries, everything.unseen_seed)
    assert len(held) == 3 and sorted(entries[i][1] for i in everything.train if entries[i][0] in held) == [0] * 3


def test_holdout_split_leaves_single_seed_architectures_out_of_the_seed_group():
    seeds = {"a": 1, "b": 3, "c": 1, "d": 2, "e": 1, "f": 3}
    entries = [(code, s) for code, n in seeds.items() for s in range(n)]
    split = holdout_split(entries, 0.0, 0.9)  # round(0.9 x 3 codes with several seeds) = 3
    check_partition(split, entries)
    assert codes_of(entries, split.unseen_seed) == {"b", "d", "f"}
    assert codes_of(entries, split.train) == set(seeds)  # the single seeds all stay in training
    assert sorted(entries[i] for i in split.unseen_seed) == [("b", 1), ("b", 2), ("d", 1), ("f", 1), ("f", 2)]


def test_holdout_split_small_fractions_still_hold_out_two_models():
    three_seeds = holdout_split(TEN_CODES_THREE_SEEDS, 0.01, 0.01)
    assert len(codes_of(TEN_CODES_THREE_SEEDS, three_seeds.unseen_code)) == 1  # one code has 3 models
    assert len(codes_of(TEN_CODES_THREE_SEEDS, three_seeds.unseen_seed)) == 2  # two codes, 2 seeds each
    assert len(three_seeds.unseen_seed) == 4
    two_seeds = [(code, seed) for code in "abcdef" for seed in (0, 1)]
    split = holdout_split(two_seeds, 0.01, 0.0)
    assert len(split.unseen_code) == 2 and len(codes_of(two_seeds, split.unseen_code)) == 1
    one_seed = [(code, 0) for code in "abcd"]
    split = holdout_split(one_seed, 0.01, 0.0)
    assert len(split.unseen_code) == 2 and len(split.train) == 2  # two single-seed codes held


def test_holdout_split_keeps_two_models_to_train_on():
    three = [(code, 0) for code in "abc"]
    split = holdout_split(three, 0.01, 0.5)
    assert len(split.unseen_code) == 1 and len(split.train) == 2 and split.unseen_seed == ()
    with pytest.raises(ValueError, match=r"^holding out 50% of codes and 0% of seeds leaves 1 model\(s\) to train on$"):
        holdout_split([("a", 0), ("b", 0)], 0.5, 0.0)


@pytest.mark.parametrize("name,fractions,value", [
    ("code_fraction", (1.0, 0.0), "1.0"), ("code_fraction", (-0.1, 0.0), "-0.1"),
    ("seed_fraction", (0.0, 1.0), "1.0"), ("seed_fraction", (0.2, -0.5), "-0.5")])
def test_holdout_split_fractions_must_be_in_0_1(name, fractions, value):
    with pytest.raises(ValueError, match=rf"^{name} must be in \[0, 1\), got {value}$"):
        holdout_split(TEN_CODES_THREE_SEEDS, *fractions)
