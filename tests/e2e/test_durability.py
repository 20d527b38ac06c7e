"""Files a user keeps survive a write that fails halfway (#10 item 10).

Each writer runs in a child process whose file-size limit (RLIMIT_FSIZE) makes the kernel
refuse writes past a given size, as a full disk or a quota would: the old file must stay whole,
and no half-written file may appear.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from profiler.models.catalog import load_catalog

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")

LIMITED = """
import resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
{setup}
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
try:
    {call}
except OSError as exc:
    print("refused:", exc)
"""


def run_limited(setup: str, call: str, limit: int, env: dict | None = None) -> str:
    code = LIMITED.format(setup=textwrap.dedent(setup), call=call, limit=limit)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=None)
    assert done.returncode == 0, done.stderr
    return done.stdout


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_quantize_catalogue_is_never_left_cut_in_half(tmp_path):
    catalog = tmp_path / "models.toml"
    catalog.write_text('[[models]]\nname = "first"\nformat = "gguf"\nsource = "first.gguf"\n')
    before = catalog.read_text()
    setup = f"""
from types import SimpleNamespace
from profiler.ladder import quantize
step = quantize.LadderStep(name="second-q8_0", path="second.gguf", quant="Q8_0", sha256="a" * 64,
                           size_bytes=1000, reconstructed_from=None, tensor_types={{"Q8_0": 1.0}})
identity = SimpleNamespace(name="second", quant="F32", n_params=100)
target = Path({str(catalog)!r})
"""
    out = run_limited(setup, "quantize.add_to_catalog(target, [step], identity, None)", len(before) + 40)
    assert "refused" in out
    assert catalog.read_text() == before, "the old catalogue is intact"
    assert [m.name for m in load_catalog(catalog).models] == ["first"]
    assert leftovers(tmp_path, {"models.toml"}) == [], "no temporary file left behind"


def test_quantize_catalogue_append_keeps_old_entries(tmp_path):
    """The whole-file replacement still appends: old entries first, the new one after."""
    catalog = tmp_path / "models.toml"
    catalog.write_text('[[models]]\nname = "first"\nformat = "gguf"\nsource = "first.gguf"\n')
    setup = f"""
from types import SimpleNamespace
from profiler.ladder import quantize
step = quantize.LadderStep(name="second-q8_0", path="second.gguf", quant="Q8_0", sha256="a" * 64,
                           size_bytes=1000, reconstructed_from=None, tensor_types={{"Q8_0": 1.0}})
identity = SimpleNamespace(name="second", quant="F32", n_params=100)
target = Path({str(catalog)!r})
"""
    run_limited(setup, "quantize.add_to_catalog(target, [step], identity, None)", 10**9)
    assert [m.name for m in load_catalog(catalog).models] == ["first", "second-q8_0"]


def test_eval_samples_archive_is_complete_or_absent(tmp_path):
    setup = f"""
import numpy as np
from profiler.quality import evaluate
identity = evaluate.ModelIdentity(name="m", path="m.gguf", sha256="b" * 64, quant="F32", n_params=1,
                                  size_bytes=1, description="m")
result = evaluate.EvalResult(run_id="r1", created="now", command="eval", model=identity, settings={{}},
                             samples={{"nll": np.random.default_rng(0).random(200_000)}})
evaluate.store.record = lambda entries: None  # this test is about the archive only
reports = Path({str(tmp_path / "reports")!r})
"""
    out = run_limited(setup, "evaluate.save(result, reports)", 64 * 1024)
    assert "refused" in out
    folder = tmp_path / "reports" / "r1"
    assert json.loads((folder / "quality.json").read_text())["run_id"] == "r1"
    archive = folder / "quality-samples.npz"
    if archive.exists():  # whatever is there must be a whole archive
        with np.load(archive) as data:
            assert data["nll"].shape == (200_000,)
    assert leftovers(folder, {"quality.json", "quality-samples.npz"}) == []


def test_eval_index_keeps_every_complete_line(tmp_path):
    cache = tmp_path / "cache"
    index = cache / "quality" / "measurements.jsonl"
    index.parent.mkdir(parents=True)
    first = json.dumps({"model_sha256": "c" * 64, "metric": "ppl", "value": 10.0}, sort_keys=True) + "\n"
    index.write_text(first)
    setup = """
from profiler.quality import store
entries = [{"model_sha256": "d" * 64, "metric": "ppl", "value": 12.0, "note": "x" * 4000}]
"""
    env = {**_env(), "PROFILER_CACHE": str(cache)}
    out = run_limited(setup, "store.record(entries)", len(first) + 100, env)
    assert "refused" in out
    assert index.read_text() == first, "no torn line appended"
    run_limited(setup, "store.record(entries)", 10**9, env)
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    assert [e["value"] for e in lines] == [10.0, 12.0]


def _env() -> dict:
    import os

    return dict(os.environ)
