"""Fixtures shared by the image-reading tests."""

import pytest
from PIL import EpsImagePlugin


@pytest.fixture
def eps_loader_calls(monkeypatch):
    """A list that records every call of Pillow's EPS loader (which runs Ghostscript where installed)."""
    opened = []
    original = EpsImagePlugin.EpsImageFile._open

    def spy(self):
        opened.append(self)
        return original(self)
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", spy)
    return opened
