"""Thin click commands: parse, call profiler.api, render."""

from __future__ import annotations

import re
import shlex
import sys
from functools import partial
from pathlib import Path

import click

from profiler import api
from profiler.analysis.battery_life import parse_answer
from profiler.backends import runtime_info
from profiler.cli.energy import energy_options
from profiler.cli.onnx import runtime_options
from profiler.cli.quality import print_run_scoreboard, scoreboard_options
from profiler.cli.reps import repetition_options
from profiler.cli.sources import all_local_names, all_local_option
from profiler.cli.store import answer_option, wide_option
from profiler.errors import UserError
from profiler.measure.plan import Sweep
from profiler.platform.placement import split_cores
from profiler.report import FORMATS, render
from profiler.report.suites_text import suite_lines
from profiler.run.options import RunInterrupted, RunOptions


def int_list(text: str, flag: str) -> list[int]:
    """llama-bench list syntax: ``1,2,4``, a range ``1-4``, ``128-512+128`` or ``128-1024*2``."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(-?\d+)(?:-(\d+)(?:([+*])(\d+))?)?", part)
        if not match:
            raise UserError(f"{flag}: '{part}' is not an integer, a range like 1-4, or a list like 1,2,4")
        first = int(match.group(1))
        if match.group(2) is None:
            values.append(first)
            continue
        last, op, step = int(match.group(2)), match.group(3) or "+", int(match.group(4) or 1)
        if (op == "+" and step < 1) or (op == "*" and (step < 2 or first < 1)):
            raise UserError(f"{flag}: range '{part}' does not advance")
        value = first
        while value <= last:
            values.append(value)
            value = value + step if op == "+" else value * step
    return values


def _ints(values: tuple[str, ...], flag: str, default: list[int]) -> list[int]:
    if not values:
        return default
    return [v for text in values for v in int_list(text, flag)]


def _strs(values: tuple[str, ...], default: list[str]) -> list[str]:
    out = [v.strip() for text in values for v in text.split(",") if v.strip()]
    return out or default


def _flash(values: tuple[str, ...]) -> list[str]:
    aliases = {"1": "on", "0": "off", "-1": "auto", "true": "on", "false": "off"}
    return [aliases.get(v.lower(), v.lower()) for v in _strs(values, ["auto"])]


def _pairs(values: tuple[str, ...]) -> list[tuple[int, int]]:
    pairs = []
    for text in values:
        nums = int_list(text, "-pg")
        if len(nums) != 2:
            raise UserError(f"-pg: '{text}' must be two numbers, prompt,gen (e.g. 512,128)")
        pairs.append((nums[0], nums[1]))
    return pairs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="profiler")
def cli() -> None:
    """On-device inference cost profiler for small language models."""


@cli.command()
@click.argument("models", nargs=-1)
@click.option("-m", "--model", "model_opts", multiple=True, help="Model name or path (repeatable, as llama-bench).")
@click.option("-p", "--n-prompt", multiple=True, help="Prompt sizes, comma list (default 512).")
@click.option("-n", "--n-gen", multiple=True, help="Generation lengths, comma list (default 128).")
@click.option("-pg", "prompt_gen", multiple=True, help="Combined prompt,gen tests, e.g. -pg 512,128.")
@click.option("--suite", type=click.Choice(["localscore", "mlperf-client"]),
              help="Run a known suite's test shapes and print its score (docs/suites.md); replaces -p/-n/-pg.")
@click.option("-d", "--n-depth", multiple=True, help="KV-cache depth before each test (default 0).")
@click.option("-t", "--threads", multiple=True, help="Thread counts (default: physical cores; with a placement, one per CPU of it).")
@click.option("-C", "--cpu-mask", multiple=True, help="CPU masks in hex, as llama-bench (0x3: CPUs 0-1; default 0x0, no placement).")
@click.option("--cpu-strict", multiple=True, help="As llama-bench (default 0); 1, one thread pinned per CPU, is refused with the reason "
              "where it cannot be honoured (docs/measurement.md).")
@click.option("--cores", multiple=True, help="big, little, all or CPUs like 4-7 (a mask by core cluster); "
              "repeat for several CPU lists. Default on big/little devices without -t: big.")
@click.option("-b", "--batch-size", multiple=True, help="Logical batch sizes (default 2048).")
@click.option("-ub", "--ubatch-size", multiple=True, help="Physical batch sizes (default 512).")
@click.option("-fa", "--flash-attn", multiple=True, help="on, off or auto (default auto); comma list.")
@click.option("-ctk", "--cache-type-k", multiple=True, help="K cache type (default f16).")
@click.option("-ctv", "--cache-type-v", multiple=True, help="V cache type (default f16).")
@repetition_options
@click.option("--random-tokens", is_flag=True, help="Random token ids, as llama-bench (default: real text).")
@click.option("--no-warmup", is_flag=True, help="Skip the warm-up pass.")
@click.option("--no-mmap", is_flag=True, help="Read the model into memory instead of mapping it.")
@click.option("-o", "--output", type=click.Choice(FORMATS), help="Print results to stdout in this format.")
@click.option("--models-file", type=click.Path(path_type=Path), help="Model catalogue (default ./models.toml).")
@click.option("--reports-dir", type=click.Path(path_type=Path), help="Where runs are saved (default ./reports).")
@click.option("--no-bandwidth", is_flag=True, help="Skip the memory-bandwidth probe (bw_fraction becomes n/a).")
@click.option("-v", "--verbose", is_flag=True, help="Show llama.cpp's own log.")
@click.option("--force", is_flag=True, help="Run even when the memory pre-flight estimate exceeds available RAM.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
              help="Seconds a test may run; a model whose test runs longer is stopped and recorded as failed.")
@click.option("--resume", "resume", metavar="RUN_ID", help="Continue a run: skip the tests it already finished.")
@click.option("--in-process", is_flag=True, help="Measure in this process, without crash isolation (debugging).")
@wide_option
@answer_option
@all_local_option
@energy_options
@scoreboard_options
@runtime_options
def run(models, model_opts, n_prompt, n_gen, prompt_gen, suite, n_depth, threads, cpu_mask, cpu_strict, cores,
        batch_size, ubatch_size, flash_attn,
        cache_type_k, cache_type_v, repetitions, random_tokens, no_warmup, no_mmap, output, models_file,
        reports_dir, no_bandwidth, verbose, force, timeout_s, resume, in_process, wide, answer, all_local, energy, scoreboard,
        runtime) -> None:
    """Measure speed, latency, memory and load time of MODELS (catalogue names or files)."""
    sweep = Sweep(
        n_prompt=_ints(n_prompt, "-p", [512]),
        n_gen=_ints(n_gen, "-n", [128]),
        prompt_gen=_pairs(prompt_gen),
        n_depth=_ints(n_depth, "-d", [0]),
        n_threads=_ints(threads, "-t", []),
        cpu_mask=_strs(cpu_mask, []),
        cores=[v for text in cores for v in split_cores(text)],
        cpu_strict=_ints(cpu_strict, "--cpu-strict", [0]),
        n_batch=_ints(batch_size, "-b", [2048]),
        n_ubatch=_ints(ubatch_size, "-ub", [512]),
        type_k=_strs(cache_type_k, ["f16"]),
        type_v=_strs(cache_type_v, ["f16"]),
        flash_attn=_flash(flash_attn),
        **repetitions,  # -r, --ci-target, --max-time (cli_reps.py)
        random_tokens=random_tokens,
        use_mmap=not no_mmap,
    )
    shape = parse_answer(answer)  # checked before anything is measured
    if suite:
        if n_prompt or n_gen or prompt_gen:
            raise UserError(f"--suite {suite} sets the test shapes itself; drop -p/-n/-pg")
        sweep = api.suite_sweep(sweep, suite)
    options = RunOptions(
        catalog_path=models_file,
        warmup=not no_warmup,
        bandwidth_probe=not no_bandwidth,
        verbose=verbose,
        force=force,
        isolate=not in_process,
        timeout_s=timeout_s,
        command=" ".join(shlex.quote(a) for a in ["profiler", *sys.argv[1:]]),
        energy=energy,
        backend=runtime["backend"],
        onnx_options=runtime["onnx_options"],
    )
    if reports_dir is not None:
        options.reports_dir = reports_dir
    from profiler.report.console import RunDisplay

    local, options.warnings = all_local_names(sweep, force) if all_local else ([], [])
    names = list(models) + list(model_opts) + local
    # profiler fleet run reuses this command whole, measuring on its devices instead (cli_fleet.py)
    profile = click.get_current_context().meta.get("profiler.profile")
    # results.json's battery life takes --answer's shape; a fleet run's record has one battery per device
    profile = profile or partial(api.profile, answer=shape)
    with RunDisplay(quiet_stdout=output is not None) as display:
        result = profile(names, sweep, options, display.callbacks(), resume=resume)
    if output:
        click.echo(render(result, output), nl=False)
    else:
        final = click.get_current_context().meta.get("profiler.final")  # profiler fleet run's own ending
        if final is not None:
            final(result, options.reports_dir, wide)
        else:
            display.final(result, options.reports_dir, wide, answer=shape)
        print_run_scoreboard(result, scoreboard, models_file, options.reports_dir, wide)
        if suite:
            _print_suite(result, suite)
    recovered = len(result.failures) - len(result.open_failures)
    if recovered:
        click.echo(f"recovered: {recovered} earlier failure(s), every test they had missed is now measured", err=True)
    for failure in result.open_failures:
        tail = failure.get("stderr_tail") or []
        last = f" - last output: {tail[-1]}" if tail else ""
        click.echo(f"failed: {failure['model']} ({failure['test'] or 'load'}): {failure['error']}{last}", err=True)
    if result.open_failures:  # the exit status reflects what is still missing, not what a resume made good
        again = click.get_current_context().meta.get("profiler.resume_command", RunInterrupted.resume_command)
        click.echo(f"not every test was measured: {resume_hint(again, result.run_id)}", err=True)
        sys.exit(1)


def _print_suite(result, suite: str) -> None:
    lines = suite_lines(api.suite_scores(result, [suite]))
    click.echo("\n" + "\n".join(lines) if lines else f"\n{suite}: no model finished every shape, so no score")


def resume_hint(command: str, run_id: str) -> str:
    """How to finish a run, after a Ctrl-C or a failure (``command``: profiler run's or the fleet's)."""
    return f"finished tests are saved; continue with {command} {run_id}"


@cli.command()
@click.option("--no-bandwidth", is_flag=True, help="Skip the memory-bandwidth probe.")
@click.option("--json", "as_json", is_flag=True, help="Print the fingerprint as JSON.")
def device(no_bandwidth: bool, as_json: bool) -> None:
    """Fingerprint this machine and measure its memory read bandwidth."""
    fp = api.describe_device(not no_bandwidth, runtime_info())
    from profiler.cli import energy as cli_energy

    energy = cli_energy.probe(fp.cpu_model, fp.board)
    if as_json:
        import json

        click.echo(json.dumps({**fp.to_dict(), "energy": energy}, indent=2))
        return
    from profiler.report.console import out_console, print_device

    print_device(fp)
    cli_energy.print_energy(energy, out_console)


# eval, score, quantize, compare-quants, data (profiler/cli/quality.py)
from profiler.cli import quality as cli_quality  # noqa: E402

cli_quality.register(cli)

from profiler.cli import onnx as cli_onnx  # noqa: E402

cli_onnx.register(cli)


from profiler.cli import store as cli_store  # noqa: E402 - registers history, show, compare, report

cli_store.register(cli)

from profiler.cli import fleet as cli_fleet  # noqa: E402 - registers fleet (profiler/fleet, Ray)

cli_fleet.register(cli)

from profiler.cli import sources as cli_sources  # noqa: E402 - registers models (profiler/sources)

cli_sources.register(cli)

from profiler.cli import density as cli_density  # noqa: E402 - profiler density (docs/density.md)

cli_density.register(cli)

from profiler.cli import fit as cli_fit  # noqa: E402 - profiler fit (docs/fit.md)

cli_fit.register(cli)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        # click turns Ctrl-C into Abort; the run's own interrupt (with its id) is the cause
        cause = exc if isinstance(exc, RunInterrupted) else exc.__cause__ or exc.__context__
        if isinstance(cause, RunInterrupted):  # the fleet's resume command differs
            click.echo(f"interrupted: {resume_hint(cause.resume_command, cause.run_id)}", err=True)
        else:
            click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
