"""LoRA variants of zoo models: every supported family adapts and fine-tunes without touching
its base, variants use holdout photos only, the stage resumes per variant after a kill exactly
as an uninterrupted build, and the folder/metadata/table/loader contract holds."""

import json

import numpy as np
import pytest
import torch

from zsattr.core import atomic, config, training
from zsattr.core.cache import ArtefactStore
from zsattr.core.keys import stage_key
from zsattr.images.folders import decode_image, scan_image_folder
from zsattr.images.photos import PhotoPool
from zsattr.zoo import build, lora, registry, samples
from zsattr.zoo import variants as lv

TINY = {"image_size": 16, "zoo.width": 4, "zoo.batch_size": 4, "zoo.train_crops": 32, "zoo.n_samples": 4,
        "zoo.ddim_steps": 3, "zoo.steps": 4, "zoo.checkpoint_every": 2, "zoo.models": ("dcgan_tconv", "ddpm"),
        "lora.bases": ("ddpm", "dcgan_tconv"), "lora.variants": 2, "lora.steps": 6, "lora.batch": 4,
        "lora.crops": 16, "lora.n_samples": 5, "lora.checkpoint_every": 2, "lora.rank": 2}


def tiny_cfg(**overrides):
    return config.resolve("smoke", **{**TINY, **overrides})


def test_presets_are_valid():
    for preset in config.PRESETS:
        cfg = config.resolve(preset)
        lv.check_config(cfg)
        assert len(cfg.lora.bases) >= 2 and cfg.lora.variants >= 2
        families = {registry.entry(b).family for b in cfg.lora.bases}
        assert {"GAN", "diffusion"} <= families, preset
    with pytest.raises(ValueError, match="not in zoo.models"):
        lv.check_config(tiny_cfg(**{"lora.bases": ("glow",)}))
    with pytest.raises(ValueError, match="wired for"):
        lv.check_config(tiny_cfg(**{"zoo.models": ("vae", "ddpm"), "lora.bases": ("vae",)}))


def test_variant_photos_are_holdout_and_differ():
    cfg = tiny_cfg()
    pool = PhotoPool.from_config(cfg)
    holdout = set(pool.names_in("holdout"))
    subsets = [lv.variant_photos(cfg, i, pool) for i in range(3)]
    assert all(len(s) == cfg.lora.photos and set(s) <= holdout for s in subsets)
    assert len({tuple(s) for s in subsets}) == 3
    assert set(lv.variant_photos(cfg.replace(**{"lora.photos": 0}), 0, pool)) == holdout
    crops = lv.variant_crops(cfg, 1, pool)
    assert crops.shape == (cfg.lora.crops, 3, 16, 16) and crops.min() >= -1 and crops.max() <= 1
    assert torch.equal(crops, lv.variant_crops(cfg, 1, pool))
    assert not torch.equal(crops, lv.variant_crops(cfg, 0, pool))


@pytest.mark.parametrize("name", sorted(n for n, e in registry.REGISTRY.items()
                                        if e.family in lv.SUPPORTED_FAMILIES))
def test_every_supported_family_fine_tunes_only_its_adapters(name):
    cfg = tiny_cfg()
    torch.manual_seed(0)
    trained = {d: build.build_model(cfg, d) for d in registry.entry(name).requires}
    model = build.build_model(cfg, name, trained)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    crops = torch.rand(8, 3, 16, 16) * 2 - 1
    torch.manual_seed(1)
    before = samples.draw(model, 2, seed=3) if name != "stylegan_mini" else None
    names = lv.adapt(model, cfg, seed=0)
    assert names and lora.lora_parameters(model)
    if before is not None:  # (StyleGAN draws per-pixel noise, so only the seeded draw is comparable)
        assert torch.equal(samples.draw(model, 2, seed=3), before), "a fresh adapter is the base"
    data = lv.fine_tuning_data(model, crops)
    model.train()
    losses = model.train_step(data[:4], model.make_optimizers())
    assert all(np.isfinite(v) for v in losses.values())
    state = model.state_dict()
    critic_moved = False
    for key, value in base.items():
        wrapped = next((k for k in state if k.replace(".base.", ".") == key and k != key), key)
        if key.startswith("critic."):
            critic_moved |= not torch.equal(state[wrapped], value)
        else:
            assert torch.equal(state[wrapped], value), f"{key} moved: only adapters (and a GAN critic) train"
    assert critic_moved == hasattr(model, "critic")
    assert any(not torch.equal(p, torch.zeros_like(p)) for k, p in state.items() if k.endswith("lora_B"))


