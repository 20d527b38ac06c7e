"""A small pinned result of llama.cpp's ``llama-perplexity``, so the agreement tests run without it.

``tests/quality/test_quality_real.py`` checks that ``profiler eval`` computes what llama-perplexity
computes (perplexity, KL-divergence, HellaSwag) on SmolLM2-135M-Instruct Q4_1. Building
llama-perplexity from the llama-cpp-python sdist takes 5 minutes on an idle 2-core machine (the
whole llama.cpp library and common code; much longer on a busy one) and CI starts on a fresh
machine with no cache, so the tool's output is recorded here once, with the cached build, and
pinned in ``tests/quality/fixtures/llama_perplexity_reference.json``: the llama-cpp-python version,
the exact command lines, the sha256 of every input (the model, the two datasets, and the F16
reconstruction the KLD pair needs, which the tests make again with the product's own code), and
what the tool printed. The tests compare our numbers with it every run, and with the live tool
too when a build is cached.

Re-record after changing llama-cpp-python's pin (the tests fail with this command otherwise):

    .venv/bin/python benchmarks/llama_reference.py [--out PATH]

It builds (or reuses) llama-perplexity via ``llamacpp_tools.build_tool`` and takes ~2 minutes on an
idle 2-core machine once the tool exists.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.metadata
import json
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from profiler.models import catalog  # noqa: E402

FIXTURE = ROOT / "tests" / "quality" / "fixtures" / "llama_perplexity_reference.json"
RECORD_COMMAND = ".venv/bin/python benchmarks/llama_reference.py"
DATASETS = ROOT.parent / "shared" / "datasets"
MODEL = "smollm2-135m-instruct-q4_1"
# Small enough for CI (about 2 minutes of evaluation on a quiet 2-core machine, ours and theirs
# alike), large enough to mean something: 4 x 255 scored tokens, 100 HellaSwag tasks.
SETTINGS = {"ctx": 512, "batch": 2048, "ppl_chunks": 4, "kld_chunks": 4, "hellaswag_tasks": 100, "threads": 2}

# Placeholders, filled per machine: {model} the Q4_1, {reference} its F16 reconstruction,
# {wikitext} / {hellaswag} the datasets, {base} llama-perplexity's KLD base file.
_COMMON = ["-t", str(SETTINGS["threads"]), "-ngl", "0", "-c", str(SETTINGS["ctx"]), "-b", str(SETTINGS["batch"])]
COMMANDS = {
    "ppl": ["-m", "{model}", *_COMMON, "-f", "{wikitext}", "--chunks", str(SETTINGS["ppl_chunks"])],
    "kld_base": ["-m", "{reference}", *_COMMON, "-f", "{wikitext}", "--chunks", str(SETTINGS["kld_chunks"]),
                 "--kl-divergence-base", "{base}"],
    "kld": ["-m", "{model}", *_COMMON, "--chunks", str(SETTINGS["kld_chunks"]), "--kl-divergence-base", "{base}",
            "--kl-divergence"],
    "hellaswag": ["-m", "{model}", "-t", str(SETTINGS["threads"]), "-ngl", "0", "-f", "{hellaswag}", "--hellaswag",
                  "--hellaswag-tasks", str(SETTINGS["hellaswag_tasks"])],
}


class ParseError(RuntimeError):
    """llama-perplexity's output lacks a line this module reads."""


def _float(pattern: str, text: str) -> float:
    match = re.search(pattern, text, re.M)
    if not match:
        raise ParseError(f"llama-perplexity output has no match for {pattern!r}:\n{text[-1500:]}")
    return float(match.group(1))


def parse_ppl(text: str) -> dict:
    """The final estimate, its +/- (one standard error) and the running PPL after each chunk."""
    running = re.findall(r"\[(\d+)\]([0-9.]+),", text)
    return {"ppl": _float(r"Final estimate: PPL = ([0-9.]+)", text),
            "ppl_uncertainty": _float(r"Final estimate: PPL = [0-9.]+ \+/- ([0-9.]+)", text),
            "running_ppl": [float(v) for _, v in running]}


def parse_kld(text: str) -> dict:
    """The statistics ``--kl-divergence`` prints (values, each ``±`` one standard error)."""
    num = r"(-?[0-9.]+)"
    return {
        "mean_kld": _float(rf"Mean\s+KLD:\s+{num}", text),
        "mean_kld_uncertainty": _float(rf"Mean\s+KLD:\s+[-0-9.]+ ±\s+{num}", text),
        "median_kld": _float(rf"Median\s+KLD:\s+{num}", text),
        "p99_kld": _float(rf"99\.0%\s+KLD:\s+{num}", text),
        "max_kld": _float(rf"Maximum KLD:\s+{num}", text),
        "same_top_pct": _float(rf"Same top p:\s+{num}", text),
        "same_top_pct_uncertainty": _float(rf"Same top p:\s+[-0-9.]+ ±\s+{num}", text),
        "rms_dp_pct": _float(rf"RMS Δp\s+:\s+{num}", text),
        "ppl_q": _float(rf"Mean PPL\(Q\)\s+:\s+{num}", text),
        "ppl_base": _float(rf"Mean PPL\(base\)\s+:\s+{num}", text),
    }


