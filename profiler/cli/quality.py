"""Thin click commands for quality and scores: eval, score, quantize, compare-quants, data."""

from __future__ import annotations

import functools
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from profiler.errors import UserError
from profiler.platform.placement import split_cores


def _command_line() -> str:
    return " ".join(shlex.quote(a) for a in ["profiler", *sys.argv[1:]])


def _consoles():
    from profiler.report.console import err_console, out_console

    return out_console, err_console


def _status(text: str):
    """The status line while a command works: redrawn on progress, never on a timer."""
    from profiler.report.console import EventStatus, err_console

    return EventStatus(text, err_console)


@click.command("eval")
@click.argument("model")
@click.option("-f", "--file", "text", help="Text for perplexity: a file, 'wikitext2' (pulled), or none for the built-in text.")
@click.option("-c", "--ctx", "n_ctx", type=int, default=512, show_default=True, help="Tokens per perplexity chunk.")
@click.option("-b", "--batch", "n_batch", type=int, default=2048, show_default=True, help="Tokens per decode call.")
@click.option("--chunks", "n_chunks", type=int, help="Score only the first N chunks (default: all).")
@click.option("--perplexity/--no-perplexity", default=None, help="Perplexity (default: on unless only tasks are asked).")
@click.option("--save-reference", type=click.Path(path_type=Path), help="Save this model's top-k log-probs as a KLD reference.")
@click.option("--top-k", type=int, default=128, show_default=True, help="Reference log-probs kept per token.")
@click.option("--tail-samples", type=int, default=64, show_default=True,
              help="Reference tokens sampled from beyond the top-k per token (for the KLD's tail term).")
@click.option("--kld", "kld_reference", type=click.Path(path_type=Path), help="KL-divergence against a saved reference.")
@click.option("--hellaswag", is_flag=False, flag_value="hellaswag", default=None,
              help="HellaSwag accuracy: a file in llama.cpp's format, or no value for the pulled copy.")
@click.option("--winogrande", help="Winogrande accuracy from a CSV (idx,sentence,option1,option2,answer).")
@click.option("--tasks", "n_tasks", type=int, help="Score N tasks (llama-perplexity's deterministic random subset).")
@click.option("-t", "--threads", type=int, help="Threads (default: physical cores).")
@click.option("--models-file", type=click.Path(path_type=Path), help="Model catalogue (default ./models.toml).")
@click.option("--reports-dir", type=click.Path(path_type=Path), help="Where results are saved (default ./reports).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show llama.cpp's own log.")
def eval_command(model, text, n_ctx, n_batch, n_chunks, perplexity, save_reference, top_k, tail_samples, kld_reference, hellaswag,
                 winogrande, n_tasks, threads, models_file, reports_dir, as_json, verbose) -> None:
    """Perplexity, KL-divergence and task accuracy of MODEL, computed as llama-perplexity does."""
    from profiler import api
    from profiler.quality.evaluate import EvalOptions
    from profiler.report.quality_text import print_eval

    if perplexity is None:
        perplexity = not (hellaswag or winogrande) or any(v is not None for v in (text, n_chunks))
    options = EvalOptions(text=text, perplexity=perplexity, n_ctx=n_ctx, n_batch=n_batch, n_chunks=n_chunks, threads=threads,
                          save_reference=save_reference, top_k=top_k, tail_samples=tail_samples,
                          kld_reference=kld_reference, hellaswag=hellaswag,
                          winogrande=winogrande, n_tasks=n_tasks, catalog_path=models_file, verbose=verbose,
                          command=_command_line())
    if reports_dir is not None:
        options.reports_dir = reports_dir
    out, _ = _consoles()
    with _status("evaluating") as status:
        result = api.evaluate(model, options, lambda text: status.update(text))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    print_eval(result, out)
    out.print(f"\nsaved to {options.reports_dir / result.run_id}/quality.json")


@click.command("score")
@click.option("--run", "runs", multiple=True, help="A run id, folder or results.json (repeatable; default: the latest run).")
@click.option("--metric", default="hellaswag", show_default=True, help="Accuracy metric to score with.")
@click.option("--max-memory", help="Budget: peak memory, e.g. 1GB or 800MiB.")
@click.option("--min-tps", type=float, help="Budget: decode tokens per second.")
@click.option("--max-j-per-token", type=float, help="Budget: joules per generated token.")
@click.option("--min-answers-per-charge", type=float,
              help="Budget: answers per full battery charge (of --answer's shape; only runs on a device with a battery).")
