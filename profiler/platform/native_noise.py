"""Keep native libraries' stderr chatter out of the user's output.

Native runtimes print straight to file descriptor 2 while loading (ONNX Runtime's CPU
detection on boards whose /sys it cannot read, for example), which would turn a one-line
``error:`` into ten lines. ``captured`` holds that output back; with ``-v`` it is shown.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata


@contextmanager
def captured(show: bool = False) -> Iterator[None]:
    """Redirect fd 2 into a temporary file for the block; replay it afterwards when ``show``."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (an embedded interpreter): nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if show:
                sink.seek(0)
                text = sink.read().decode(errors="replace")
                if text:
                    sys.stderr.write(text)


def package_version(distribution: str) -> str | None:
    """An installed distribution's version from its metadata, without importing it."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
