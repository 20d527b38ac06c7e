"""Terminal output for ``eval``, ``score`` and ``compare-quants`` (rich tables; missing numbers
read "n/a" or "unavailable", never 0)."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from profiler.analysis import scoring
from profiler.analysis.scoring import PARETO_NOISE, Recommendation, Scoreboard
from profiler.quality.evaluate import EvalResult


def _f(value, fmt: str, missing: str = "n/a") -> str:
    return missing if value is None else format(value, fmt)


def _pm(value, unc, fmt: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:{fmt}} ± {unc:{fmt}}" if unc is not None else f"{value:{fmt}}"


def print_eval(result: EvalResult, console: Console) -> None:
    m = result.model
    console.print(f"[bold]{m.name}[/bold] {m.quant}, {m.size_bytes / 2**20:.1f} MiB, sha256 {m.sha256[:12]}…")
    if m.reconstructed_from:
        console.print(f"[yellow]reconstruction:[/yellow] {m.reconstructed_from}")
    p = result.perplexity
    if p is not None:
        text = result.text or {}
        console.print(
            f"PPL = {p.ppl:.4f} ± {p.ppl_uncertainty:.5f}  ({p.n_chunks}/{p.n_chunks_available} chunks of {p.n_ctx} tokens, "
            f"{p.n_tokens_scored} scored; text {text.get('name')} sha256 {str(text.get('sha256'))[:12]}…)"
        )
        console.print(f"  eval {p.eval_seconds:.1f} s, {p.eval_tokens_per_s:.1f} tokens/s ({p.n_seq} chunks per batch)")
    if result.kld is not None:
        _print_kld(result, console)
    for t in result.tasks:
        console.print(
            f"{t.task}: {t.accuracy_pct:.2f}% [{t.ci95_low_pct:.2f}%, {t.ci95_high_pct:.2f}%] (95% Wilson) - "
            f"{t.n_correct}/{t.n_tasks} tasks, {t.selection}; {t.metric}; {t.tasks_per_s:.2f} tasks/s"
        )
    if result.reference_saved:
        console.print(f"KLD reference saved: {result.reference_saved}")
    for w in dict.fromkeys(result.warnings):
        console.print(f"[yellow]warning:[/yellow] {w}")


def _print_kld(result: EvalResult, console: Console) -> None:
    k, ref = result.kld, result.kld.reference
    note = f" [yellow](a reconstruction: {ref['reconstructed_from']})[/yellow]" if ref.get("reconstructed_from") else ""
    console.print(f"KL-divergence against {ref.get('model')} ({ref.get('quant')}){note}, {k.n_tokens} tokens "
                  f"(reference: top-{ref.get('top_k')} + {ref.get('tail_samples')} tail samples per token)")
    rows = [
        ("Mean PPL(Q)", _pm(k.ppl_q, k.ppl_q_uncertainty, ".6f")),
        ("Mean PPL(base)", _pm(k.ppl_base, k.ppl_base_uncertainty, ".6f")),
        ("Cor(ln PPL(Q), ln PPL(base))", f"{_f(k.ln_ppl_correlation_pct, '.2f')}%"),
        ("Mean ln(PPL(Q)/PPL(base))", _pm(k.ln_ppl_ratio, k.ln_ppl_ratio_uncertainty, ".6f")),
        ("Mean PPL(Q)/PPL(base)", _pm(k.ppl_ratio, k.ppl_ratio_uncertainty, ".6f")),
        ("Mean PPL(Q)-PPL(base)", _pm(k.ppl_diff, k.ppl_diff_uncertainty, ".6f")),
        ("Mean KLD", _pm(k.mean_kld, k.mean_kld_uncertainty, ".6f")),
        # llama-perplexity's ± above takes every token as independent; the chunks' spread does not
        (f"  ± from the {k.n_chunks} chunks' means", f"± {k.mean_kld_chunk_uncertainty:.6f}"
         if math.isfinite(k.mean_kld_chunk_uncertainty) else "unavailable: needs 2 chunks or more"),
    ]
    rows += [(f"{name} KLD" if name in ("max", "median", "min") else f"{name}% KLD", f"{v:.6f}") for name, v in k.kld_percentiles.items()]
    rows.append(("Mean Δp", f"{_pm(k.mean_dp_pct, k.mean_dp_pct_uncertainty, '.3f')} %"))
    rows += [(f"{name} Δp" if name in ("max", "median", "min") else f"{name}% Δp", f"{v:.3f}%") for name, v in k.dp_percentiles_pct.items()]
    rows.append(("RMS Δp", f"{_pm(k.rms_dp_pct, k.rms_dp_pct_uncertainty, '.3f')} %"))
    rows.append(("Same top p", f"{_pm(k.same_top_pct, k.same_top_pct_uncertainty, '.3f')} %"))
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def print_scoreboard(board: Scoreboard, console: Console, title: str | None = None, wide: bool = False) -> None:
    """The scoreboard fitted to the console (``wide``: every column); saved JSON keeps every field."""
    from profiler.report import terminal, terminal_views

    title = title or f"scoreboard ({board.metric}; electricity {board.price_per_kwh:g}/kWh)"
    terminal.print_table(console, title, terminal_views.scoreboard_columns(board), board.scores, wide)
    dominated = terminal_views.dominance_note(board)
    if dominated:
        console.print(dominated)
    noise = "; ".join(f"{k} {v}" for k, v in PARETO_NOISE.items() if k in board.objectives_used)
    console.print(f"Pareto objectives: {', '.join(board.objectives_used) or 'none'}"
                  + (f" (better only beyond the noise: {noise})" if noise else ""))
    if board.reference_note:  # what decode t/s and J/token are: one stated test, never a mix of shapes
        console.print(board.reference_note)
    for note in dict.fromkeys(board.notes):
        console.print(f"[dim]note:[/dim] {note}")


def print_recommendation(rec: Recommendation, console: Console) -> None:
    if rec.best is None:
        console.print(f"[bold red]no recommendation:[/bold red] {rec.why}")
    else:
        setting = scoring.setting_text(rec.best.config)  # quant, threads and the cores they ran on
        console.print(f"[bold green]recommended:[/bold green] {rec.best.config.key} ({setting}) - {rec.why}")
    for i, s in enumerate(rec.runners_up, start=2):
        c = s.config
        quality = f"{s.accuracy_pct:.2f}% ({s.accuracy.label()})" if s.accuracy else f"no {s.metric} score"
        console.print(f"  {i}. {c.key}: {quality}, {_f(c.decode_tps, '.1f')} t/s, "
                      f"{_f(c.peak_rss_bytes and c.peak_rss_bytes / 2**20, '.0f')} MiB peak")
    for key, reason in rec.excluded:
        console.print(f"  [dim]excluded {key}: {reason}[/dim]")
