"""`profiler run --all-local` keeps the models it skipped in the run's warnings, with the reason and
the memory estimate: results.json, the results store and `profiler show` have them, not only the
stderr of the moment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gguf

from profiler.results.schema import load_run
from profiler.results.store import Store
from support.tinymodel import write_tiny_llama

FAST = ["-p", "8", "-n", "4", "-r", "1", "--no-bandwidth", "--no-score", "--idle", "0"]
HUGE = "lmstudio:publisher/huge-GGUF/huge-f32.gguf"
TINY = "lmstudio:publisher/tiny-GGUF/tiny-f32.gguf"


def write_huge_header(path: Path) -> Path:
    """A tiny model whose header says its FFN is 4 billion wide: the memory pre-flight reads the
    header, so it estimates terabytes and the model will not fit on any machine that runs the tests."""
    write_tiny_llama(path, name="huge")
    reader = gguf.GGUFReader(path, "r+")  # in place, as gguf-py's own gguf_set_metadata does
    field = reader.fields["llama.feed_forward_length"]
    field.parts[field.data[0]][0] = 4_000_000_000
    del reader  # flush the memory map
    return path


def lmstudio_home(base: Path) -> Path:
    models = base / "home" / ".lmstudio" / "models" / "publisher"
    (models / "tiny-GGUF").mkdir(parents=True)
    (models / "huge-GGUF").mkdir(parents=True)
    write_tiny_llama(models / "tiny-GGUF" / "tiny-f32.gguf", name="tiny")
    write_huge_header(models / "huge-GGUF" / "huge-f32.gguf")
    return base / "home"


def profiler(*args, work: Path, home: Path) -> subprocess.CompletedProcess:
    empty = work / "empty"
    empty.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "OLLAMA_MODELS": str(empty), "HF_HUB_CACHE": str(empty),
           "LLAMA_CACHE": str(empty), "PROFILER_CACHE": str(work / "cache"), "PROFILER_REPORTS": str(work / "reports"),
           "PROFILER_DB": str(work / "reports" / "profiler.db")}
    return subprocess.run([sys.executable, "-m", "profiler", *args], cwd=work, capture_output=True, text=True, env=env,
                          timeout=600)


def test_skipped_models_are_stored_in_the_run_warnings(tmp_path):
    home = lmstudio_home(tmp_path)
    done = profiler("run", "--all-local", *FAST, "-o", "json", work=tmp_path, home=home)
    assert done.returncode == 0, done.stderr
    assert {r["model_name"] for r in json.loads(done.stdout)} == {TINY}
    assert f"skipped: {HUGE} needs about" in done.stderr  # said at once, before the run

    (folder,) = [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]
    saved = load_run(folder / "results.json")
    (warning,) = [w for w in saved.warnings if HUGE in w]
    assert warning.startswith(f"--all-local skipped {HUGE} needs about") and "MiB (weights" in warning
    assert "MiB is available" in warning  # the estimate and what this machine has

    store = Store(tmp_path / "reports" / "profiler.db")
    try:
        assert warning in store.load_run(saved.run_id).warnings
    finally:
        store.close()

    shown = profiler("show", saved.run_id, work=tmp_path, home=home)
    assert shown.returncode == 0, shown.stderr
    assert f"--all-local skipped {HUGE} needs about" in " ".join(shown.stdout.split())  # however the lines wrap

