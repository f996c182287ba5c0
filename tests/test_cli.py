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
