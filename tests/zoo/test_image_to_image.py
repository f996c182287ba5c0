"""The zoo's image-to-image tier: the degradations, every model's shapes and ranges, real
training, samples made from holdout photos, the PSNR check (a failing model is flagged and
kept), fine-tuned variants, exact resume after a kill, and how evaluation selects the tier."""

import json

import numpy as np
import pytest
import torch

from zsattr import zoo
from zsattr.core import config, training
from zsattr.core.cache import ArtefactStore
from zsattr.core.keys import stage_key
from zsattr.images.folders import scan_image_folder
from zsattr.images.photos import PhotoPool, to_tensor
from zsattr.zoo import build, reconstruction
from zsattr.zoo import training as train
from zsattr.zoo.image_to_image import Degradation, quantize

TINY = {"image_size": 16, "zoo.width": 4, "zoo.batch_size": 4, "zoo.train_crops": 32, "zoo.n_samples": 6,
        "zoo.steps": 4, "zoo.checkpoint_every": 2}
TIER = zoo.tier_models(zoo.REGISTRY, zoo.IMAGE_TO_IMAGE)


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: these tiny networks gain nothing from more, and CI machines are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_cfg(**overrides):
    return config.resolve("smoke", **{**TINY, **overrides})


def fresh_model(cfg, name, seed=0):
    torch.manual_seed(seed)
    trained = {d: build.build_model(cfg, d) for d in zoo.entry(name).requires}
    return build.build_model(cfg, name, trained)


def test_the_tier_in_the_presets():
    cpu = config.resolve("cpu").zoo.models
    tier = zoo.tier_models(cpu, zoo.IMAGE_TO_IMAGE)
    entries = [zoo.entry(n) for n in tier]
    assert len(tier) >= 8 and len({e.architecture for e in entries}) >= 4
    assert any(e.twin_of for e in entries) and any(e.finetune_of for e in entries)
    for e in entries:
        assert e.family == "image-to-image" and e.finetune_of in (None, *e.requires)
    assert zoo.tier_models(cpu, zoo.UNCONDITIONAL) == [n for n in cpu if n not in tier]
    assert zoo.tier_models(config.resolve("smoke").zoo.models, zoo.IMAGE_TO_IMAGE)  # notebook 00 shows it at smoke
    assert config.resolve("cpu").zoo.psnr_bar == 25.0 and config.resolve("smoke").zoo.psnr_bar is None
    with pytest.raises(ValueError, match="unknown tier"):
        zoo.tier_models(cpu, "conditional")


def test_degradations():
    clean = torch.rand(5, 3, 16, 16) * 2 - 1
    low = Degradation("sr2")(clean)
    assert low.shape == (5, 3, 8, 8) and torch.equal(low, quantize(low))
    # antialiased: a x2 downsample of a 2x2-periodic pattern is flat, not aliased
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None]) % 2 * 1.0 - 0.5
    assert Degradation("sr2")(checker.expand(1, 3, 16, 16)).std() < 0.05
    torch.manual_seed(0)
    noisy = Degradation("noise0.2")(clean * 0.5)  # away from the clip at +-1
    assert (noisy - clean * 0.5).std().item() == pytest.approx(0.2, rel=0.05)
    assert torch.equal(Degradation("identity")(clean), clean)
    assert Degradation("sr2").baseline(low).shape == clean.shape
    with pytest.raises(ValueError, match="unknown degradation"):
        Degradation("blur3")


@pytest.mark.parametrize("name", TIER)
def test_every_tier_model_maps_inputs_to_images(name):
    cfg = tiny_cfg()
    model = fresh_model(cfg, name)
    clean = torch.rand(3, 3, 16, 16) * 2 - 1
    inputs = model.degradation(clean)
    assert inputs.shape[-1] == (8 if model.degradation.kind == "sr2" else 16)
    out = model.translate(inputs)
    assert out.shape == clean.shape and torch.isfinite(out).all()
    drawn = zoo.sample(model, 4, seed=3)  # the zoo's interface: outputs on holdout crops
    assert drawn.shape == (4, 3, 16, 16) and torch.equal(drawn, zoo.sample(model, 4, seed=3))
    assert not torch.equal(drawn, zoo.sample(model, 4, seed=4))


