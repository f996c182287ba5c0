import socket

import pytest


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty ZSATTR_DATA_DIR for the test."""
    path = tmp_path / "data"
    monkeypatch.setenv("ZSATTR_DATA_DIR", str(path))
    return path


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


class SimulatedKill(Exception):
    """Raised by a test to stop a training run where a kill would."""


@pytest.fixture
def kill_after():
    """`kill_after(n)`: an `on_step` callback that raises `kill_after.error` at its n-th call
    (after that step's checkpoint decision), as a kill of the process would stop the run."""

    def make(n: int):
        calls = {"n": 0}

        def on_step(done: int) -> None:
            calls["n"] += 1
            if calls["n"] == n:
                raise SimulatedKill(f"simulated kill at call {n} (step {done})")
        return on_step

    make.error = SimulatedKill
    return make
