"""The unconditional tier's quality check: sample diversity (collapse detection), the GAN
generator EMA (its update rule, that it is checkpointed and used for sampling after training),
and the pass / FAIL logic of the check against its bars."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from zsattr.core import config
from zsattr.core.keys import stage_key
from zsattr.zoo import build, gan, samples, table
from zsattr.zoo import training as train

TINY = {"image_size": 16, "zoo.width": 4, "zoo.batch_size": 4, "zoo.train_crops": 32, "zoo.n_samples": 6,
        "zoo.ddim_steps": 3, "zoo.steps": 4, "zoo.checkpoint_every": 2}


def test_diversity_separates_collapsed_from_diverse_samples():
    torch.manual_seed(0)
    real = torch.rand(32, 3, 32, 32) * 2 - 1
    diverse = torch.rand(32, 3, 32, 32) * 2 - 1
    collapsed = real[:1].expand(32, -1, -1, -1) + 0.01 * torch.randn(32, 3, 32, 32)
    assert samples.relative_diversity(diverse, real) == pytest.approx(1.0, abs=0.05)
    assert samples.relative_diversity(real, real) == pytest.approx(1.0)
    assert samples.relative_diversity(collapsed, real) < 0.05
    identical = real[:1].expand(8, -1, -1, -1)
    assert samples.mean_pairwise_distance(identical) == 0.0
    half = torch.cat([real[:1].expand(16, -1, -1, -1), real[1:2].expand(16, -1, -1, -1)])
    assert 0.3 < samples.relative_diversity(half, real) < 1.0  # two modes: partial collapse


def test_mean_pairwise_distance_known_answer():
    a = -torch.ones(1, 3, 4, 4)
    b = torch.ones(1, 3, 4, 4)
    # two images, every value differs by 2: distance per value 2, one pair
    assert samples.mean_pairwise_distance(torch.cat([a, b]), size=4) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        samples.mean_pairwise_distance(a)


def test_ema_update_math():
    live, ema = nn.Linear(2, 1), nn.Linear(2, 1)
    bn_live, bn_ema = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        live.weight.fill_(1.0), live.bias.fill_(2.0), ema.weight.fill_(0.0), ema.bias.fill_(0.0)
        bn_live.running_mean.fill_(3.0)
    gan.ema_update(ema, live, 0.9)
    assert torch.allclose(ema.weight, torch.full_like(ema.weight, 0.1))
    assert torch.allclose(ema.bias, torch.full_like(ema.bias, 0.2))
    gan.ema_update(bn_ema, bn_live, 0.9)
    assert torch.equal(bn_ema.running_mean, bn_live.running_mean)  # buffers are copied
    with pytest.raises(ValueError):
        gan.ema_update(nn.Linear(2, 1), nn.Linear(3, 1, bias=False), 0.5)
    # warm-up: early updates follow the live weights closely, later ones use the stated decay
    assert gan.ema_decay_at(0.99, 0) == pytest.approx(0.1)
    assert gan.ema_decay_at(0.99, 10_000) == 0.99


def _tiny_gan(ema_decay=0.9, r1=0.0):
    torch.manual_seed(0)
    return gan.GAN(gan.DCGANGenerator(16, 4, "tconv"), gan.DCGANDiscriminator(16, 4), "ns",
                   ema_decay=ema_decay, r1=r1)


def test_gan_ema_tracks_the_generator_and_is_used_after_training():
    model = _tiny_gan()
    assert "generator_ema.fc.weight" in model.state_dict() and "ema_updates" in model.state_dict()
    initial = model.generator_ema.fc.weight.clone()
    opts = model.make_optimizers()
    assert all(not p.requires_grad for p in model.generator_ema.parameters())
    data = torch.rand(8, 3, 16, 16) * 2 - 1
    for _ in range(3):
        before_live = model.generator.fc.weight.detach().clone()
        before_ema = model.generator_ema.fc.weight.clone()
        updates = int(model.ema_updates)
        model.train_step(data[:4], opts)
        decay = gan.ema_decay_at(0.9, updates)
        expected = decay * before_ema + (1 - decay) * model.generator.fc.weight.detach()
        assert torch.allclose(model.generator_ema.fc.weight, expected, atol=1e-7)
        assert not torch.equal(model.generator.fc.weight.detach(), before_live)
    assert int(model.ema_updates) == 3 and not torch.equal(model.generator_ema.fc.weight, initial)
    ema_weights = {k: v.clone() for k, v in model.generator_ema.state_dict().items()}
    model.finish_training()
    for key, value in model.generator.state_dict().items():
        assert torch.equal(value, ema_weights[key]), key
    assert bool(model.training_finished)
    model.train_step(data[:4], opts)  # after finishing (e.g. LoRA fine-tuning), the EMA stays frozen
    assert int(model.ema_updates) == 3
    model.finish_training()  # idempotent: does not copy the frozen EMA over the newer generator
    assert not torch.equal(model.generator.fc.weight.detach(), model.generator_ema.fc.weight)


def test_gan_r1_penalty_is_reported_and_finite():
    model = _tiny_gan(ema_decay=0.0, r1=1.0)
    losses = model.train_step(torch.rand(4, 3, 16, 16) * 2 - 1, model.make_optimizers())
    assert "r1" in losses and np.isfinite(losses["r1"]) and losses["r1"] > 0  # the critic has a gradient
    assert not hasattr(model, "generator_ema")


def test_standing_statistics_are_the_batch_average_and_deterministic():
    net = gan.DCGANGenerator(16, 4, "tconv")
    bn = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)][0]
    state = torch.get_rng_state()
    gan.recalibrate_batch_norm(net, gan.Z_DIM, batches=2, batch=8, seed=4)
    assert torch.equal(torch.get_rng_state(), state), "the global RNG is untouched"
    gen = torch.Generator().manual_seed(4)
    z = torch.cat([torch.randn(8, gan.Z_DIM, generator=gen) for _ in range(2)])
    with torch.no_grad():
        h = net.fc(z).view(-1, net.c0, 4, 4)
    assert torch.allclose(bn.running_mean, h.mean(dim=(0, 2, 3)), atol=1e-5)
    assert bn.momentum == 0.1 and net.training
    first = bn.running_var.clone()
    gan.recalibrate_batch_norm(net, gan.Z_DIM, batches=2, batch=8, seed=4)
    assert torch.equal(first, bn.running_var)


def test_resume_with_ema_is_exact(tmp_path, kill_after):
    data = torch.rand(16, 3, 16, 16) * 2 - 1
    straight = _tiny_gan()
    train.train(straight, data, 6, 4, seed=3, work_dir=tmp_path / "a", checkpoint_every=2)
    with pytest.raises(kill_after.error):
        train.train(_tiny_gan(), data, 6, 4, seed=3, work_dir=tmp_path / "b", checkpoint_every=2,
                    on_step=kill_after(3))
    resumed = _tiny_gan()
    result = train.train(resumed, data, 6, 4, seed=3, work_dir=tmp_path / "b", checkpoint_every=2)
    assert result.resumed_from == 2
    assert int(resumed.ema_updates) == 6
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


@pytest.mark.parametrize("start, final, div, swd_bar, div_bar, expected", [
    (0.3, 0.1, 0.8, None, None, None),     # no bar: reported only
    (0.3, 0.1, 0.8, 0.15, 0.5, True),
    (0.3, 0.2, 0.8, 0.15, 0.5, False),     # above the SWD bar
    (0.3, 0.1, 0.2, 0.15, 0.5, False),     # collapsed
    (0.1, 0.12, 0.8, 0.15, 0.5, False),    # under the bar but worse than its initialisation
    (0.3, 0.1, 0.2, 0.15, None, True),     # diversity bar not applied
    (0.3, 0.2, 0.8, None, 0.5, True),      # SWD bar not applied, SWD fell
    (0.3, 0.1, float("nan"), 0.15, 0.5, False),  # diversity not recorded fails a diversity bar
])
def test_generation_check_logic(start, final, div, swd_bar, div_bar, expected):
    assert table.generation_passes(start, final, div, swd_bar, div_bar) is expected


@pytest.mark.parametrize("fd_start, fd_final, fd_bar, expected", [
    (1.5, 0.2, 0.3, True),
    (1.5, 0.5, 0.3, False),           # above the FD bar (texture far from real crops)
    (0.2, 0.25, 0.3, False),          # under the bar but worse than its initialisation
    (1.5, float("nan"), 0.3, False),  # not recorded
    (1.5, 0.5, None, True),           # FD bar not applied
])
def test_generation_check_with_feature_distance(fd_start, fd_final, fd_bar, expected):
    assert table.generation_passes(0.3, 0.1, 0.8, 0.15, 0.5, fd_start, fd_final, fd_bar) is expected
    assert table.generation_passes(0.3, 0.1, 0.8, None, None, fd_start, fd_final, None) is None


def test_random_feature_distance():
    torch.manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(48, 3, 8, 8) * 2 - 1, size=32, mode="bilinear")
    other_smooth = torch.nn.functional.interpolate(torch.rand(48, 3, 8, 8) * 2 - 1, size=32, mode="bilinear")
    noise = torch.rand(48, 3, 32, 32) * 2 - 1
    assert samples.random_feature_distance(smooth, smooth) == pytest.approx(0.0, abs=1e-6)
    same_kind = samples.random_feature_distance(other_smooth, smooth)
    assert same_kind < samples.random_feature_distance(noise, smooth)
    assert samples.random_feature_distance(noise, smooth) == samples.random_feature_distance(noise, smooth)
    assert samples.random_feature_distance(noise, smooth, seed=1) != samples.random_feature_distance(noise, smooth)


def _sidecar(folder, name, tier, **extra):
    (folder / name).mkdir(parents=True)
    meta = {"tier": tier, "family": "GAN", "upsampling": "x", "steps": 10, "train_seconds": 1.0,
            "swd_start": 0.3, "swd_final": 0.1, **extra}
    (folder / name / samples.METADATA).write_text(json.dumps(meta))


def test_generation_table_lists_every_unconditional_model_with_fail(tmp_path):
    fd = {"fd_start": 1.5, "fd_final": 0.2}
    _sidecar(tmp_path, "good", "unconditional", diversity=0.9, diversity_start=0.0, **fd)
    _sidecar(tmp_path, "collapsed", "unconditional", diversity=0.05, diversity_start=0.0, **fd)
    _sidecar(tmp_path, "far", "unconditional", swd_final=0.25, diversity=0.9, diversity_start=0.0, **fd)
    _sidecar(tmp_path, "noisy", "unconditional", diversity=0.9, diversity_start=0.0, fd_start=1.5, fd_final=0.9)
    _sidecar(tmp_path, "sr", "image_to_image")
    checked = table.generation_table(tmp_path, swd_bar=0.15, diversity_bar=0.5, fd_bar=0.3)
    assert sorted(checked.index) == ["collapsed", "far", "good", "noisy"]
    assert checked.loc["good", "check"] == "pass"
    assert (checked.loc[["collapsed", "far", "noisy"], "check"] == "FAIL").all()
    assert table.generation_table(tmp_path, swd_bar=0.15, diversity_bar=0.5).loc["noisy", "check"] == "pass"
    loose = table.generation_table(tmp_path, swd_bar=None, diversity_bar=None)
    assert (loose["check"] == "not enforced").all()


def test_zoo_records_diversity_and_samples_from_the_ema(tmp_path):
    cfg = config.resolve("smoke", **{**TINY, "zoo.models": ("dcgan_tconv",)})
    crops = torch.rand(32, 3, 16, 16) * 2 - 1
    meta = build.train_one(cfg, "dcgan_tconv", crops, tmp_path, {})
    assert meta["diversity_start"] > 0.0 and meta["diversity"] > 0.0
    assert meta["fd_start"] > 0.0 and meta["fd_final"] > 0.0 and meta["fd_real_floor"] > 0.0  # different sets
    weights = torch.load(tmp_path / "dcgan_tconv" / samples.WEIGHTS)
    if "generator_ema.fc.weight" in weights:  # the model's recipe keeps an EMA
        assert bool(weights["training_finished"])
        # the weights are the EMA's; batch-norm statistics were recomputed (standing statistics)
        for key in [k for k in weights if k.startswith("generator.") and "running_" not in k
                    and "num_batches" not in k]:
            assert torch.equal(weights[key], weights["generator_ema." + key[len("generator."):]]), key
    checked = table.generation_table(tmp_path / "dcgan_tconv", swd_bar=10.0, diversity_bar=0.0)
    assert len(checked) == 1 and checked["diversity"].iloc[0] == meta["diversity"]


def test_ema_is_left_alone_once_the_generator_is_wrapped():
    from zsattr.zoo import lora
    model = _tiny_gan()
    lora.add_lora(model.generator, 2, 2.0, 0)
    ema = {k: v.clone() for k, v in model.generator_ema.state_dict().items()}
    model.train_step(torch.rand(4, 3, 16, 16) * 2 - 1, model.make_optimizers())
    assert int(model.ema_updates) == 0
    assert all(torch.equal(v, ema[k]) for k, v in model.generator_ema.state_dict().items())


def test_bars_are_stated_at_cpu_and_not_keyed():
    cpu, smoke = config.resolve("cpu"), config.resolve("smoke")
    assert cpu.zoo.swd_bar == 0.2 and cpu.zoo.diversity_bar == 0.5 and cpu.zoo.fd_bar == 0.3
    assert smoke.zoo.swd_bar is None and smoke.zoo.diversity_bar is None and smoke.zoo.fd_bar is None
    moved = config.resolve("cpu", **{"zoo.swd_bar": 0.5, "zoo.diversity_bar": 0.1, "zoo.fd_bar": 2.0})
    assert stage_key(moved, build.ZOO) == stage_key(cpu, build.ZOO), "changing a bar needs no retraining"