def parse_hellaswag(text: str, n_tasks: int) -> dict:
    """Accuracy after ``n_tasks`` tasks, and each task's outcome ("1" right, "0" wrong) in the order
    llama-perplexity drew them, recovered from its running accuracy (printed to 8 decimals)."""
    rows = {int(i): float(acc) for i, acc in re.findall(r"^(\d+)\t([0-9.]+)%", text, re.M)}
    if sorted(rows) != list(range(1, n_tasks + 1)):
        raise ParseError(f"llama-perplexity printed {len(rows)} HellaSwag rows, not 1..{n_tasks}:\n{text[-1500:]}")
    correct = [round(rows[i] * i / 100) for i in range(1, n_tasks + 1)]
    outcomes = "".join(str(b - a) for a, b in zip([0, *correct], correct, strict=False))
    if set(outcomes) - {"0", "1"}:
        raise ParseError(f"the running HellaSwag accuracy does not step by whole tasks: {outcomes}")
    return {"n_tasks": n_tasks, "accuracy_pct": rows[n_tasks], "n_correct": correct[-1], "task_correct": outcomes}


def tensor_sha256(path: Path) -> str:
    """sha256 over every tensor's name, type, shape and bytes: what the model computes with.

    The F16 reconstruction's file bytes also depend on the gguf writer's version (alignment,
    metadata order) while its tensors do not, so this is the identity the tests compare."""
    import gguf

    digest = hashlib.sha256()
    for t in gguf.GGUFReader(str(path), "r").tensors:
        digest.update(f"{t.name}|{t.tensor_type.name}|{list(map(int, t.shape))}\n".encode())
        digest.update(t.data.tobytes())
    return digest.hexdigest()


def make_reference(out_dir: Path) -> Path:
    """The KLD base model: the Q4_1's F16 reconstruction, by the product's own code (as
    ``profiler compare-quants`` pairs them)."""
    from profiler.ladder.quantize import build_ladder

    return Path(build_ladder(MODEL, [], out_dir=out_dir).reference.path)


def fill(args: list[str], places: dict[str, Path | str]) -> list[str]:
    return [a.format(**{k: str(v) for k, v in places.items()}) for a in args]


def run_tool(tool: Path, args: list[str]) -> str:
    done = subprocess.run([str(tool), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"llama-perplexity {' '.join(args[:4])}... failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout + done.stderr


def _input(path: Path) -> dict:
    return {"file": path.name, "sha256": catalog.sha256_file(path)}


def record(tool: Path, work: Path) -> dict:
    from llamacpp_tools import tool_dir, tool_system_info

    model = catalog.resolve(catalog.load_catalog().get(MODEL))
    reference = make_reference(work / "ladder")
    wiki, hs = DATASETS / "wikitext-2-raw-test.txt", DATASETS / "hellaswag_val_full.txt"
    places = {"model": model, "reference": reference, "wikitext": wiki, "hellaswag": hs, "base": work / "base.bin"}
    out = {name: run_tool(tool, fill(args, places)) for name, args in COMMANDS.items()}  # kld_base before kld
    build = json.loads((tool_dir() / "build.json").read_text())
    return {
        "what": "llama-perplexity's output on SmolLM2-135M-Instruct Q4_1, pinned for tests/quality/test_quality_real.py",
        "recorded": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "record_command": RECORD_COMMAND,
        "llama_cpp_python": importlib.metadata.version("llama-cpp-python"),
        "gguf": importlib.metadata.version("gguf"),
        "tool": {"cmake_options": build.get("cmake_options"), "system_info": tool_system_info()},
        "settings": SETTINGS,
        "inputs": {
            "model": {"name": MODEL, **_input(model)},
            "reference": {**_input(reference), "tensor_sha256": tensor_sha256(reference),
                          "made_by": "profiler.ladder.quantize.build_ladder (the F16 reconstruction of the model)"},
            "wikitext": _input(wiki), "hellaswag": _input(hs),
        },
        "commands": {name: {"args": args, "as_run": shlex.join(["llama-perplexity", *fill(args, places)])}
                     for name, args in COMMANDS.items()},
        "results": {
            "ppl": parse_ppl(out["ppl"]),
            "kld_base_ppl": parse_ppl(out["kld_base"]),  # the F16's own perplexity, printed while saving the base
            "kld": parse_kld(out["kld"]),
            "hellaswag": parse_hellaswag(out["hellaswag"], SETTINGS["hellaswag_tasks"]),
        },
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=FIXTURE, help=f"where to write (default {FIXTURE.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    if not (DATASETS / "wikitext-2-raw-test.txt").exists() or not (DATASETS / "hellaswag_val_full.txt").exists():
        print(f"error: datasets not found in {DATASETS}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(HERE))
    from llamacpp_tools import build_tool

    tool = build_tool("llama-perplexity")
    with tempfile.TemporaryDirectory(prefix="llama-reference-") as tmp:
        result = record(tool, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result["results"], indent=2, ensure_ascii=False))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
