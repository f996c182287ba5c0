"""The real-model zoo: registry vs presets, every model trains and samples, exact resume after
a kill, per-model resume of the whole zoo, the folder layout evaluation reads."""

import json

import numpy as np
import pytest
import torch

from zsattr import zoo
from zsattr.core import config, training
from zsattr.core.cache import ArtefactStore
from zsattr.core.keys import stage_key
from zsattr.images.folders import decode_image, scan_image_folder
from zsattr.zoo import build, samples
from zsattr.zoo import training as train

TINY = {"image_size": 16, "zoo.width": 4, "zoo.batch_size": 4, "zoo.train_crops": 32, "zoo.n_samples": 6,
        "zoo.ddim_steps": 3, "zoo.steps": 4, "zoo.checkpoint_every": 2}


def tiny_cfg(**overrides):
    return config.resolve("smoke", **{**TINY, **overrides})


def test_presets_name_registered_models():
    for preset in config.PRESETS:
        cfg = config.resolve(preset)
        assert set(cfg.zoo.models) <= set(zoo.REGISTRY), preset
        zoo.training_order(cfg.zoo.models)  # requirements satisfied
    cpu = config.resolve("cpu")
    assert len(set(cpu.zoo.models)) >= 14
    entries = [zoo.entry(n) for n in cpu.zoo.models]
    families = {e.family for e in entries}
    assert {"GAN", "VAE", "flow", "diffusion", "transformer"} <= families
    gan_upsampling = {e.upsampling for e in entries if e.architecture == "DCGAN"}
    assert {"transposed conv", "nearest + conv", "bilinear + conv"} <= gan_upsampling
    twins = {e.twin_of for e in entries if e.twin_of}
    assert len({zoo.entry(t).architecture for t in twins}) >= 2, "two architectures with seed twins"
    for e in entries:
        if e.twin_of:
            twin = zoo.entry(e.twin_of)
            assert e.build is twin.build or e.architecture == twin.architecture
            assert e.seed != twin.seed


def test_training_order_checks_requirements():
    assert zoo.training_order(["ldm", "vae"]) == ["vae", "ldm"]
    with pytest.raises(ValueError, match="needs 'vae'"):
        zoo.training_order(["ldm"])
    with pytest.raises(KeyError, match="no zoo model named"):
        zoo.training_order(["dcgan_tconv", "stylegan9"])


