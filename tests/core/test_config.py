import dataclasses

import pytest

from zsattr.core import config


def test_presets_resolve_and_differ():
    smoke, cpu, paper = (config.resolve(p) for p in ("smoke", "cpu", "paper"))
    assert (smoke.image_size, cpu.image_size, paper.image_size) == (32, 64, 128)
    assert smoke.preset == "smoke" and cpu.device == "auto"
    assert (smoke.bank.steps, cpu.bank.steps, paper.bank.steps) == (24, 32, 2000)
    assert paper.fingerprint.residual_filter == "dncnn" and paper.extractor.backbone == "resnet50"
    assert cpu.extractor.backbone == "resnet18" and cpu.fingerprint.spectrum == "raw" and cpu.bank.seeds == 4


def test_defaults_are_the_smoke_scale_and_presets_state_only_differences():
    assert config.PRESETS["smoke"] == {}
    assert config.resolve("smoke") == config.Config()
    defaults = config.flat_values(config.Config())
    for name, preset in config.PRESETS.items():
        for key, value in preset.items():
            assert defaults[key] != (list(value) if isinstance(value, list) else value), (name, key)


def test_dotted_keys_override_stage_fields_and_replace_keeps_the_rest():
    cfg = config.resolve("cpu", seed=3, **{"bank.steps": 8, "zoo.models": ["vae", "ldm"]})
    assert cfg.seed == 3 and cfg.bank.steps == 8 and cfg.zoo.models == ("vae", "ldm")
    assert cfg.bank.seeds == config.resolve("cpu").bank.seeds
    again = cfg.replace(**{"photos.downscale": 1})
    assert again.photos.downscale == 1.0 and isinstance(again.photos.downscale, float)
    assert again.bank.steps == 8 and again.preset == "cpu"
    assert config.get(again, "bank.steps") == 8 and "lora.rank" in config.keys()


def test_unknown_override_is_rejected_with_known_keys():
    with pytest.raises(KeyError, match="image_sise"):
        config.resolve("cpu", image_sise=64)
    with pytest.raises(KeyError, match="known keys"):
        config.resolve("cpu", **{"bank.stepz": 1})
    with pytest.raises(KeyError, match="preset"):
        config.resolve("cpu").replace(preset="paper")


@pytest.mark.parametrize("key,value,error,words", [
    ("seed", "abc", TypeError, "seed must be an integer"),
    ("image_size", "64", TypeError, "image_size must be an integer"),
    ("image_size", 30, ValueError, "multiple of 4"),
    ("device", "tpu", ValueError, "device must be"),
    ("photos.holdout_fraction", None, TypeError, "photos.holdout_fraction must be a finite number"),
    ("photos.holdout_fraction", 1.0, ValueError, "photos.holdout_fraction must be < 1.0"),
    ("bank.steps", -1, ValueError, "bank.steps must be >= 0"),
    ("extractor.p", 1, ValueError, "extractor.p must be >= 2"),
    ("extractor.amp", 1, TypeError, "extractor.amp must be true or false"),
    ("extractor.ce_over", "everything", ValueError, "must be one of"),
    ("fingerprint.highpass_kernel", 4, ValueError, "odd"),
    ("zoo.models", "vae", TypeError, "zoo.models must be a list"),
    ("evaluation.kshots", [1, 0], ValueError, "evaluation.kshots must be >= 1"),
])
def test_types_and_ranges_are_checked_with_the_key_named(key, value, error, words):
    with pytest.raises(error, match=words):
        config.resolve("smoke", **{key: value})


def test_config_is_frozen():
    cfg = config.resolve("smoke")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.bank.steps = 3
    assert cfg.replace(seed=3).seed == 3 and cfg.seed == 0


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset"):
        config.resolve("laptop")


def test_keyed_fields_leave_out_what_never_changes_an_artefact():
    cfg = config.resolve("cpu")
    assert "workers" not in cfg.bank.keyed() and "steps" in cfg.bank.keyed()
    assert "real_image_dir" not in cfg.photos.keyed()  # hashed by contents instead (keys.py)
    assert "steps" not in cfg.extractor.keyed()  # the stage keys the steps it actually trains


def test_device_auto_falls_back_to_cpu(monkeypatch):
    import torch

    from zsattr.core.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cuda:1") == "cuda:1"
