import pytest

from zsattr import config


def test_presets_resolve_and_differ():
    smoke, cpu, paper = (config.resolve(p) for p in ("smoke", "cpu", "paper"))
    assert (smoke.image_size, cpu.image_size, paper.image_size) == (32, 64, 128)
    assert smoke.preset == "smoke" and cpu.device == "auto"


def test_unknown_override_is_rejected_with_known_keys():
    with pytest.raises(KeyError, match="image_sise"):
        config.resolve("cpu", image_sise=64)
    with pytest.raises(KeyError, match="known keys"):
        config.resolve("cpu", nope=1)


def test_unknown_preset_and_bad_values():
    with pytest.raises(ValueError, match="unknown preset"):
        config.resolve("laptop")
    with pytest.raises(ValueError, match="multiple of 4"):
        config.resolve("smoke", image_size=30)


def test_config_is_frozen_and_replace_validates():
    cfg = config.resolve("smoke")
    with pytest.raises(Exception):
        cfg.seed = 3
    assert cfg.replace(seed=3).seed == 3
    with pytest.raises(KeyError):
        cfg.replace(sed=3)


def test_stage_key_reads_only_named_fields():
    a = config.resolve("smoke")
    key = config.stage_key(a, "pool", 1, ["image_size"])
    assert key == config.stage_key(a.replace(seed=7), "pool", 1, ["image_size"])
    assert key != config.stage_key(a.replace(image_size=64), "pool", 1, ["image_size"])
    assert key != config.stage_key(a, "pool", 2, ["image_size"])
    assert key != config.stage_key(a, "pool", 1, ["image_size"], extra={"code": "010101"})
    assert key.startswith("pool-") and len(key) == len("pool-") + 16


def test_stage_key_is_stable_across_processes():
    import subprocess
    import sys

    code = "from zsattr import config; print(config.stage_key(config.resolve('cpu'), 's', 1, ['image_size', 'seed']))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == config.stage_key(config.resolve("cpu"), "s", 1, ["seed", "image_size"])


def test_stage_key_rejects_unknown_field():
    with pytest.raises(KeyError):
        config.stage_key(config.resolve("smoke"), "s", 1, ["not_a_field"])


def test_device_auto_falls_back_to_cpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.resolve_device("auto") == "cpu"
    assert config.resolve_device("cuda:1") == "cuda:1"
