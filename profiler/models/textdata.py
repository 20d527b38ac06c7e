"""Built-in English text that exists on every machine without a download.

CPython ships its reference-manual topics as ``pydoc_data.topics`` (~1 MB of prose and
code). Where a distribution strips it, the standard library's own docstrings stand in.
"""

from __future__ import annotations

import functools

FALLBACK_MODULES = ("json", "argparse", "collections", "functools", "itertools", "os", "pathlib", "re", "subprocess", "typing")


@functools.lru_cache(maxsize=1)
def builtin_text() -> tuple[str, str]:
    """(text, name of its source)."""
    try:
        from pydoc_data.topics import topics

        return "\n\n".join(topics[key] for key in sorted(topics)), "pydoc_data.topics"
    except ImportError:
        pass
    import importlib
    import inspect

    parts = []
    for name in FALLBACK_MODULES:
        module = importlib.import_module(name)
        for _, obj in sorted(vars(module).items()):
            doc = inspect.getdoc(obj) if callable(obj) else None
            if doc:
                parts.append(doc)
    return "\n\n".join(parts), "stdlib docstrings"