@pytest.mark.parametrize("name", sorted(zoo.REGISTRY))
def test_every_model_trains_and_samples(name):
    cfg = tiny_cfg()
    torch.manual_seed(0)
    trained = {d: build.build_model(cfg, d) for d in zoo.entry(name).requires}
    model = build.build_model(cfg, name, trained)
    data = model.training_data(torch.rand(8, 3, 16, 16) * 2 - 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = model.train_step(data[:4], model.make_optimizers())
    assert losses and all(np.isfinite(v) for v in losses.values())
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "one step changed no weight"
    assert set(model.monitored_losses) <= set(losses)
    out = samples.draw(model, 3, seed=5)
    assert out.shape == (3, 3, 16, 16)
    assert torch.isfinite(out).all()
    assert torch.equal(out, samples.draw(model, 3, seed=5)), "sampling is reproducible from the seed"
    assert 0 < model.generator_parameters() <= model.total_parameters()


@pytest.mark.parametrize("name", ["dcgan_tconv", "ddpm"])
def test_resume_after_kill_is_exact(name, tmp_path, kill_after):
    cfg = tiny_cfg()
    data = torch.rand(16, 3, 16, 16) * 2 - 1

    def fresh():
        torch.manual_seed(1)
        return build.build_model(cfg, name)

    straight = fresh()
    train.train(straight, data, 6, 4, seed=3, work_dir=tmp_path / "a", checkpoint_every=2)

    with pytest.raises(kill_after.error):
        train.train(fresh(), data, 6, 4, seed=3, work_dir=tmp_path / "b", checkpoint_every=2,
                    on_step=kill_after(3))
    resumed = fresh()  # a new process would rebuild the model from scratch
    result = train.train(resumed, data, 6, 4, seed=3, work_dir=tmp_path / "b", checkpoint_every=2)
    assert result.resumed_from == 2
    assert len(result.history) == 6 and result.history[-1]["step"] == 6
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_vae_loss_decreases(tmp_path):
    cfg = tiny_cfg()
    torch.manual_seed(0)
    model = build.build_model(cfg, "vae")
    data = build.training_crops(cfg)
    result = train.train(model, data, 40, 8, seed=0, work_dir=tmp_path, checkpoint_every=100)
    summary = train.loss_summary(result)
    assert summary["loss"]["final"] < 0.9 * summary["loss"]["first"]


def test_sliced_wasserstein_known_answers():
    a = torch.rand(32, 3, 16, 16) * 2 - 1
    assert samples.sliced_wasserstein(a, a) == 0.0
    near, far = samples.sliced_wasserstein(a, a + 0.1), samples.sliced_wasserstein(a, a + 0.5)
    assert 0 < near < far
    assert far == pytest.approx(5 * near, rel=1e-4)  # a shift moves every projection linearly


def test_pngs_are_lossless(tmp_path):
    images = torch.rand(3, 3, 8, 8) * 2 - 1
    paths = samples.write_pngs(images, tmp_path)
    expected = samples.to_uint8(images)
    for path, array in zip(paths, expected):
        assert np.array_equal(np.round(decode_image(path) * 255).astype(np.uint8), array)


def test_zoo_resumes_per_model_and_reads_as_a_folder(tmp_path, caplog, kill_after):
    cfg = tiny_cfg(**{"zoo.models": ("vae", "ldm", "dcgan_nearest")})
    store = ArtefactStore(tmp_path / "cache")
    with pytest.raises(kill_after.error):  # vae: 6 steps; killed at step 3 of ldm, the next
        build.zoo_artefact(cfg, store, on_step=kill_after(6 + 3))
    key = stage_key(cfg, build.ZOO)
    work = store.root / ".work" / key
    vae_done = work / "vae" / training.DONE
    assert vae_done.exists() and not (work / "ldm" / training.DONE).exists()
    assert (work / "ldm" / training.CHECKPOINT).exists()
    vae_record = json.loads(vae_done.read_text())
    with caplog.at_level("INFO"):
        artefact = build.zoo_artefact(cfg, store)
    assert "vae already trained" in caplog.text and "resuming from step 2" in caplog.text
    assert artefact.built_now and not work.exists()

    folder = scan_image_folder(artefact.path / "samples", min_size=16)
    assert sorted(folder.sources) == sorted(cfg.zoo.models)
    assert all(len(paths) == cfg.zoo.n_samples for paths in folder.sources.values())
    for name in cfg.zoo.models:
        meta = json.loads((artefact.path / "samples" / name / samples.METADATA).read_text())
        for key_ in ("family", "architecture", "upsampling", "generator_parameters", "seed",
                     "steps", "losses", "train_seconds"):
            assert key_ in meta, key_
        assert meta["steps"] == build.model_steps(cfg, name)
    table = zoo.model_table(artefact.path / "samples")
    assert list(table.index) == sorted(cfg.zoo.models)
    records = {r["name"]: r for r in json.loads((artefact.path / "zoo.json").read_text())}
    assert records["vae"] == vae_record, "the finished model was not retrained"

    again = build.zoo_artefact(cfg, store)
    assert not again.built_now and again.path == artefact.path
    model = zoo.load_generator(cfg, "ldm", store)
    first = decode_image(folder.sources["ldm"][0])
    drawn = samples.to_uint8(zoo.sample(model, cfg.zoo.n_samples, build.model_seed(cfg, "ldm") + 2))[0]
    assert np.array_equal(np.round(first * 255).astype(np.uint8), drawn), "loaded model reproduces its samples"
    with pytest.raises(KeyError):
        zoo.load_generator(cfg, "glow", store)