@click.option("--answer", metavar="PROMPT,ANSWER", help="Answer shape for answers per charge, in tokens (default 512,256).")
@click.option("--price-kwh", type=float, default=0.30, show_default=True, help="Electricity price per kWh for cost/1M tokens.")
@click.option("--lm-eval", "lm_eval", multiple=True, help="MODEL=results.json from lm_eval --output_path (repeatable).")
@click.option("--models-file", multiple=True, type=click.Path(path_type=Path), help="Catalogue(s) with published scores.")
@click.option("--reports-dir", type=click.Path(path_type=Path), help="Where runs are (default ./reports).")
@click.option("--json", "as_json", is_flag=True, help="Print scores as JSON.")
@click.option("--wide", is_flag=True, help="Every column, even past the terminal's width (default: fit it).")
def score_command(runs, metric, max_memory, min_tps, max_j_per_token, min_answers_per_charge, answer, price_kwh, lm_eval,
                  models_file, reports_dir, as_json, wide) -> None:
    """Cost-effectiveness scores, the Pareto frontier and a recommendation under a budget."""
    from profiler import api
    from profiler.analysis import scoring
    from profiler.analysis.battery_life import parse_answer
    from profiler.report.quality_text import print_recommendation, print_scoreboard

    board = api.score(runs, reports_dir, metric, price_kwh, models_file, lm_eval, parse_answer(answer))
    budget = any(v is not None for v in (max_memory, min_tps, max_j_per_token, min_answers_per_charge))
    rec = scoring.recommend(board, scoring.parse_bytes(max_memory) if max_memory else None, min_tps, max_j_per_token,
                            min_answers_per_charge=min_answers_per_charge) if budget else None
    if as_json:
        click.echo(json.dumps(scoring.to_dict(board, rec), indent=2))
        return
    out, _ = _consoles()
    print_scoreboard(board, out, wide=wide)
    if rec is not None:
        print_recommendation(rec, out)


@click.command("quantize")
@click.argument("base")
@click.option("--types", help="Comma list (default q8_0,q6_k,q5_k_m,q4_k_m,q4_0,q3_k_m,q2_k).")
@click.option("--out-dir", type=click.Path(path_type=Path), help="Where the files go (default $PROFILER_CACHE/quants/BASE).")
@click.option("--catalog", "catalog_out", type=click.Path(path_type=Path), help="Catalogue file to add them to (default OUT_DIR/models.toml).")
@click.option("-t", "--threads", type=int, help="Quantizer threads (default: all cores).")
@click.option("--models-file", type=click.Path(path_type=Path), help="Catalogue BASE is read from (default ./models.toml).")
@click.option("-v", "--verbose", is_flag=True, help="Show llama.cpp's own log.")
def quantize_command(base, types, out_dir, catalog_out, threads, models_file, verbose) -> None:
    """Quantize BASE with llama.cpp's quantizer (dequantizing a quantized BASE to F16 first)."""
    from profiler.ladder import quantize

    out, _ = _consoles()
    with _status("quantizing") as status:
        ladder = quantize.build_ladder(base, quantize.parse_types(types), out_dir, catalog_out, models_file, threads,
                                       verbose, lambda text: status.update(text))
    ref = ladder.reference
    out.print(f"reference: {ref.name} ({ref.quant}) {ref.path}")
    if ladder.reference_is_reconstruction:
        out.print(f"[yellow]the reference is a reconstruction:[/yellow] {ref.reconstructed_from}")
    for step in ladder.steps:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in step.tensor_types.items())
        out.print(f"  {step.name}: {step.size_bytes / 2**20:.1f} MiB ({shares})")
    out.print(f"added to {ladder.catalog_path}; use: profiler run --models-file {ladder.catalog_path} NAME")


