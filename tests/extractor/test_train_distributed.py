"""The real extractor stage under torchrun: 2 CPU processes (gloo), smoke preset shrunk further."""
import json
import subprocess
import sys

import pytest

TINY = ["image_size=16", "bank.codes=4", "bank.seeds=2", "bank.steps=4", "bank.train_size=8",
        "bank.batch=4", "bank.check_every=2", "bank.pool_crops=32", "extractor.p=2", "extractor.k=2",
        "extractor.checkpoint_every=2", "extractor.crop_pool=16", "extractor.heldout_codes=0.0",
        "extractor.heldout_seeds=0.0", "device=cpu"]


@pytest.mark.slow
def test_train_extractor_on_two_processes(tmp_path):
    env = {"ZSATTR_DATA_DIR": str(tmp_path), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "zsattr.cli", "train-extractor", "--preset", "smoke", "--steps", "4", "--set", *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["world_size"] == 2 and summary["steps"] == 4 and summary["batch"] == 2 * 2 * 2
    assert summary["n_classes"] == 8
    # the single-process stage finds the artefact the two processes published
    again = subprocess.run([sys.executable, "-m", "zsattr.cli", "train-extractor", "--preset", "smoke",
                            "--steps", "4", "--set", *TINY], capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout[again.stdout.index("{"):])["artefact"] == summary["artefact"]
