import subprocess
import sys

import pytest

from zsattr import cli


def test_presets_command_prints_every_preset(capsys):
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "smoke" in out and "paper" in out and "image_size" in out


def test_reproduce_rejects_unknown_notebook_number(capsys):
    assert cli.main(["reproduce", "--preset", "smoke", "--only", "99"]) == 2
    assert "no notebook numbered" in capsys.readouterr().err


def test_scan_reports_a_bad_layout(tmp_path, capsys):
    assert cli.main(["scan", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_console_script_is_installed():
    import shutil

    exe = shutil.which("zsattr") or str(__import__("pathlib").Path(sys.executable).parent / "zsattr")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "reproduce" in out.stdout


def test_unknown_preset_is_refused():
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--preset", "laptop"])


@pytest.mark.parametrize("pair,words", [("seed=abc", "seed must be an integer"),
                                        ("device=tpu", "device must be"),
                                        ("bank.stepz=3", "unknown config key"),
                                        ("extractor.p=1", "extractor.p must be >= 2")])
def test_bad_overrides_are_refused_before_any_work(pair, words, capsys, data_dir):
    assert cli.main(["train-extractor", "--preset", "smoke", "--set", pair]) == 2
    assert words in capsys.readouterr().err
    assert not (data_dir / "cache").exists() or not any((data_dir / "cache").iterdir())


def test_set_takes_dotted_keys_with_json_values():
    assert cli._parse_overrides(["bank.steps=8", 'zoo.models=["vae","ldm"]', "photos.real_image_dir=/x"]) == {
        "bank.steps": 8, "zoo.models": ["vae", "ldm"], "photos.real_image_dir": "/x"}


def test_a_negative_training_seed_is_refused_before_any_work(capsys, data_dir):
    assert cli.main(["train-extractor", "--preset", "smoke", "--training-seed", "-1"]) == 2
    assert "--training-seed must be >= 0" in capsys.readouterr().err
    assert not (data_dir / "cache").exists() or not any((data_dir / "cache").iterdir())
