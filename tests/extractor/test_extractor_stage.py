import numpy as np
import pytest
import torch

from zsattr.core import config
from zsattr.core.cache import ArtefactStore
from zsattr.extractor import stage as es
from zsattr.extractor.data import CachedPoolSource, ImageSetSource, SyntheticSource, grouped_classes, holdout_split
from zsattr.fingerprint import chain, residual
from zsattr.synthesis import all_codes
from zsattr.synthesis import bank as bank_mod


def _tiny(**kw):
    base = {"bank.codes": 6, "bank.seeds": 2, "bank.steps": 4, "bank.train_size": 8, "bank.batch": 4,
            "bank.check_every": 2, "bank.pool_crops": 64, "bank.workers": 1, "image_size": 16,
            "extractor.backbone": "resnet18", "extractor.steps": 4, "extractor.p": 4, "extractor.k": 2,
            "extractor.checkpoint_every": 2, "extractor.crop_pool": 32, "extractor.heldout_images": 4,
            "extractor.heldout_codes": 0.2, "extractor.heldout_seeds": 0.3}
    return config.resolve("smoke", **{**base, **kw})


@pytest.fixture(scope="module")
def tiny_bank(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    return bank_mod.load_bank(_tiny(), ArtefactStore(root)), root


HIGHPASS = chain.InputChain(residual.HighPass(3))
ENTRIES = [(c, s) for c in all_codes()[:40] for s in range(3)]


@pytest.mark.parametrize("codes,seeds", [(0.1, 0.1), (0.25, 0.0), (0.0, 0.5)])
def test_holdout_split_partitions_the_bank_and_is_deterministic(codes, seeds):
    split = holdout_split(ENTRIES, codes, seeds, seed=3)
    parts = [set(split.train), set(split.unseen_seed), set(split.unseen_code)]
    assert sum(map(len, parts)) == len(ENTRIES) and set.union(*parts) == set(range(len(ENTRIES)))
    assert split == holdout_split(ENTRIES, codes, seeds, seed=3)
    train_codes = {ENTRIES[i][0] for i in split.train}
    # unseen codes: no seed of theirs was trained; unseen seeds: another seed of the code was
    assert not {ENTRIES[i][0] for i in split.unseen_code} & train_codes
    assert {ENTRIES[i][0] for i in split.unseen_seed} <= train_codes
    # the two highest seeds of each chosen code are held out; seed 0 stays in training
    assert all(ENTRIES[i][1] in (1, 2) for i in split.unseen_seed)
    held_codes = [ENTRIES[i][0] for i in split.unseen_seed]
    assert all(held_codes.count(c) == 2 for c in held_codes)
    assert len(split.unseen_code) == 3 * round(codes * 40)
    assert (len(split.unseen_seed) > 0) == (seeds > 0)
    assert split != holdout_split(ENTRIES, codes, seeds, seed=4) or codes == seeds == 0


def test_holdout_split_rejects_bad_fractions_and_keeps_two_models():
    with pytest.raises(ValueError, match="code_fraction"):
        holdout_split(ENTRIES, 1.0, 0.0)
    tiny = [(c, 0) for c in all_codes()[:3]]
    split = holdout_split(tiny, 0.1, 0.5)
    assert len(split.unseen_code) == 1 and split.unseen_seed == () and len(split.train) == 2


def test_holdout_split_keeps_one_trained_seed_per_held_seed_code():
    two_seeds = [(c, s) for c in all_codes()[:20] for s in range(2)]
    split = holdout_split(two_seeds, 0.0, 0.5, seeds_per_code=2)
    assert split.unseen_seed and all(two_seeds[i][1] == 1 for i in split.unseen_seed)
    one_each = holdout_split(ENTRIES, 0.0, 0.5, seeds_per_code=1)
    assert all(ENTRIES[i][1] == 2 for i in one_each.unseen_seed)


def test_grouped_batches_hold_several_seeds_of_each_architecture(tiny_bank):
    bank, _ = tiny_bank
    indices = list(range(len(bank)))  # 6 codes x 2 seeds
    source = SyntheticSource(bank, indices, torch.rand(10, 3, 16, 16), HIGHPASS, seeds_per_code=2)
    code_of = [bank.entries[i][0] for i in indices]
    for step in range(20):
        x, y = source.batch(np.random.default_rng([0, step]), 4, 2)
        classes = y[::2].tolist()
        assert len(set(classes)) == 4 and torch.equal(y, torch.tensor(classes).repeat_interleave(2))
        codes = [code_of[c] for c in classes]
        assert sorted(codes.count(c) for c in set(codes)) == [2, 2]  # two architectures, two seeds each
    uniform = SyntheticSource(bank, indices, torch.rand(10, 3, 16, 16), HIGHPASS, seeds_per_code=1)
    pairs = 0
    for step in range(50):
        _, y = uniform.batch(np.random.default_rng([0, step]), 4, 2)
        codes = [code_of[c] for c in y[::2].tolist()]
        pairs += len(codes) - len(set(codes))
    assert pairs < 50 * 2  # uniform draws do not always pair seeds (they do by chance, rarely)
    with pytest.raises(ValueError, match="seeds_per_code"):
        SyntheticSource(bank, indices, torch.rand(10, 3, 16, 16), HIGHPASS, seeds_per_code=0)


def test_grouped_classes_fill_p_and_take_small_groups_whole():
    groups = [np.array([0, 1, 2]), np.array([3]), np.array([4, 5, 6, 7])]
    for step in range(30):
        chosen = grouped_classes(np.random.default_rng(step), groups, 5, 2)
        assert len(chosen) == 5 and len(set(chosen.tolist())) == 5
        for g in groups:
            assert len(set(chosen.tolist()) & set(g.tolist())) <= 2
    everything = grouped_classes(np.random.default_rng(0), groups, 20, 3)
    assert sorted(everything.tolist()) == list(range(8))  # the groups run out: the rest is drawn uniformly


def test_synthetic_batches_are_p_by_k_and_reproducible(tiny_bank):
    bank, _ = tiny_bank
    crops = torch.rand(10, 3, 16, 16)
    source = SyntheticSource(bank, [0, 2, 3, 5, 7], crops, HIGHPASS)
    x, y = source.batch(np.random.default_rng(0), 3, 4)
    assert x.shape == (12, 3, 16, 16)
    rows = y.view(3, 4)  # K consecutive samples per class, P distinct classes
    assert (rows == rows[:, :1]).all() and len(set(rows[:, 0].tolist())) == 3
    x2, y2 = source.batch(np.random.default_rng(0), 3, 4)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert torch.isfinite(x).all()
    # P larger than the number of classes: every class once
    _, y3 = source.batch(np.random.default_rng(1), 9, 2)
    assert sorted(set(y3.tolist())) == list(range(5))
    with pytest.raises(ValueError, match="at least 2"):
        SyntheticSource(bank, [1], crops, HIGHPASS)


def test_a_class_label_means_the_same_model_in_every_batch(tiny_bank):
    """Class c's inputs must be exactly model indices[c] applied to the chosen crops."""
    bank, _ = tiny_bank
    crops = torch.rand(6, 3, 16, 16)
    to_input = HIGHPASS
    source = SyntheticSource(bank, [4, 1, 6], crops, to_input)
    rng = np.random.default_rng(5)
    x, y = source.batch(rng, 2, 6)  # K = all crops, so each class shows every crop once
    for c in set(y.tolist()):
        expected = to_input(bank.apply([4, 1, 6][c], crops))
        got = x[y == c]
        assert all(any(torch.allclose(g, e, atol=1e-5) for e in expected) for g in got)


def _crop_of_each_row(rows: torch.Tensor, expected: torch.Tensor) -> list[int]:
    """Index of the expected input (one per crop) each row equals; every row must match one."""
    distance = torch.cdist(rows.flatten(1)[None], expected.flatten(1)[None])[0]
    assert distance.min(dim=1).values.max() < 1e-3, "a row is no crop's input"
    return distance.argmin(dim=1).tolist()


def test_each_class_of_a_batch_shows_k_distinct_crops(tiny_bank):
    bank, _ = tiny_bank
    crops = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    indices = [4, 1]
    expected = [HIGHPASS(bank.apply(i, crops)) for i in indices]  # model c on every crop
    source = SyntheticSource(bank, indices, crops, HIGHPASS)
    # K = all crops: each exactly once (drawn with replacement, 8 of 8 would all differ 0.2 % of the time)
    x, y = source.batch(np.random.default_rng(2), 2, 8)
    for c in range(2):
        assert sorted(_crop_of_each_row(x[y == c], expected[c])) == list(range(8))
    x, y = source.batch(np.random.default_rng(3), 2, 5)  # K < crops: still no repeat
    for c in range(2):
        assert len(set(_crop_of_each_row(x[y == c], expected[c]))) == 5
    pool = CachedPoolSource(source, per_model=6)
    x, y = pool.batch(np.random.default_rng(0), 2, 6)  # K = the pool's size: every pooled input once
    for c in range(2):
        assert sorted(_crop_of_each_row(x[y == c], pool.pool[c])) == list(range(6))


def test_image_set_batches_pair_each_image_with_its_own_label():
    """Image j is filled with the value j, so each row of a batch says which image it is."""
    labels = np.array([0] * 5 + [1] * 4 + [2] * 2 + [3] * 6)
    images = torch.arange(len(labels), dtype=torch.float32)[:, None, None, None].expand(-1, 3, 4, 4).clone()
    source = ImageSetSource(images, labels, torch.nn.Identity())
    for step in range(10):
        x, y = source.batch(np.random.default_rng(step), 3, 4)
        image = x[:, 0, 0, 0].long().numpy()
        assert np.array_equal(labels[image], y.numpy())  # row i is an image of class y[i]
        for c in set(y.tolist()) - {2}:  # class 2 has 2 images for K = 4: drawn with replacement
            assert len(set(image[y.numpy() == c])) == 4


def test_training_settings_come_from_the_config():
    changed = {"extractor.triplet_normalised": False, "extractor.ce_over": "batch", "extractor.lr": 3e-3,
               "extractor.weight_decay": 0.05, "extractor.amp": True, "extractor.p": 5, "extractor.k": 3,
               "extractor.checkpoint_every": 7}
    st = es.settings_for(config.resolve("smoke", **changed), steps=10)
    assert (st.triplet_normalised, st.ce_over, st.lr, st.weight_decay, st.amp, st.p, st.k, st.checkpoint_every) == \
        (False, "batch", 3e-3, 0.05, True, 5, 3, 7)
    assert es.closed_set_settings(config.resolve("smoke", **changed), 3, 10).triplet_normalised is False
    default = es.settings_for(config.resolve("smoke"))
    assert default.triplet_normalised is True and default.ce_over == config.resolve("smoke").extractor.ce_over


def test_cached_pool_draws_from_precomputed_inputs(tiny_bank):
    bank, _ = tiny_bank
    source = SyntheticSource(bank, [0, 1, 2], torch.rand(8, 3, 16, 16), HIGHPASS)
    pool = CachedPoolSource(source, per_model=4)
    assert pool.pool.shape == (3, 4, 3, 16, 16) and pool.nbytes == 3 * 4 * 3 * 16 * 16 * 4
    x, y = pool.batch(np.random.default_rng(0), 2, 3)
    assert x.shape == (6, 3, 16, 16)
    for xi, yi in zip(x, y):
        assert any(torch.equal(xi, row) for row in pool.pool[yi])


def test_image_set_source_balances_classes_and_validates():
    images = torch.rand(11, 3, 8, 8)
    labels = [0] * 5 + [1] * 4 + [2] * 2
    source = ImageSetSource(images, labels, HIGHPASS)
    assert source.n_classes == 3
    x, y = source.batch(np.random.default_rng(0), 3, 3)  # class 2 has 2 images: drawn with replacement
    assert x.shape == (9, 3, 8, 8) and sorted(y.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="at least 2 classes"):
        ImageSetSource(images[:3], [0, 0, 0], HIGHPASS)
    with pytest.raises(ValueError, match="empty"):
        ImageSetSource(images[:3], [0, 2, 2], HIGHPASS)


def test_settings_follow_the_preset_and_the_paper_schedule():
    st = es.settings_for(config.resolve("cpu"))
    assert st.steps == 500 and st.p * st.k == 32 and st.restart_mult == 2
    assert st.restart_period == round(0.375 * 500) and st.eta_min == pytest.approx(st.lr / 10)
    assert es.settings_for(config.resolve("cpu"), steps=100).restart_period == 38
    with pytest.raises(ValueError, match="extractor.k"):
        es.settings_for(config.resolve("smoke").replace(**{"extractor.k": 1}))


def test_space_indices_apply_the_ablation_subset_to_training_models_only(tiny_bank):
    bank, _ = tiny_bank
    split = es.split_of(_tiny(), bank)
    full = es.space_indices(bank, split, "full")
    one_seed = es.space_indices(bank, split, "w/o seed")
    assert full == list(split.train)
    assert set(one_seed) < set(full) and len({bank.entries[i][0] for i in one_seed}) == len(one_seed)
    with pytest.raises(ValueError, match="unknown model space"):
        es.space_indices(bank, split, "w/o everything")


def test_stage_trains_caches_and_resumes_to_the_same_weights(tiny_bank, monkeypatch):
    _, root = tiny_bank
    cfg = _tiny()
    store = ArtefactStore(root)
    real_train = es.training.train

    def killed(*args, **kwargs):  # dies after 2 of 4 steps, like a kill after a checkpoint
        real_train(*args, **kwargs, stop_after=2)
        raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(es.training, "train", killed)
    with pytest.raises(KeyboardInterrupt):
        es.train_extractor(cfg, store=store)
    monkeypatch.setattr(es.training, "train", real_train)
    resumed = es.train_extractor(cfg, store=store)
    assert resumed.built_now and resumed.summary["steps"] == 4 and len(resumed.history) == 4
    assert resumed.summary["samples_per_second"] > 0 and np.isfinite(resumed.summary["final_loss"])
    straight = es.train_extractor(cfg, store=ArtefactStore(root / "other"))
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values()):
        assert torch.equal(a, b)
    again = es.train_extractor(cfg, store=store)
    assert not again.built_now and again.path == resumed.path
    # the held-out models are not among the training classes
    assert not set(resumed.train_indices) & set(resumed.split.unseen_code + resumed.split.unseen_seed)
    images, labels = es.heldout_images_of(cfg, bank_mod.load_bank(cfg, store), list(resumed.split.unseen_code))
    assert images.shape == (4 * len(resumed.split.unseen_code), 3, 16, 16) and len(labels) == len(images)
    inputs = chain.input_chain(cfg)(images)
    assert resumed.model.embed(inputs).shape == (len(inputs), 512)