def test_stage_resumes_per_variant_and_reads_as_a_folder(tmp_path, caplog, kill_after):
    cfg = tiny_cfg()
    store = ArtefactStore(tmp_path / "cache")
    ddpm_steps = lv.variant_steps(cfg, "ddpm")
    with pytest.raises(kill_after.error):  # in the second variant
        lv.lora_artefact(cfg, store, on_step=kill_after(ddpm_steps + 3))
    key = stage_key(cfg, lv.LORA_VARIANTS)
    work = store.root / ".work" / key
    first, second = lv.variant_name("ddpm", 0), lv.variant_name("ddpm", 1)
    assert (work / first / training.DONE).exists() and not (work / second / training.DONE).exists()
    assert (work / second / training.CHECKPOINT).exists()
    record = json.loads((work / first / training.DONE).read_text())
    with caplog.at_level("INFO"):
        artefact = lv.lora_artefact(cfg, store)
    assert f"{first} already trained" in caplog.text and "resuming from step 2" in caplog.text
    assert artefact.built_now and not work.exists()
    records = {r["name"]: r for r in json.loads((artefact.path / "lora_variants.json").read_text())}
    assert records[first] == record, "the finished variant was not retrained"

    # the interrupted build ends with the same adapters as an uninterrupted one
    straight = lv.lora_artefact(cfg, ArtefactStore(tmp_path / "straight"))
    for name in lv.variant_names(cfg):
        a = atomic.torch_load(artefact.path / "adapters" / f"{name}.pt")
        b = atomic.torch_load(straight.path / "adapters" / f"{name}.pt")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name

    folder = scan_image_folder(artefact.path / "samples", min_size=16)
    assert sorted(folder.sources) == sorted(lv.variant_names(cfg))
    assert all(len(p) == cfg.lora.n_samples for p in folder.sources.values())
    table = lv.variant_table(artefact.path / "samples")
    assert list(table.index) == sorted(lv.variant_names(cfg))
    assert [lv.base_of(n) for n in table.index] == list(table["base"])
    assert (table["mean_abs_change"] > 0).all() and (table["swd_to_base"] > 0).all()
    for name, meta in records.items():
        assert set(meta["photos"]) <= set(PhotoPool.from_config(cfg).names_in("holdout"))
        assert meta["steps"] == lv.variant_steps(cfg, meta["base"])
        assert meta["lora_parameters"] == sum(v.numel() for v in atomic.torch_load(
            artefact.path / "adapters" / f"{name}.pt").values())
    assert lv.build_lora_variants(cfg, store) == artefact.path / "samples"

    name = lv.variant_name("dcgan_tconv", 1)
    model = lv.load_lora_variant(cfg, name, store)
    drawn = samples.to_uint8(samples.draw(model, cfg.lora.n_samples, records[name]["seed"] + 2))[0]
    first_png = decode_image(sorted(folder.sources[name])[0])
    assert np.array_equal(np.round(first_png * 255).astype(np.uint8), drawn), "loaded variant reproduces its samples"
    base = build.load_generator(cfg, "dcgan_tconv", store)
    merged = lora.merge_lora(model).state_dict()
    assert merged.keys() == base.state_dict().keys(), "merging gives back the base's layout"
    assert not torch.equal(merged["generator.fc.weight"], base.state_dict()["generator.fc.weight"])
    assert torch.equal(merged["critic.fc.weight"], base.state_dict()["critic.fc.weight"]), \
        "a variant is the base generator plus adapters (its critic is not part of it)"
    with pytest.raises(KeyError):
        lv.load_lora_variant(cfg, "ddpm__lora7", store)
