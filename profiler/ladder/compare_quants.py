"""``profiler compare-quants BASE``: the ladder's size, speed, energy and quality in one table.

1. ``quantize.build_ladder``: the float reference (an F16 *reconstruction* when BASE is itself
   quantized) and one file per type;
2. the reference's top-k log-probabilities on the text are saved once (``eval --save-reference``);
3. every member (the original BASE, the reference, each quant) is evaluated on the reference's
   tokens: PPL, KLD against the reference, and HellaSwag when a task file is given;
4. every member is timed with ``profiler run``'s loop (decode/prefill t/s, peak RSS, energy);
5. the scoreboard merges both (HellaSwag measured on each exact file drives it).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from profiler import atomic, paths
from profiler.analysis import scoring, scoring_io
from profiler.ladder import quantize as quant_mod
from profiler.quality import data as data_mod
from profiler.quality.evaluate import EvalOptions, EvalResult, evaluate
from profiler.quality.kld import DEFAULT_TOP_K


@dataclass
class CompareOptions:
    types: list[str]
    text: str | None = None
    n_ctx: int = 512
    n_chunks: int | None = 20
    hellaswag: str | None = None
    n_tasks: int | None = 200
    n_prompt: int = 128
    n_gen: int = 32
    repetitions: int = 3
    threads: int | None = None
    cores: list[str] = field(default_factory=list)  # --cores values (big, little, all, N-M), as profiler run
    cpu_mask: list[str] = field(default_factory=list)  # -C values (hex masks), as profiler run
    top_k: int = DEFAULT_TOP_K
    out_dir: Path | None = None
    catalog_path: Path | None = None
    reports_dir: Path = field(default_factory=paths.reports_dir)
    price_per_kwh: float = scoring.DEFAULT_PRICE_PER_KWH
    verbose: bool = False
    command: str = ""


@dataclass
class QuantRow:
    name: str
    role: str  # "original", "reference", "quant"
    quant: str
    size_bytes: int
    decode_tps: float | None
    prefill_tps: float | None
    peak_rss_bytes: int | None
    j_per_decode_token: float | None
    energy_note: str
    ppl: float | None
    ppl_uncertainty: float | None
    kld_mean: float | None
    kld_uncertainty: float | None
    same_top_pct: float | None
    hellaswag_pct: float | None
    hellaswag_ci95_pct: list[float] | None
    accuracy_pct_per_gb_peak: float | None
    accuracy_pct_per_j_per_1k_tokens: float | None
    on_frontier: bool | None
    eval_run_id: str
    reconstructed_from: str | None = None
    quality_rank: int | None = None  # 1 + members significantly better (HellaSwag, else KLD/PPL: scoring notes)
    hellaswag_setting: str | None = None  # shots, variant and task subset behind hellaswag_pct
    setting: str | None = None  # the timed configuration: quant, threads and the cores they ran on (scoring.setting_text)


@dataclass
class CompareResult:
    created: str
    command: str
    base: str
    reference: str
    reference_is_reconstruction: bool
    reference_note: str | None
    catalog_path: str
    kld_reference_file: str
    rows: list[QuantRow]
    speed_run_ids: list[str]
    settings: dict
    notes: list[str] = field(default_factory=list)
    kind: str = "compare-quants"
    schema_version: int = 1

    def to_dict(self) -> dict:
        from profiler.results.schema import json_safe

        return json_safe(asdict(self))


def reference_file(out_dir: Path, text: str | None, n_ctx: int, n_chunks: int | None, top_k: int, ref_sha: str) -> Path:
    _, source = data_mod.resolve_text(text)
    chunks = "all" if n_chunks is None else str(n_chunks)
    return out_dir / f"kld-ref-{ref_sha[:12]}-{source.sha256[:12]}-c{n_ctx}-n{chunks}-k{top_k}.npz"


def compare_quants(base: str, options: CompareOptions, progress: Callable[[str], None] | None = None) -> CompareResult:
    say = progress or (lambda text: None)
    ladder = quant_mod.build_ladder(base, options.types, options.out_dir, None, options.catalog_path,
                                    options.threads, options.verbose, say)
    out_dir = Path(ladder.catalog_path).parent
    ladder_cat = Path(ladder.catalog_path)
    ref = ladder.reference
    ref_name, ref_cat = (ref.name, ladder_cat) if ladder.reference_is_reconstruction else (base, options.catalog_path)
    ref_file = reference_file(out_dir, options.text, options.n_ctx, options.n_chunks, options.top_k, ref.sha256)
    members = [(base, options.catalog_path, "original")]
    if ladder.reference_is_reconstruction:
        members.append((ref.name, ladder_cat, "reference"))
    members += [(s.name, ladder_cat, "quant") for s in ladder.steps]
    rows, runs, board = measure(members, (ref_name, ref_cat), ref_file, options, say,
                                [p for p in (options.catalog_path, ladder_cat) if p] or None)
    result = CompareResult(
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), command=options.command, base=base,
        reference=ref_name, reference_is_reconstruction=ladder.reference_is_reconstruction,
        reference_note=ref.reconstructed_from, catalog_path=str(ladder_cat), kld_reference_file=str(ref_file), rows=rows,
        speed_run_ids=[r.run_id for r in runs],
        settings={"types": options.types, "n_ctx": options.n_ctx, "n_chunks": options.n_chunks, "n_tasks": options.n_tasks,
                  "text": options.text or "built-in", "speed": f"-p {options.n_prompt} -n {options.n_gen} -r {options.repetitions}"},
        notes=list(board.notes),
    )
    save(result, options.reports_dir, runs[0].run_id if runs else "compare")
    return result


def measure(members, reference: tuple[str, Path | None], ref_file: Path, options: CompareOptions, say,
            catalogs: list | None) -> tuple[list[QuantRow], list, scoring.Scoreboard]:
    """Evaluate every member (name, catalogue, role) against ``ref_file`` (saved first from
    ``reference`` = (name, catalogue) when missing), time them all and score them on one board."""
    from profiler.models.catalog import merged_catalog

    common = dict(n_ctx=options.n_ctx, n_chunks=options.n_chunks, threads=options.threads, hellaswag=options.hellaswag,
                  n_tasks=options.n_tasks, reports_dir=options.reports_dir, verbose=options.verbose, command=options.command)
    results: dict[str, EvalResult] = {}
    ref_name, ref_cat = reference
    if not ref_file.exists():
        say(f"saving the reference log-probabilities of {ref_name}")
        ref_file.parent.mkdir(parents=True, exist_ok=True)
        results[ref_name] = evaluate(ref_name, EvalOptions(text=options.text, save_reference=ref_file, top_k=options.top_k,
                                                           catalog_path=ref_cat, **common), say)
    for name, cat, _ in members:
        if name not in results:
            say(f"evaluating {name}")
            results[name] = evaluate(name, EvalOptions(kld_reference=ref_file, catalog_path=cat, **common), say)
    runs = _speed(members, options, say)
    board = scoring_io.board([c for run in runs for c in scoring.configurations(run.rows, run.run_id)], "hellaswag",
                             options.price_per_kwh, merged_catalog(catalogs))
    return [_row(name, role, results[name], board) for name, _, role in members], runs, board


def _speed(members, options: CompareOptions, say):
    from profiler.measure.plan import Sweep
    from profiler.report import save_run
    from profiler.run import orchestrate
    from profiler.run.options import Callbacks, RunOptions

    sweep = Sweep(n_prompt=[options.n_prompt], n_gen=[options.n_gen], repetitions=options.repetitions,
                  n_threads=[options.threads] if options.threads else [], cores=list(options.cores),
                  cpu_mask=list(options.cpu_mask))
    runs = []
    by_catalog: dict = {}
    for name, cat, _ in members:
        by_catalog.setdefault(cat, []).append(name)
    for cat, names in by_catalog.items():
        say(f"timing {', '.join(names)}")
        run_options = RunOptions(catalog_path=cat, bandwidth_probe=False, reports_dir=options.reports_dir,
                                 verbose=options.verbose, command=options.command)
        publish = partial(save_run, reports_dir=options.reports_dir)
        runs.append(orchestrate.profile(names, sweep, run_options, Callbacks(message=say), publish=publish))
    return runs


def _row(name: str, role: str, ev: EvalResult, board: scoring.Scoreboard) -> QuantRow:
    score = _fastest(board, name)
    c = score.config if score else None
    hs = next((t for t in ev.tasks if t.task == "hellaswag"), None)
    p, k = ev.perplexity, ev.kld
    return QuantRow(
        name=name, role=role, quant=ev.model.quant, size_bytes=ev.model.size_bytes,
        decode_tps=c.decode_tps if c else None, prefill_tps=c.prefill_tps if c else None,
        peak_rss_bytes=c.peak_rss_bytes if c else None, j_per_decode_token=c.j_per_decode_token if c else None,
        energy_note=c.energy_note if c else "not timed",
        ppl=p.ppl if p else None, ppl_uncertainty=p.ppl_uncertainty if p else None,
        kld_mean=k.mean_kld if k else None, kld_uncertainty=k.mean_kld_uncertainty if k else None,
        same_top_pct=k.same_top_pct if k else None,
        hellaswag_pct=hs.accuracy_pct if hs else None, hellaswag_ci95_pct=[hs.ci95_low_pct, hs.ci95_high_pct] if hs else None,
        accuracy_pct_per_gb_peak=score.accuracy_pct_per_gb_peak if score else None,
        accuracy_pct_per_j_per_1k_tokens=score.accuracy_pct_per_j_per_1k_tokens if score else None,
        on_frontier=score.on_frontier if score else None, eval_run_id=ev.run_id,
        reconstructed_from=ev.model.reconstructed_from, quality_rank=score.quality_rank if score else None,
        hellaswag_setting=score.accuracy.setting_text() if score and score.accuracy else None,
        setting=scoring.setting_text(c) if c else None,
    )


def _fastest(board: scoring.Scoreboard, name: str) -> scoring.Score | None:
    """The member's configuration with the highest decode t/s: with several thread counts or
    placements timed, the row shows the one to run (its setting names threads and cores)."""
    mine = [s for s in board.scores if s.config.model_name == name]
    return max(mine, key=lambda s: s.config.decode_tps if s.config.decode_tps is not None else -1.0, default=None)


def markdown(result: CompareResult) -> str:
    def f(v, fmt, missing="n/a"):
        return missing if v is None else format(v, fmt)

    lines = [f"# Quantization ladder of {result.base}", ""]
    if result.reference_is_reconstruction or result.reference_note:  # a reconstruction, or the best file on disk
        lines += [f"**Reference:** {result.reference} - {result.reference_note}.", ""]
    else:
        lines += [f"**Reference:** {result.reference} (original float weights).", ""]
    lines += ["| model | role | quant | timed as | size MiB | decode t/s | peak MiB | J/token | PPL | KLD | same top % | HellaSwag % | quality rank | acc/GB | Pareto |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result.rows:
        energy = "unavailable" if r.j_per_decode_token is None else f"{r.j_per_decode_token:.4g}" + ("" if r.energy_note.startswith("measured") else " (est.)")
        hs = "n/a" if r.hellaswag_pct is None else f"{r.hellaswag_pct:.1f} [{r.hellaswag_ci95_pct[0]:.1f}, {r.hellaswag_ci95_pct[1]:.1f}]"
        pareto = "n/a" if r.on_frontier is None else ("frontier" if r.on_frontier else "dominated")
        kld = "reference" if r.role == "reference" or (r.role == "original" and result.reference == r.name) else (
            f"{f(r.kld_mean, '.5f')} ± {f(r.kld_uncertainty, '.5f')}")
        lines.append(
            f"| {r.name} | {r.role} | {r.quant} | {r.setting or 'not timed'} | {r.size_bytes / 2**20:.1f} | {f(r.decode_tps, '.1f')} | "
            f"{f(r.peak_rss_bytes and r.peak_rss_bytes / 2**20, '.0f')} | {energy} | "
            f"{f(r.ppl, '.3f')} ± {f(r.ppl_uncertainty, '.3f')} | {kld} | "
            f"{f(r.same_top_pct, '.2f')} | {hs} | {f(r.quality_rank, 'd')} | {f(r.accuracy_pct_per_gb_peak, '.1f')} | {pareto} |"
        )
    hs_settings = sorted({r.hellaswag_setting for r in result.rows if r.hellaswag_setting})
    lines += ["", f"Settings: {json.dumps(result.settings)}"] + [f"HellaSwag: {t}" for t in hs_settings]
    lines += ["Quality rank: 1 + the members significantly better; HellaSwag first, KLD or PPL where it cannot tell.", ""]
    lines += [f"- {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def save(result: CompareResult, reports_dir: Path, run_id: str) -> Path:
    folder = Path(reports_dir) / run_id
    atomic.write_user_file(folder / "compare-quants.json", json.dumps(result.to_dict(), indent=2) + "\n")
    atomic.write_user_file(folder / "compare-quants.md", markdown(result))
    return folder