def test_closed_set_training_uses_the_same_trainer_and_is_cached(tmp_path):
    cfg = _tiny(**{"extractor.steps": 3})
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(12, 3, 16, 16, generator=g), [0] * 4 + [1] * 4 + [2] * 4
    st = es.closed_set_settings(cfg, 3, 3)
    assert st.p == 3 and st.p * st.k >= cfg.extractor.p * cfg.extractor.k - 2  # same batch size
    store = ArtefactStore(tmp_path)
    first = es.train_closed_set(cfg, images, labels, 3, "toy", store)
    assert first.built_now and first.summary["n_classes"] == 3 and first.summary["steps"] == 3
    assert first.model.head.out_features == 3 and first.split is None
    again = es.train_closed_set(cfg, images, labels, 3, "toy", store)
    assert not again.built_now and again.path == first.path
    other = es.train_closed_set(cfg, images, labels, 3, "other data", store)
    assert other.path != first.path


def test_heldout_group_images_are_synthesised_once_per_bank_and_settings(tiny_bank):
    from zsattr.experiments import heldout

    bank, _ = tiny_bank
    cfg = _tiny()
    first = heldout.group_images(cfg, bank, [0, 1, 2])
    again = heldout.group_images(cfg, bank, (0, 1, 2))
    assert again[0] is first[0]  # reused, not recomputed
    fresh = es.heldout_images_of(cfg, bank, [0, 1, 2])
    assert torch.equal(first[0], fresh[0]) and np.array_equal(first[1], fresh[1])
    # other models or another setting that changes the images: a new entry, not the memo's
    others = heldout.group_images(cfg, bank, [3, 4])
    assert not torch.equal(others[0][:4], first[0][:4])
    more = heldout.group_images(cfg.replace(**{"extractor.heldout_images": 6}), bank, [0, 1, 2])
    assert len(more[0]) == 18 and len(first[0]) == 12
    # a variant that does not touch the images (another backbone) shares them
    variant = cfg.replace(**{"extractor.backbone": "resnet34"})
    assert heldout.group_images(variant, bank, [0, 1, 2])[0] is first[0]
