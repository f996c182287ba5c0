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
                                        ("bank.stepz=3", "unknown key 'bank.stepz'; close matches: bank.steps"),
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


def _cache_with_two_artefacts():
    """Two artefacts in ZSATTR_DATA_DIR's cache, one made to look a year old, plus what a dead
    build leaves (a staging directory and its checkpoints)."""
    from zsattr.core import atomic, config
    from zsattr.core.cache import ArtefactStore
    from zsattr.core.keys import Stage

    store = ArtefactStore()
    arts = [store.get_or_build(config.resolve("smoke"), Stage(name, 1), lambda out, work: (out / "w.bin").write_bytes(
        b"\1" * 2048)) for name in ("old", "new")]
    atomic.write_json(arts[0].path / "manifest.json", {**arts[0].manifest, "created": "2020-01-01T00:00:00+00:00"})
    (store.root / f".building-{arts[1].key}-0123abcd").mkdir()
    (store.root / ".work" / arts[1].key).mkdir(parents=True)
    (store.root / ".work" / arts[1].key / "checkpoint.pt").write_bytes(b"\0" * 100)
    return store, arts


def test_cache_list_shows_artefacts_and_leftovers(data_dir, capsys):
    store, (old, new) = _cache_with_two_artefacts()
    assert cli.main(["cache", "list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["KEY", "STAGE", "PRESET", "SIZE", "CREATED", "COMMIT"]
    line = next(row for row in out.splitlines() if row.startswith(old.key))
    size = sum(p.stat().st_size for p in old.path.iterdir())  # the 2 KiB file and the manifest
    assert line.split()[1:5] == ["old", "smoke", f"{size / 1024:.1f}", "KiB"] and "2020-01-01T00:00:00+00:00" in line
    assert new.manifest["git_commit"][:12] in line
    assert f".building-{new.key}-0123abcd" in out and f".work/{new.key}" in out and "2 artefacts" in out


def test_cache_verify_names_damaged_artefacts_and_exits_1(data_dir, capsys):
    from zsattr.core import atomic

    store, (old, new) = _cache_with_two_artefacts()
    assert cli.main(["cache", "verify"]) == 0
    assert "2 ok, 0 damaged" in capsys.readouterr().out
    (new.path / "w.bin").write_bytes(b"\2" * 2048)
    atomic.write_json(old.path / "manifest.json", {k: v for k, v in old.manifest.items() if k != "sha256"})
    assert cli.main(["cache", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"DAMAGED    {new.key}  {new.path / 'w.bin'} differs" in out and f"NO-HASHES  {old.key}" in out


def test_cache_clean_removes_dead_leftovers_and_old_artefacts_never_a_locked_one(data_dir, capsys):
    import os

    store, (old, new) = _cache_with_two_artefacts()
    before = sorted(p.name for p in store.root.rglob("*"))
    assert cli.main(["cache", "clean", "--older-than", "30", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in store.root.rglob("*")) == before
    assert f"would remove: {old.key}" in out and f"would remove: .work/{new.key}" in out
    held = store.lock(old.key)
    assert held.try_acquire()  # a build of that key is running
    try:
        assert cli.main(["cache", "clean", "--older-than", "30"]) == 0
    finally:
        held.release()
    out = capsys.readouterr().out
    assert f"kept (in use by pid {os.getpid()}" in out and store.is_complete(old.key)
    assert not list(store.root.glob(".building-*")) and not (store.root / ".work" / new.key).exists()
    assert cli.main(["cache", "clean", "--older-than", "30"]) == 0
    assert f"removed: {old.key}" in capsys.readouterr().out
    assert not old.path.exists() and store.is_complete(new.key)


def test_an_unusable_data_dir_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("ZSATTR_DATA_DIR", str(blocker))
    for argv in (["info"], ["cache", "list"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"zsattr {argv[0]}: data directory unusable: {blocker} is a file")
        assert "ZSATTR_DATA_DIR" in err and err.count("\n") == 1


# -- bad arguments: one line on stderr, exit 2, no traceback, and no work started -----------------

@pytest.fixture
def no_work(monkeypatch, data_dir):
    """Every builder a command could start fails the test; yields the (empty) data directory."""
    def must_not_run(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")
    for target in ("zsattr.extractor.stage.train_extractor", "zsattr.attribution.tool.export_extractor",
                   "zsattr.attribution.tool.trained_method", "zsattr.attribution.tool.fingerprint_images",
                   "zsattr.report.chain.papermill.execute_notebook"):
        monkeypatch.setattr(target, must_not_run)
    return data_dir


def _code_and_stderr(argv, capsys) -> tuple[int, str]:
    """main()'s exit code (returned, or raised by the argument parser) and its stderr."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


TRAIN = ["train-extractor", "--preset", "smoke"]


@pytest.mark.parametrize("argv,words", [
    (TRAIN + ["--set", 'image_size="64"'], "image_size must be an integer, got '64'"),
    (TRAIN + ["--set", "photos.holdout_fraction=null"], "photos.holdout_fraction must be a finite number, got null"),
    (TRAIN + ["--set", "seed=abc"], "seed must be an integer, got 'abc'"),
    (TRAIN + ["--set", "device=tpu"], "device must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
    (TRAIN + ["--set", "device=cuda:99"], "device 'cuda:99'"),  # no GPU here, or not 100 of them
    (TRAIN + ["--set", "photos.real_image_dir=/no/such/folder"], "photos.real_image_dir must be an existing folder"),
    (TRAIN + ["--steps", "0"], "argument --steps: expected a whole number >= 1, got '0'"),
    (TRAIN + ["--set", "extractor.p=1"], "extractor.p must be >= 2, got 1"),
    (TRAIN + ["--space", "bogus"], "argument --space: invalid choice 'bogus'; choose one of 'full', 'w/o K'"),
    (TRAIN + ["--space", "w/o u"], "invalid choice 'w/o u'; choose one of 'w/o U', "),
    (TRAIN + ["--set", "nope=1"], "unknown key 'nope' (no close match); `zsattr presets` lists all"),
    (TRAIN + ["--set", "extractor.pp=3"], "unknown key 'extractor.pp'; close matches: extractor.p"),
    (["train-extractor", "--preset", "smok"], "invalid choice 'smok'; choose one of 'smoke', "),
    (["reproduce", "--preset", "laptop"], "invalid choice 'laptop'; choose one of 'smoke', 'cpu', 'paper'"),
    (["reproduce", "--preset", "smoke", "--only", "99"], "no notebook numbered '99'; have ['00', "),
    (["reproduce", "--preset", "smoke", "--from", "9"], "no notebook numbered '9'"),
    (["trian-extractor"], "invalid choice 'trian-extractor'; choose one of 'train-extractor', "),
    (["evaluate", "no/such/folder", "--preset", "smoke"], "does not exist"),
    (["extractor", "export", "-o", "no/such/folder/x.zsx", "--preset", "smoke", "--kind", "linear"],
     "cannot write no/such/folder/x.zsx: its folder"),
    (["extractor", "export", "-o", "x.zsx", "--preset", "smoke", "--set", "bank.stepz=1"],
     "unknown key 'bank.stepz'; close matches: bank.steps"),
    (["verify", "no/a.png", "no/b.png", "--extractor", "cpu"], "not found: no/a.png, no/b.png"),
    (["identify", "--gallery", "no.gallery", "no/a.png"], "not found: no/a.png"),
    (["gallery", "add", "new.gallery", "--name", "m", "no/images", "--extractor", "smoke"], "not found: no/images"),
    (["gallery", "add", "new.gallery", "--name", "m", "x", "--k", "0"], "argument --k: expected a whole number >= 1"),
    (["verify", "x", "y", "--threshold", "2"], "expected auto, none or a cosine similarity in [-1, 1], got '2'"),
    (["verify", "x", "y", "--device", "gpu"], "argument --device: expected auto, cpu, cuda, cuda:N or mps"),
])
def test_bad_arguments_fail_in_one_line_with_exit_2_before_any_work(argv, words, capsys, no_work):
    code, err = _code_and_stderr(argv, capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert words in err, err
    assert len(err) < 400  # the valid choices, never all ~100 config keys
    assert not (no_work / "cache").exists() or not any((no_work / "cache").iterdir())


@pytest.fixture
def two_images(tmp_path):
    from PIL import Image

    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    for i, path in enumerate(paths):
        Image.new("RGB", (64, 64), (i, 2 * i, 3 * i)).save(path)
    return [str(p) for p in paths]


def test_tool_commands_check_extractor_device_and_output_before_any_work(tmp_path, capsys, no_work, two_images):
    """Images that exist, but an --extractor that is no file and no preset, a device torch cannot
    use here, or a gallery to write into a missing folder: refused before an extractor is exported
    (a preset's extractor trains on first use)."""
    (tmp_path / "models" / "m").mkdir(parents=True)
    for argv, words in (
            (["verify", *two_images, "--extractor", "cpuu"],
             "--extractor 'cpuu' is neither an extractor file nor a preset; a preset is one of 'cpu', "),
            (["verify", *two_images, "--extractor", "smoke", "--device", "cuda:99"], "device 'cuda:99'"),
            (["identify", "--gallery", two_images[0], two_images[1], "--extractor", "smoke", "--device", "cuda:99"],
             "device 'cuda:99'"),
            (["gallery", "create", str(tmp_path / "absent" / "g.gallery"), "--from", str(tmp_path / "models"),
              "--extractor", "smoke"], "its folder"),
            (["gallery", "create", str(tmp_path / "g.gallery"), "--from", str(tmp_path / "models"),
              "--extractor", "smoke", "--device", "cuda:99"], "device 'cuda:99'")):
        code, err = _code_and_stderr(argv, capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and words in err, (argv, err)
    assert not (tmp_path / "g.gallery").exists()


def test_a_bad_argument_is_one_line_from_the_console_too(tmp_path):
    """As a user runs it: exit 2, one line on stderr, no traceback (`--steps 0` raised a
    ValueError traceback from inside the stage before)."""
    env = {**__import__("os").environ, "ZSATTR_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-m", "zsattr.cli", "train-extractor", "--preset", "smoke", "--steps", "0"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "data" / "cache").exists()