@pytest.mark.parametrize("name", ["sr_pixelshuffle", "sr_tconv", "sr_bicubic_cnn", "ae_kl", "denoise_dncnn"])
def test_training_reduces_the_loss_and_raises_psnr(name, tmp_path):
    cfg = tiny_cfg()
    model = fresh_model(cfg, name)
    clean, inputs = reconstruction.tier_inputs(cfg.replace(**{"zoo.n_samples": 32}), model.degradation.kind, 0)
    before = reconstruction.psnr(model.translate(inputs), clean)
    run = train.train(model, build.training_crops(cfg), 80, 8, seed=0, work_dir=tmp_path, checkpoint_every=100)
    losses = train.loss_summary(run)["loss"]
    assert losses["final"] < 0.8 * losses["first"], losses
    assert reconstruction.psnr(model.translate(inputs), clean) > before + 1.0


def test_psnr_known_answers():
    x = quantize(torch.rand(2, 3, 8, 8) * 2 - 1)
    assert reconstruction.psnr(x, x) == float("inf")
    shifted = (x + 2 / 255).clamp(-1, 1)
    mse = ((quantize(shifted) - x) / 2).pow(2).mean().item()
    assert reconstruction.psnr(shifted, x) == pytest.approx(10 * np.log10(1 / mse))
    assert reconstruction.passes(24.9, 25.0) is False and reconstruction.passes(25.0, 25.0) is True
    assert reconstruction.passes(3.0, None) is None


def test_samples_are_outputs_on_holdout_crops(tmp_path):
    cfg = tiny_cfg(**{"zoo.models": ("sr_bicubic_cnn", "denoise_dncnn")})
    artefact = build.zoo_artefact(cfg, ArtefactStore(tmp_path / "cache"))
    folder = scan_image_folder(artefact.path / "samples", min_size=16)
    pool = PhotoPool.from_config(cfg)
    for name, paths in folder.sources.items():
        meta = json.loads((artefact.path / "samples" / name / "metadata.json").read_text())
        assert len(paths) == cfg.zoo.n_samples and meta["tier"] == zoo.IMAGE_TO_IMAGE
        saved = torch.stack([torch.from_numpy(folder.load(p)).permute(2, 0, 1) for p in paths]) * 2 - 1
        clean, _ = reconstruction.tier_inputs(cfg, meta["degradation"], meta["seed"])
        holdout = to_tensor(pool.sample_crops(cfg.zoo.n_samples, 16, "holdout", rng=meta["seed"] + 2)) * 2 - 1
        assert torch.equal(clean, holdout)
        assert reconstruction.psnr(saved, clean) == pytest.approx(meta["psnr_db"], abs=1e-4)
        train_crops = to_tensor(pool.sample_crops(cfg.zoo.n_samples, 16, "train", rng=meta["seed"] + 2)) * 2 - 1
        assert reconstruction.psnr(saved, train_crops) < meta["psnr_db"] - 5  # made from those crops, not others
        assert meta["psnr_input_db"] is not None and np.isfinite(meta["psnr_start_db"])


def test_psnr_check_flags_a_failing_model_and_keeps_it(tmp_path, caplog):
    cfg = tiny_cfg(**{"zoo.models": ("sr_pixelshuffle", "dcgan_tconv"), "zoo.psnr_bar": 99.0})
    with caplog.at_level("WARNING"):
        artefact = build.zoo_artefact(cfg, ArtefactStore(tmp_path / "cache"))
    samples_dir = artefact.path / "samples"
    assert "below the 99.0 dB bar" in caplog.text
    meta = json.loads((samples_dir / "sr_pixelshuffle" / "metadata.json").read_text())
    assert meta["psnr_passed"] is False and meta["psnr_bar_db"] == 99.0
    failed = zoo.quality_table(samples_dir, 99.0)
    assert list(failed.index) == ["sr_pixelshuffle"]  # the tier only; the failing model is kept
    assert failed.loc["sr_pixelshuffle", "check"] == "FAIL" and not failed.loc["sr_pixelshuffle", "passed"]
    assert sorted(scan_image_folder(samples_dir, min_size=16).sources) == ["dcgan_tconv", "sr_pixelshuffle"]
    assert zoo.quality_table(samples_dir, 0.0).loc["sr_pixelshuffle", "check"] == "pass"
    assert zoo.quality_table(samples_dir, None).loc["sr_pixelshuffle", "check"] == "not enforced"
    table = zoo.model_table(samples_dir)
    assert table.loc["sr_pixelshuffle", "psnr_db"] == meta["psnr_db"] and np.isnan(table.loc["dcgan_tconv", "psnr_db"])
    assert zoo.progress_table(samples_dir).loc["dcgan_tconv", "psnr_rose"] is None


