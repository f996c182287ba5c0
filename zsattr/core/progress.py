"""Progress bars that stay quiet where nobody watches (papermill, nbval, CI logs)."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def interactive() -> bool:
    if os.environ.get("ZSATTR_PROGRESS") in ("0", "1"):
        return os.environ["ZSATTR_PROGRESS"] == "1"
    return sys.stderr.isatty()


def progress(iterable=None, **kwargs):
    """tqdm, disabled unless stderr is a terminal (override with ZSATTR_PROGRESS=0/1)."""
    kwargs.setdefault("disable", not interactive())
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)
