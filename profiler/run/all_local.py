"""``profiler run --all-local``: every discovered model, with the usual memory pre-flight.

Models whose estimate exceeds the available memory are left out and listed with the estimate
(``--force`` keeps them); files that cannot run on their own (projectors, adapters, files that
are not GGUF) are listed with the reason.
"""

from __future__ import annotations

from profiler import sources
from profiler.errors import UserError
from profiler.measure.plan import Sweep, expand
from profiler.models.modelinfo import read_model_info
from profiler.platform import device as device_mod
from profiler.run import preflight


def plan_all_local(sweep: Sweep, force: bool = False) -> tuple[list[str], list[str]]:
    """(names to profile, one line per model skipped and why)."""
    found = sources.discover()
    if not found:
        raise UserError("--all-local found no models in the Ollama, Hugging Face, LM Studio or llama.cpp stores "
                        "(see profiler models)")
    device = device_mod.fingerprint()
    tests = expand(sweep, default_threads=device.physical_cores)
    keep, skipped = [], []
    for entry in found:
        if not entry.runnable:
            skipped.append(f"{entry.name}: {entry.note}")
            continue
        try:
            info = read_model_info(entry.path, entry.format)
            if getattr(info, "architecture", None) == "clip":
                raise UserError("a vision projector (mmproj), not a language model")
            worst = preflight.worst_estimate(info, tests, sweep.use_mmap)  # the estimate profile() refuses with
            preflight.check_memory(entry.name, worst, device.ram_available_bytes, force)
        except UserError as exc:
            text = str(exc)
            skipped.append(text if text.startswith(entry.name) else f"{entry.name}: {text}")
            continue
        keep.append(entry.name)
    return keep, skipped


def skipped_warnings(skipped: list[str]) -> list[str]:
    """The run warnings that keep the skipped models (and why, with the estimate) in results.json, the
    store and ``profiler show``: pass them as ``RunOptions.warnings``."""
    return [f"--all-local skipped {line}" for line in skipped]
