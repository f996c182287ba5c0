"""torchrun set-up: the process group gets a timeout long enough to wait for rank 0's builds."""

import datetime

import pytest
import torch

from zsattr.core import distributed


def test_a_single_process_initialises_nothing(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda **kw: pytest.fail("initialised"))
    assert distributed.init_from_env("cpu") == distributed.DistInfo(0, 1, "cpu")


def test_the_process_group_waits_a_day_by_default_not_nccls_ten_minutes(monkeypatch):
    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("ZSATTR_DIST_TIMEOUT_MINUTES", raising=False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda **kw: seen.update(kw))
    assert distributed.init_from_env("cpu") == distributed.DistInfo(1, 2, "cpu")
    assert seen == {"backend": "gloo", "timeout": datetime.timedelta(hours=24)}


def test_the_timeout_is_set_from_the_environment_and_checked(monkeypatch):
    monkeypatch.setenv("ZSATTR_DIST_TIMEOUT_MINUTES", "90")
    assert distributed.timeout_from_env() == datetime.timedelta(minutes=90)
    for bad in ("0", "-5", "soon", "nan"):
        monkeypatch.setenv("ZSATTR_DIST_TIMEOUT_MINUTES", bad)
        with pytest.raises(ValueError, match="ZSATTR_DIST_TIMEOUT_MINUTES must be a positive number"):
            distributed.timeout_from_env()
