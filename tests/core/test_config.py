import dataclasses
import re

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


def test_unknown_keys_are_refused_in_one_line_with_close_matches_not_every_key():
    with pytest.raises(config.ConfigError) as info:
        config.resolve("cpu", image_sise=64)
    message = str(info.value)
    assert message.startswith("unknown key 'image_sise'; close matches: image_size")
    assert "zsattr presets" in message and "\n" not in message
    assert "lora.checkpoint_every" not in message and len(message) < 200  # not all the keys
    with pytest.raises(config.ConfigError, match=r"unknown key 'bank.stepz'; close matches: bank.steps"):
        config.resolve("cpu", **{"bank.stepz": 1})
    with pytest.raises(config.ConfigError, match=r"unknown key 'nope' \(no close match\); `zsattr presets`"):
        config.resolve("cpu", nope=1)
    # a bare field name finds its sections
    assert {"bank.steps", "extractor.steps"} <= set(config.close_keys("steps"))
    with pytest.raises(config.ConfigError, match="preset"):
        config.resolve("cpu").replace(preset="paper")


@pytest.mark.parametrize("key,value,words", [
    ("seed", "abc", "seed must be an integer, got 'abc'"),
    ("seed", True, "seed must be an integer, got True"),
    ("seed", 1.5, "seed must be an integer, got 1.5"),
    ("image_size", "64", "image_size must be an integer, got '64'"),
    ("image_size", 30, "image_size must be a multiple of 4, got 30"),
    ("image_size", 4, "image_size must be >= 8, got 4"),
    ("device", "tpu", "device must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
    ("device", "cuda:x", "device must be auto, cpu, cuda, cuda:N or mps, got 'cuda:x'"),
    ("photos.holdout_fraction", None, "photos.holdout_fraction must be a finite number, got null/None"),
    ("photos.holdout_fraction", 1.0, "photos.holdout_fraction must be < 1.0, got 1.0"),
    ("photos.downscale", "2", "photos.downscale must be a finite number, got '2'"),
    ("photos.downscale", float("nan"), "photos.downscale must be a finite number, got nan"),
    ("bank.steps", -1, "bank.steps must be >= 0, got -1"),
    ("bank.train_size", 18, "bank.train_size must be a multiple of 4, got 18"),
    ("extractor.p", 1, "extractor.p must be >= 2, got 1"),
    ("extractor.amp", 1, "extractor.amp must be true or false, got 1"),
    ("extractor.ce_over", "everything", "extractor.ce_over must be one of"),
    ("extractor.backbone", "resnet5", "extractor.backbone must be one of 'resnet50', .* got 'resnet5'"),
    ("fingerprint.highpass_kernel", 4, "fingerprint.highpass_kernel must be odd, got 4"),
    ("zoo.models", "vae", "zoo.models must be a list of str, got 'vae'"),
    ("zoo.models", [], "zoo.models must name at least one model"),
    ("zoo.models", ["vae", "ddpn"], "zoo.models must be one of 'ddpm', .* got 'ddpn'"),
    ("lora.bases", ["stylegan"], "lora.bases must be one of 'stylegan_mini', .* got 'stylegan'"),
    ("evaluation.kshots", [1, 0], "evaluation.kshots must be >= 1, got 0"),
    ("evaluation.kshots", [1, "2"], r"evaluation.kshots\[1\] must be an integer, got '2'"),
    ("evaluation.ablation_spaces", ["w/o q"], "evaluation.ablation_spaces must be one of .* got 'w/o q'"),
])
def test_types_and_ranges_are_checked_in_one_line_naming_key_value_and_expectation(key, value, words):
    with pytest.raises(config.ConfigError, match=words) as info:
        config.resolve("smoke", **{key: value})
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_accepted_values_are_converted_to_the_annotated_type():
    cfg = config.resolve("smoke", **{"photos.downscale": 2, "zoo.psnr_bar": None, "device": "cuda:3",
                                     "evaluation.kshots": [1, 3], "extractor.amp": True})
    assert cfg.photos.downscale == 2.0 and isinstance(cfg.photos.downscale, float)
    assert cfg.zoo.psnr_bar is None and cfg.device == "cuda:3" and cfg.evaluation.kshots == (1, 3)
    assert config.resolve("smoke", device="mps").device == "mps"


def test_every_key_refuses_a_value_of_the_wrong_type_naming_the_key():
    for key in config.keys():
        with pytest.raises(config.ConfigError) as info:
            config.resolve("smoke", **{key: {"not": "a setting"}})
        assert str(info.value).startswith(key), (key, str(info.value))


def _fields():
    yield from ((f.name, f) for f in dataclasses.fields(config.Config) if f.name not in config.SECTIONS)
    for name, cls in config.SECTIONS.items():
        yield from ((f"{name}.{f.name}", f) for f in dataclasses.fields(cls))


def test_every_declared_bound_and_choice_is_enforced():
    """Each field's metadata is checked: a value just outside each bound, and a value that is no
    choice, are refused with the key named."""
    checked = 0
    for key, f in _fields():
        meta = f.metadata
        outside = [meta["ge"] - 1 if meta.get("ge") is not None else None,
                   meta["gt"] if meta.get("gt") is not None else None,
                   meta["le"] + 1 if meta.get("le") is not None else None,
                   meta["lt"] if meta.get("lt") is not None else None,
                   "no-such-choice" if meta.get("choices") else None]
        is_tuple = str(f.type).startswith("tuple")
        for value in (v for v in outside if v is not None):
            with pytest.raises(config.ConfigError, match=f"^{re.escape(key)}"):
                config.resolve("smoke", **{key: [value] if is_tuple else value})
            checked += 1
    assert checked > 90  # every section's bounds, not a few


def test_every_preset_passes_validation_and_a_bad_preset_is_named(monkeypatch):
    for name, values in config.PRESETS.items():
        cfg = config.resolve(name)
        for key, value in values.items():  # each preset value is kept as checked, in its annotated type
            got = config.get(cfg, key)
            assert got == (tuple(value) if isinstance(value, list) else value), (name, key)
    monkeypatch.setitem(config.PRESETS, "cpu", {**config.PRESETS["cpu"], "bank.steps": -1})
    with pytest.raises(config.ConfigError, match=r"^preset 'cpu': bank.steps must be >= 0, got -1$"):
        config.resolve("cpu")
    monkeypatch.setitem(config.PRESETS, "cpu", {"bank.stepz": 1})
    with pytest.raises(config.ConfigError, match=r"^preset 'cpu': unknown key 'bank.stepz'; close matches"):
        config.resolve("cpu")


def test_declared_choices_agree_with_the_code_they_name():
    """zoo.models / lora.bases choices are the zoo registry; ablation spaces are the bank's subsets."""
    from zsattr.synthesis.codes import ablation_subsets
    from zsattr.zoo.registry import REGISTRY

    assert set(config.FULL_ZOO) == set(REGISTRY)
    assert config.SPACES == tuple(ablation_subsets([]))


def test_config_is_frozen():
    cfg = config.resolve("smoke")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.bank.steps = 3
    assert cfg.replace(seed=3).seed == 3 and cfg.seed == 0


def test_unknown_preset_is_refused_with_close_matches_first():
    with pytest.raises(config.ConfigError, match="unknown preset 'laptop'; choose one of 'smoke', 'cpu', 'paper'$"):
        config.resolve("laptop")
    with pytest.raises(config.ConfigError, match="unknown preset 'papr'; choose one of 'paper', .*closest first"):
        config.resolve("papr")


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
