"""Last-block experiment: block composition, resume after a kill, classifier sanity."""

import numpy as np
import pytest
import torch

from zsattr.core import config, training
from zsattr.core.cache import ArtefactStore
from zsattr.experiments.lastblock import evaluation as ev
from zsattr.experiments.lastblock import models as lb
from zsattr.experiments.lastblock import training as tr


def _pair(upsampling="nearest", size=16):
    """Two seeds of one architecture, made to differ in every tensor but the batch counters:
    batch-norm scales start at 1 in both, so all weights get seeded noise, and one
    train-mode pass gives the running statistics different values."""
    models = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = lb.Generator(size, upsampling, z_dim=8, width=16)
        with torch.no_grad():
            for param in model.parameters():
                param.add_(0.01 * torch.randn_like(param))
            model.train()(torch.randn(4, 8))
        models.append(model.eval())
    return tuple(models)


def _same(a, b):
    return all(torch.equal(a.state_dict()[n], b.state_dict()[n]) for n in a.state_dict())


def _origin(composed, m1, m2):
    """Per parameter name: 'M1' or 'M2' (the two differ in every parameter by construction)."""
    out = {}
    for name, value in composed.state_dict().items():
        if name.endswith("num_batches_tracked"):  # equal in both models (one pass each)
            continue
        if torch.equal(value, m1.state_dict()[name]):
            out[name] = "M1"
        elif torch.equal(value, m2.state_dict()[name]):
            out[name] = "M2"
        else:
            out[name] = "neither"
    return out


def test_named_blocks_and_to_rgb_in_the_last_block():
    m1, _ = _pair(size=32)
    groups = lb.block_groups(m1)
    assert [g[0] for g in groups] == [f"blocks.block{i}." for i in range(4)]
    assert groups[-1] == ["blocks.block3.", "to_rgb."]
    names = list(m1.state_dict())
    assert all(any(n.startswith(p) for g in groups for p in g) for n in names), "every weight in a block"


@pytest.mark.parametrize("k", [1, 2, 3])
def test_swapping_last_k_blocks_copies_exactly_those_weights(k):
    m1, m2 = _pair(size=32)
    composed = lb.compose_last(m1, m2, k)
    groups = lb.block_groups(m1)
    donor_prefixes = tuple(p for g in groups[len(groups) - k:] for p in g)
    origin = _origin(composed, m1, m2)
    for name, src in origin.items():
        assert src == ("M2" if name.startswith(donor_prefixes) else "M1"), name
    assert _same(m1, _pair(size=32)[0]), "the recipient itself is untouched"


def test_k0_is_identity_and_all_blocks_give_the_donor():
    m1, m2 = _pair()
    z = torch.randn(4, 8)
    with torch.no_grad():
        assert torch.equal(lb.compose_last(m1, m2, 0).eval()(z), m1.eval()(z))
        n = len(lb.block_groups(m1))
        full = lb.compose_last(m1, m2, n)
        assert _same(full, m2) and torch.equal(full(z), m2.eval()(z))
    with pytest.raises(ValueError):
        lb.compose_last(m1, m2, n + 1)


def test_control_swaps_only_the_first_block():
    m1, m2 = _pair()
    origin = _origin(lb.compose_first(m1, m2), m1, m2)
    assert {n for n, s in origin.items() if s == "M2"} == {n for n in origin if n.startswith("blocks.block0.")}


def test_composition_refuses_other_architectures():
    m1, _ = _pair("nearest")
    other, _ = _pair("bilinear")
    with pytest.raises(ValueError):
        lb.compose_last(m1, other, 1)
    with pytest.raises(ValueError):
        lb.Generator(24, "nearest")
    with pytest.raises(ValueError):
        lb.Generator(16, "bicubic")


def test_upsampling_types_differ_and_shapes_hold():
    near, _ = _pair("nearest", 32)
    bil, _ = _pair("bilinear", 32)
    bil.load_state_dict(near.state_dict())
    imgs_n, imgs_b = lb.sample(near, 3, seed=0), lb.sample(bil, 3, seed=0)
    assert imgs_n.shape == (3, 3, 32, 32) and 0 <= float(imgs_n.min()) and float(imgs_n.max()) <= 1
    assert not torch.allclose(imgs_n, imgs_b)
    assert torch.equal(imgs_n, lb.sample(near, 3, seed=0)), "same seed, same latents, same images"


def _tiny_cfg(**kw):
    return config.resolve("smoke", **{"image_size": 16, "lastblock.width": 16, "lastblock.z_dim": 8,
                                      "lastblock.batch": 4, "lastblock.steps": 6, "lastblock.checkpoint_every": 2,
                                      "lastblock.n_crops": 16, **kw})


def test_resume_after_a_simulated_kill_matches_an_uninterrupted_run(tmp_path, kill_after):
    cfg = _tiny_cfg()
    data = torch.rand(16, 3, 16, 16) * 2 - 1
    straight, info = tr.train_gan(cfg, "nearest", "M1", data, tmp_path / "a")

    with pytest.raises(kill_after.error):
        tr.train_gan(cfg, "nearest", "M1", data, tmp_path / "b", on_step=kill_after(5))
    assert tr.atomic.torch_load(tmp_path / "b" / training.CHECKPOINT)["step"] == 4, "last checkpoint before the kill"
    resumed, info_b = tr.train_gan(cfg, "nearest", "M1", data, tmp_path / "b")
    assert _same(straight, resumed)
    assert info["steps"] == info_b["steps"] == 6 and info["loss_d"] == pytest.approx(info_b["loss_d"])


def test_pair_members_differ_only_by_seed_and_are_cached(tmp_path):
    cfg = _tiny_cfg()
    store = ArtefactStore(tmp_path / "cache")
    pairs, infos = tr.trained_pairs(cfg, store)
    assert set(pairs) == set(lb.UPSAMPLINGS) and len(infos) == 4
    m1, m2 = pairs["nearest"]
    assert not _same(m1, m2) and m1.upsampling == m2.upsampling == "nearest"
    again, _ = tr.trained_pairs(cfg, store)
    assert _same(again["nearest"][0], m1)
    assert len([p for p in store.root.iterdir() if not p.name.startswith(".")]) == 1


def test_classifier_tells_two_known_spectra_apart_and_not_noise():
    rng = np.random.default_rng(0)
    noise = torch.from_numpy(rng.random((200, 3, 16, 16))).float()
    stripes = noise.clone()
    stripes[:, :, :, ::2] *= 0.8  # a period-2 pattern: a peak at the horizontal Nyquist frequency
    features = ev.spectrum_features(noise[:100]), ev.spectrum_features(stripes[:100])
    assert features[0].shape == (100, 16 * 9)
    clf = ev.fit_classifier(*features)
    assert ev.share_m2(clf, noise[100:]) < 0.1 and ev.share_m2(clf, stripes[100:]) > 0.9
    same = ev.fit_classifier(ev.spectrum_features(noise[:100]), ev.spectrum_features(noise[100:]))
    fresh = torch.from_numpy(rng.random((400, 3, 16, 16))).float()
    assert 0.3 < ev.share_m2(same, fresh) < 0.7, "two draws of one source: no better than chance"
