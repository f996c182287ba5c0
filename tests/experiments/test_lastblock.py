"""Last-block experiment: block composition, resume after a kill (EMA included), pair seeds and
their mean/sd aggregation, classifier sanity."""

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
    assert imgs_n.shape == (3, 3, 32, 32)
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


def test_resume_keeps_the_ema_exact_and_hands_it_on(tmp_path, kill_after):
    cfg = _tiny_cfg(**{"lastblock.ema": 0.5})
    data = torch.rand(16, 3, 16, 16) * 2 - 1
    straight, _ = tr.train_gan(cfg, "nearest", "M1", data, tmp_path / "a")
    state = tr.atomic.torch_load(tmp_path / "a" / training.CHECKPOINT)["state"]
    assert "ema" in state
    assert all(torch.equal(v, state["ema"][n]) for n, v in straight.state_dict().items()), "the EMA is handed on"
    assert not all(torch.equal(v, state["gen"][n]) for n, v in straight.state_dict().items())
    with pytest.raises(kill_after.error):
        tr.train_gan(cfg, "nearest", "M1", data, tmp_path / "b", on_step=kill_after(3))
    resumed, _ = tr.train_gan(cfg, "nearest", "M1", data, tmp_path / "b")
    assert _same(straight, resumed)


def test_without_ema_the_live_generator_is_handed_on(tmp_path):
    cfg = _tiny_cfg(**{"lastblock.ema": 0.0})
    gen, _ = tr.train_gan(cfg, "nearest", "M1", torch.rand(16, 3, 16, 16) * 2 - 1, tmp_path)
    state = tr.atomic.torch_load(tmp_path / training.CHECKPOINT)["state"]
    assert "ema" not in state
    assert all(torch.equal(v, state["gen"][n]) for n, v in gen.state_dict().items())


def test_ema_update_math():
    torch.manual_seed(0)
    ema, live = lb.Generator(16, "nearest", 8, 16), lb.Generator(16, "nearest", 8, 16)
    live.train()(torch.randn(4, 8))  # live batch-norm statistics and counters move
    before = {n: v.clone() for n, v in ema.state_dict().items()}
    tr.ema_update(ema, live, 0.9)
    for name, value in ema.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, 0.9 * before[name] + 0.1 * live.state_dict()[name], atol=1e-6), name
        else:  # batch counters are copied
            assert torch.equal(value, live.state_dict()[name]), name
    tr.ema_update(ema, live, 0.0)
    assert _same(ema, live), "decay 0 copies the live model"


def test_pair_seeds_give_fresh_initialisations_and_the_same_seed_reproduces():
    cfg = _tiny_cfg()
    data = torch.rand(16, 3, 16, 16) * 2 - 1
    seeds = {(p, u, m) for p in range(3) for u in lb.UPSAMPLINGS for m in tr.MEMBERS}
    assert len({tr.model_seed(0, u, m, p) for p, u, m in seeds}) == len(seeds)
    assert not {tr.model_seed(0, u, m, p) for p, u, m in seeds} & {tr.model_seed(1, u, m, p) for p, u, m in seeds}
    with pytest.raises(ValueError):
        tr.model_seed(0, "nearest", "M1", 1000)
    a0, a0_again, a1 = (tr.GanTask(cfg, "nearest", "M1", data, pair_seed=p) for p in (0, 0, 1))
    assert _same(a0.gen, a0_again.gen) and _same(a0.disc, a0_again.disc)
    assert not _same(a0.gen, a1.gen) and not _same(a0.disc, a1.disc)
    assert a0.settings()["seed"] != a1.settings()["seed"]


def test_pair_members_differ_only_by_seed_and_are_cached(tmp_path):
    cfg = _tiny_cfg(**{"lastblock.pair_seeds": 1})
    store = ArtefactStore(tmp_path / "cache")
    pairs, infos = tr.trained_pairs(cfg, store)
    assert set(pairs) == set(lb.UPSAMPLINGS) and len(infos) == 4
    m1, m2 = pairs["nearest"]
    assert not _same(m1, m2) and m1.upsampling == m2.upsampling == "nearest"
    again, _ = tr.trained_pairs(cfg, store)
    assert _same(again["nearest"][0], m1)
    assert len([p for p in store.root.iterdir() if not p.name.startswith(".")]) == 1

    # a second pair seed: a new artefact with fresh models; the first pair seed's is reused
    by_seed, infos = tr.all_pairs(_tiny_cfg(**{"lastblock.pair_seeds": 2}), store)
    assert list(by_seed) == [0, 1] and [i["pair_seed"] for i in infos] == [0] * 4 + [1] * 4
    assert _same(by_seed[0]["nearest"][0], m1) and not _same(by_seed[1]["nearest"][0], m1)
    assert len([p for p in store.root.iterdir() if not p.name.startswith(".")]) == 2


