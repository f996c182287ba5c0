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


def test_evaluate_checks_the_folder_before_any_work(tmp_path, capsys, monkeypatch):
    from PIL import Image

    def chain_must_not_run(*args, **kwargs):
        raise AssertionError("the chain started on a bad folder")
    monkeypatch.setattr("zsattr.report.chain.run_chain", chain_must_not_run)
    assert cli.main(["evaluate", str(tmp_path / "absent"), "--preset", "smoke"]) == 2
    assert "does not exist" in capsys.readouterr().err
    for name, n in (("model_a", 12), ("model_b", 3)):
        (tmp_path / "gens" / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (40, 40), (i, 2 * i, 3 * i)).save(tmp_path / "gens" / name / f"{i}.png")
    assert cli.main(["evaluate", str(tmp_path / "gens"), "--preset", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "at least 6 readable images per model" in err and "'model_b': 3" in err


def test_evaluate_runs_notebook_05_on_the_folder_into_its_own_reports(tmp_path, capsys, monkeypatch):
    from PIL import Image

    from zsattr.report import chain as reproduce
    calls = []

    def fake_chain(preset, **kwargs):
        calls.append((preset, kwargs))
        return [reproduce.NotebookResult("05_zero_shot", 1.0, "ok", kwargs["out_dir"] / "05_zero_shot.ipynb")]
    monkeypatch.setattr("zsattr.report.chain.run_chain", fake_chain)
    for name in ("model_a", "model_b"):
        (tmp_path / "gens" / name).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (40, 40), (i, 2 * i, 3 * i)).save(tmp_path / "gens" / name / f"{i}.png")
    assert cli.main(["evaluate", str(tmp_path / "gens"), "--preset", "smoke", "--without-zoo"]) == 0
    [(preset, kwargs)] = calls
    assert preset == "smoke" and kwargs["only"] == ["05"]
    assert kwargs["parameters"] == {"images": str((tmp_path / "gens").resolve()), "with_zoo": False}
    assert kwargs["out_dir"].parts[-2:] == ("folders", "gens")
    assert "2 models, 12 images" in capsys.readouterr().out


def test_info_reports_versions_paths_and_the_cache(capsys, data_dir):
    import json

    (data_dir / "cache" / "stage-abc").mkdir(parents=True)
    (data_dir / "cache" / "stage-abc" / "w.bin").write_bytes(b"\0" * 2**20)
    assert cli.main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cache_artefacts"] == 1 and info["cache_mb"] == 1.0 and info["data"] == str(data_dir.resolve())
    assert {"zsattr", "python", "torch", "device", "torch_threads", "repository"} <= set(info)


def test_tool_commands_check_their_arguments_before_any_work(tmp_path, capsys):
    for argv in (["identify", "--gallery", "g", "x.png", "--top", "0"],
                 ["verify", "a", "b", "--batch-size", "-3"],
                 ["verify", "a", "b", "--threshold", "maybe"],
                 ["gallery", "create", "g", "--from", "d", "--crop", "resize"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2
    assert cli.main(["extractor", "export", "-o", str(tmp_path / "x.zsx"), "--preset", "smoke",
                     "--set", "nope=1"]) == 2
    assert "nope" in capsys.readouterr().err and not (tmp_path / "x.zsx").exists()