def test_finetune_starts_from_its_parent_on_other_train_photos():
    cfg = tiny_cfg()
    torch.manual_seed(0)
    parent = build.build_model(cfg, "denoise_dncnn")
    child = build.build_model(cfg, "denoise_dncnn_ft", {"denoise_dncnn": parent})
    for key, value in parent.state_dict().items():
        assert torch.equal(value, child.state_dict()[key]), key
    assert child.lr < parent.lr
    seed = build.model_seed(cfg, "denoise_dncnn_ft")
    crops, photos = reconstruction.finetune_crops(cfg, seed)
    pool = PhotoPool.from_config(cfg)
    assert len(photos) == reconstruction.FINETUNE_PHOTOS and set(photos) <= set(pool.names_in("train"))
    assert len(crops) == cfg.zoo.train_crops // 4 and crops.min() >= -1 and crops.max() <= 1
    assert torch.equal(crops, reconstruction.finetune_crops(cfg, seed)[0])


@pytest.mark.parametrize("name", ["ae_kl", "denoise_dncnn"])  # latent noise; input noise and batch norm
def test_resume_after_kill_is_exact(name, tmp_path, kill_after):
    cfg = tiny_cfg()
    data = build.training_crops(cfg)
    straight = fresh_model(cfg, name, seed=1)
    train.train(straight, data, 6, 4, seed=3, work_dir=tmp_path / "a", checkpoint_every=2)
    with pytest.raises(kill_after.error):
        train.train(fresh_model(cfg, name, seed=1), data, 6, 4, seed=3, work_dir=tmp_path / "b",
                    checkpoint_every=2, on_step=kill_after(3))
    resumed = fresh_model(cfg, name, seed=1)
    result = train.train(resumed, data, 6, 4, seed=3, work_dir=tmp_path / "b", checkpoint_every=2)
    assert result.resumed_from == 2 and len(result.history) == 6
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_zoo_resumes_a_killed_finetune(tmp_path, kill_after, caplog):
    """Exactness of the resumed steps is `test_resume_after_kill_is_exact`; here: the zoo skips
    the finished parent, resumes the fine-tune and keeps its before-training measurement."""
    cfg = tiny_cfg(**{"zoo.models": ("denoise_dncnn", "denoise_dncnn_ft")})
    parent_steps, ft_steps = build.model_steps(cfg, "denoise_dncnn"), build.model_steps(cfg, "denoise_dncnn_ft")
    assert ft_steps >= 4
    store = ArtefactStore(tmp_path / "cache")
    with pytest.raises(kill_after.error):  # killed at step 3 of the fine-tune (checkpoint at 2)
        build.zoo_artefact(cfg, store, on_step=kill_after(parent_steps + 3))
    work = store.root / ".work" / stage_key(cfg, build.ZOO)
    assert (work / "denoise_dncnn" / training.DONE).exists()
    assert not (work / "denoise_dncnn_ft" / training.DONE).exists()
    start = (work / "denoise_dncnn_ft" / reconstruction.START_FILE).read_text()
    with caplog.at_level("INFO"):
        artefact = build.zoo_artefact(cfg, store)
    assert "denoise_dncnn already trained" in caplog.text and "resuming from step 2" in caplog.text
    meta = json.loads((artefact.path / "samples" / "denoise_dncnn_ft" / "metadata.json").read_text())
    assert meta["psnr_start_db"] == json.loads(start)["psnr_db"]  # measured before the kill, not after
    assert meta["finetune_of"] == "denoise_dncnn" and meta["steps"] == ft_steps and meta["mean_abs_change"] > 0
    history = json.loads((artefact.path / "samples" / "denoise_dncnn_ft" / "loss_history.json").read_text())
    assert len(history["loss"]) == ft_steps
    assert len(scan_image_folder(artefact.path / "samples", min_size=16).sources["denoise_dncnn_ft"]) == 6