@click.command("compare-quants")
@click.argument("base")
@click.option("--types", default="q8_0,q4_k_m,q2_k", show_default=True, help="Quant types of the ladder.")
@click.option("-f", "--file", "text", help="Text for PPL/KLD (default: the built-in text).")
@click.option("-c", "--ctx", "n_ctx", type=int, default=512, show_default=True)
@click.option("--chunks", "n_chunks", type=int, default=20, show_default=True)
@click.option("--hellaswag", is_flag=False, flag_value="hellaswag", default=None, help="HellaSwag file (or the pulled copy).")
@click.option("--tasks", "n_tasks", type=int, default=200, show_default=True)
@click.option("-p", "--n-prompt", type=int, default=128, show_default=True)
@click.option("-n", "--n-gen", type=int, default=32, show_default=True)
@click.option("-r", "--repetitions", type=int, default=3, show_default=True)
@click.option("-t", "--threads", type=int)
@click.option("-C", "--cpu-mask", multiple=True, help="CPU masks in hex, as profiler run (each a configuration).")
@click.option("--cores", multiple=True, help="big, little, all or CPUs like 4-7, as profiler run (each a configuration).")
@click.option("--out-dir", type=click.Path(path_type=Path))
@click.option("--price-kwh", type=float, default=0.30, show_default=True)
@click.option("--models-file", type=click.Path(path_type=Path))
@click.option("--reports-dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.option("-v", "--verbose", is_flag=True)
@click.option("--existing", is_flag=True,
              help="BASE is a model found on disk (ollama:NAME, hf-cache:ORG/REPO, lmstudio:PUB/MODEL): compare the "
                   "quants already there, without quantizing; the highest-precision file is the KLD reference.")
def compare_quants_command(base, types, text, n_ctx, n_chunks, hellaswag, n_tasks, n_prompt, n_gen, repetitions, threads,
                           cpu_mask, cores, out_dir, price_kwh, models_file, reports_dir, as_json, verbose, existing) -> None:
    """For each quant of BASE: size, t/s, J/token, PPL, KLD against the reference, HellaSwag and score."""
    from profiler.ladder import compare_quants, quantize

    options = compare_quants.CompareOptions(
        types=quantize.parse_types(types), text=text, n_ctx=n_ctx, n_chunks=n_chunks, hellaswag=hellaswag, n_tasks=n_tasks,
        n_prompt=n_prompt, n_gen=n_gen, repetitions=repetitions, threads=threads, out_dir=out_dir,
        cpu_mask=[m.strip() for text in cpu_mask for m in text.split(",") if m.strip()],
        cores=[v for text in cores for v in split_cores(text)],
        catalog_path=models_file, price_per_kwh=price_kwh, verbose=verbose, command=_command_line(),
    )
    if reports_dir is not None:
        options.reports_dir = reports_dir
    out, _ = _consoles()
    with _status("comparing quants") as status:
        if existing:  # the ladder already on disk (profiler/ladder/existing.py)
            from profiler.ladder.existing import compare_existing

            result = compare_existing(base, options, lambda text: status.update(text))
        else:
            result = compare_quants.compare_quants(base, options, lambda text: status.update(text))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    from rich.markdown import Markdown

    out.print(Markdown(compare_quants.markdown(result)))


@click.group("data")
def data_group() -> None:
    """Evaluation data sets (HellaSwag, WikiText-2) in the cache."""


@data_group.command("pull")
@click.argument("names", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Download again even if a verified copy exists.")
def data_pull(names, force) -> None:
    """Download NAMES (hellaswag, wikitext2) from their public sources and check their sha256."""
    from profiler.quality import data

    out, err = _consoles()
    for name in names:
        path = data.pull(name, force=force, progress=lambda text: err.print(f"[dim]{text}[/dim]"))
        out.print(f"{name}: {path} (sha256 verified)")


@data_group.command("list")
def data_list() -> None:
    """Known data sets and whether they are pulled."""
    from profiler.quality import data

    out, _ = _consoles()
    for name, ds in data.DATASETS.items():
        path = data.dataset_path(name)
        out.print(f"{name}: {ds.description}; {'pulled: ' + str(path) if path else 'not pulled'} ({ds.licence})")


COMMANDS = (eval_command, score_command, quantize_command, compare_quants_command, data_group)


# --------------------------------------------------------------------------- the closing scoreboard of run


@dataclass(frozen=True)
class ScoreboardOptions:
    enabled: bool = True
    tasks: int = 200


def scoreboard_options(fn):
    """Add --score-tasks / --no-score to ``run`` and hand them over as one ``scoreboard`` argument."""

    @functools.wraps(fn)
    def wrapper(*args, score_tasks, no_score, **kwargs):
        if score_tasks < 0:
            raise UserError(f"--score-tasks {score_tasks} is invalid: it must be >= 0")
        return fn(*args, scoreboard=ScoreboardOptions(not no_score, score_tasks), **kwargs)

    wrapper = click.option("--no-score", is_flag=True, help="Skip the closing cost-effectiveness scoreboard.")(wrapper)
    return click.option(
        "--score-tasks", type=int, default=ScoreboardOptions.tasks, show_default=True,
        help="HellaSwag tasks measured per model for the scoreboard when none is stored yet (0: use stored/published).",
    )(wrapper)


def print_run_scoreboard(run, options: ScoreboardOptions, catalog_path: Path | None, reports_dir: Path | None,
                         wide: bool = False) -> None:
    """The scoreboard after the results table (nothing when disabled or when no row was measured)."""
    from profiler.report.quality_text import print_scoreboard

    if not options.enabled or not run.rows:
        return
    out, _ = _consoles()
    with _status("scoreboard") as status:
        board = run_scoreboard(run, catalog_path, options.tasks, reports_dir, progress=lambda text: status.update(text))
    out.print()
    print_scoreboard(board, out, title=f"cost-effectiveness ({board.metric}; electricity {board.price_per_kwh:g}/kWh)",
                     wide=wide)


def run_scoreboard(run, catalog_path: Path | None, measure_tasks: int, reports_dir: Path | None = None,
                   progress=None):
    """The scoreboard that closes ``profiler run``: HellaSwag measured first (``measure_tasks``
    tasks) on each file the index has no such measurement of, then every file scored."""
    from profiler.analysis import scoring, scoring_io
    from profiler.models.catalog import merged_catalog
    from profiler.quality.missing import ModelFile, measure_missing

    catalog = merged_catalog([catalog_path] if catalog_path else None)
    configs = scoring_io.identified(scoring.configurations(run.rows, run.run_id, run.device), catalog)
    notes = []
    if measure_tasks > 0:
        files = [ModelFile(c.model_name, c.model_file, c.model_sha256, c.n_threads) for c in configs]
        notes = measure_missing(files, measure_tasks, reports_dir, progress)
    board = scoring_io.board(configs, catalog=catalog)
    board.notes = notes + board.notes
    return board


def register(group: click.Group) -> None:
    for command in COMMANDS:
        group.add_command(command)