def test_pair_seeds_train_in_worker_processes_and_are_then_read_from_the_cache(tmp_path):
    cfg = _tiny_cfg(**{"lastblock.pair_seeds": 2, "lastblock.workers": 2})
    store = ArtefactStore(tmp_path / "cache")
    assert not tr.pair_seed_cached(cfg, store, 0) and not tr.pair_seed_cached(cfg, store, 1)
    by_seed, infos = tr.all_pairs(cfg, store)
    assert tr.pair_seed_cached(cfg, store, 0) and tr.pair_seed_cached(cfg, store, 1)
    assert list(by_seed) == [0, 1] and [i["pair_seed"] for i in infos] == [0] * 4 + [1] * 4
    assert not _same(by_seed[0]["nearest"][0], by_seed[1]["nearest"][0])
    built = sorted(p.name for p in store.root.iterdir() if not p.name.startswith("."))
    stamps = {name: (store.root / name / "manifest.json").stat().st_mtime_ns for name in built}
    again, _ = tr.all_pairs(_tiny_cfg(**{"lastblock.pair_seeds": 2}), store)  # one process: nothing retrained
    assert {name: (store.root / name / "manifest.json").stat().st_mtime_ns for name in built} == stamps
    assert _same(again[1]["bilinear"][1], by_seed[1]["bilinear"][1])


def _fake_result(flip, control, test1):
    """A `run_pair` result with the given flip rates (k -> rate), control and Test I accuracy,
    both directions equal (CM1 gives `flip` to M2, CM2 gives `flip` to M1)."""
    share = {"M1": 1 - test1, "M2": test1, "CM1 first": control, "CM2 first": 1 - control}
    for k, f in flip.items():
        share[f"CM1 k={k}"], share[f"CM2 k={k}"] = f, 1 - f
    return {"share_m2": share, "test1_accuracy": test1, "test1_per_model": {"M1": test1, "M2": test1},
            "flip_rate": dict(flip), "control_flip_rate": control, "n_blocks": 4}


def _fake_by_seed():
    return {p: {"nearest": _fake_result({1: 0.2 + 0.2 * p, 2: 0.9}, 0.1 * p, 1.0 - 0.01 * p),
                "bilinear": _fake_result({1: 0.5, 2: 0.6 + 0.1 * p}, 0.0, 0.9)}
            for p in range(3)}


def test_mean_sd():
    assert ev.mean_sd([0.2, 0.4, 0.6]) == pytest.approx((0.4, 0.2))
    mean, sd = ev.mean_sd([0.7])
    assert mean == 0.7 and np.isnan(sd), "one pair seed: the sd is unknown, not 0"
    with pytest.raises(ValueError):
        ev.mean_sd([])


def test_aggregation_over_pair_seeds():
    by_seed = _fake_by_seed()
    per_seed = ev.seed_table(by_seed)
    assert len(per_seed) == 6 and per_seed.loc[(2, "nearest"), "flip_k1"] == pytest.approx(0.6)
    assert per_seed.loc[(1, "bilinear"), "CM2_to_donor_k2"] == pytest.approx(0.7)

    summary = ev.summary_table(by_seed)
    row = summary.loc[("nearest", "flip, last 1")]
    assert row["mean"] == pytest.approx(0.4) and row["sd"] == pytest.approx(0.2) and row["n_pair_seeds"] == 3
    assert row["paper"] == ev.PAPER_FLIP["nearest"][1]
    assert summary.loc[("nearest", "flip, last 2"), "sd"] == pytest.approx(0.0)
    assert summary.loc[("nearest", "flip, first block (control)"), "mean"] == pytest.approx(0.1)
    assert summary.loc[("bilinear", "flip, last 2"), ["mean", "sd"]].tolist() == pytest.approx([0.7, 0.1])
    assert summary.loc[("nearest", "Test I accuracy"), ["mean", "sd"]].tolist() == pytest.approx([0.99, 0.01])

    m = ev.metrics(by_seed)
    assert m["pair_seeds"] == 3
    assert m["flip_rate"]["nearest"]["1"]["mean"] == pytest.approx(0.4)
    assert m["flip_rate"]["nearest"]["1"]["sd"] == pytest.approx(0.2)
    assert m["flip_rate"]["nearest"]["1"]["per_seed"] == pytest.approx([0.2, 0.4, 0.6])
    assert m["control_flip_rate"]["nearest"]["mean"] == pytest.approx(0.1)
    assert m["test1_accuracy"]["bilinear"] == {"mean": pytest.approx(0.9), "sd": pytest.approx(0.0),
                                               "rerun95": pytest.approx(0.0), "per_seed": pytest.approx([0.9] * 3)}
    # a rerun's mean over 3 fresh pair seeds: t(0.975, 2 df) = 4.303 times sd * sqrt(2 / 3)
    assert m["flip_rate"]["nearest"]["1"]["rerun95"] == pytest.approx(4.3027 * 0.2 * np.sqrt(2 / 3), rel=1e-4)
    assert row["rerun95"] == pytest.approx(m["flip_rate"]["nearest"]["1"]["rerun95"])
    assert ev.test1_table(by_seed).loc[("nearest", "M2"), "test1_accuracy"] == pytest.approx(0.99)
    assert ev.mean_shares(by_seed)["nearest"]["share_m2"]["CM1 k=1"] == pytest.approx(0.4)

    single = ev.metrics({0: by_seed[0]})
    assert single["pair_seeds"] == 1 and np.isnan(single["flip_rate"]["nearest"]["2"]["sd"])


def test_figures_draw_from_pair_seeds():
    by_seed = _fake_by_seed()
    for fig in (ev.flip_figure(by_seed), ev.confusion_figure(ev.mean_shares(by_seed), k=2),
                ev.flip_figure({0: by_seed[0]})):
        assert fig.axes
        ev.plt.close(fig)


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
