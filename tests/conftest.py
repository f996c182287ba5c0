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
