"""``profiler compare-quants --existing MODEL``: the quants already on disk, as they are.

One model's files in one store (an Ollama model's tags, a Hugging Face repo's GGUF files, an
LM Studio model folder) are evaluated and timed without quantizing anything. The file with
the most bits per weight is the KLD reference, and the report says which one it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from profiler import sources
from profiler.errors import UserError
from profiler.ladder import compare_quants as cq
from profiler.ladder import quantize as quant_mod
from profiler.models.ggufinfo import GGUFInfo, read_info
from profiler.sources.base import Found


def bits_per_weight(info: GGUFInfo) -> float:
    return info.tensor_bytes * 8 / info.n_params if info.n_params else 0.0


def ladder(group: str) -> list[tuple[Found, GGUFInfo]]:
    """The group's runnable files, highest precision first (the reference)."""
    members = [(m, read_info(m.path)) for m in sources.group_members(group)]
    members = [(m, info) for m, info in members if info.architecture != "clip"]
    if len(members) < 2:
        only = members[0][0].name if members else "none"
        raise UserError(f"{group} has one runnable GGUF file on disk ({only}); --existing compares two or more "
                        "quants already present (without --existing, compare-quants makes a ladder)")
    return sorted(members, key=lambda mi: (bits_per_weight(mi[1]), mi[0].size_bytes), reverse=True)


def compare_existing(group: str, options: cq.CompareOptions,
                     progress: Callable[[str], None] | None = None) -> cq.CompareResult:
    say = progress or (lambda text: None)
    members = ladder(group)
    ref, ref_info = members[0]
    ref = sources.resolve(ref.name, say)  # verified: its sha256 names the reference file
    out_dir = Path(options.out_dir) if options.out_dir else quant_mod.quants_dir("existing")
    ref_file = cq.reference_file(out_dir, options.text, options.n_ctx, options.n_chunks, options.top_k, ref.sha256)
    roles = [(m.name, options.catalog_path, "reference" if i == 0 else "quant") for i, (m, _) in enumerate(members)]
    rows, runs, board = cq.measure(roles, (ref.name, None), ref_file, options, say, None)
    note = (f"the highest-precision file present: {ref_info.quant_type}, {bits_per_weight(ref_info):.2f} bits per "
            f"weight (sha256 {ref.sha256[:12]}); nothing was quantized")
    result = cq.CompareResult(
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), command=options.command, base=group,
        reference=ref.name, reference_is_reconstruction=False, reference_note=note, catalog_path="",
        kld_reference_file=str(ref_file), rows=rows,
        speed_run_ids=[r.run_id for r in runs],
        settings={"existing": [m.name for m, _ in members], "n_ctx": options.n_ctx, "n_chunks": options.n_chunks,
                  "n_tasks": options.n_tasks, "text": options.text or "built-in",
                  "speed": f"-p {options.n_prompt} -n {options.n_gen} -r {options.repetitions}"},
        notes=list(board.notes),
    )
    cq.save(result, options.reports_dir, runs[0].run_id if runs else "compare")
    return result
