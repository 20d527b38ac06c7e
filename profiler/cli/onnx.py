"""Thin click commands for ONNX: run's runtime options, convert, parity."""

from __future__ import annotations

import functools
import json
import shlex
from pathlib import Path

import click

from profiler.backends import CHOICES
from profiler.backends.onnx_common import OPT_LEVELS, PROVIDERS
from profiler.errors import UserError

OPTIONS = [
    click.option("--backend", type=click.Choice(CHOICES), default="auto", show_default=True,
                 help="Runtime: auto (by model format), onnx (genai folder -> onnxruntime-genai, else onnxruntime), or one by name."),
    click.option("--onnx-ep", type=click.Choice(list(PROVIDERS)), default="cpu", show_default=True,
                 help="ONNX Runtime execution provider (if this onnxruntime build has it)."),
    click.option("--onnx-opt", type=click.Choice(list(OPT_LEVELS)), default="all", show_default=True,
                 help="ONNX Runtime graph optimisation level."),
]


def runtime_options(fn):
    """Add --backend/--onnx-ep/--onnx-opt to a command and hand them over as one ``runtime`` dict."""

    @functools.wraps(fn)
    def wrapper(*args, backend, onnx_ep, onnx_opt, **kwargs):
        runtime = {"backend": backend, "onnx_options": {"execution_provider": onnx_ep, "graph_optimization": onnx_opt}}
        return fn(*args, runtime=runtime, **kwargs)

    for option in reversed(OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip().lower() for text in values for v in text.split(",") if v.strip()]


def _gguf_path(model: str, models_file: Path | None) -> Path:
    from profiler.models.catalog import resolve
    from profiler.sources import resolve_models

    spec = resolve_models([model], models_file)[0]
    if spec.format != "gguf":
        raise UserError(f"{model} is {spec.format}: convert takes a GGUF model")
    return resolve(spec, progress=lambda text: click.echo(text, err=True))


@click.command("convert")
@click.argument("model")
@click.option("--to", "target", type=click.Choice(["onnx"]), default="onnx", show_default=True, help="Target format.")
@click.option("--precision", multiple=True, help="fp32, int8, int4 (comma list; default all three).")
@click.option("--layout", multiple=True,
              help="genai (onnxruntime-genai builder, default) and/or plain (Optimum layout via torch export).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Output folder (default: the cache's converted/).")
@click.option("--force", is_flag=True, help="Rebuild even if a converted model is cached.")
@click.option("--json", "as_json", is_flag=True, help="Print the converted models as JSON.")
@click.option("--models-file", type=click.Path(path_type=Path), help="Model catalogue (default ./models.toml).")
def convert_command(model, target, precision, layout, out_dir, force, as_json, models_file) -> None:
    """Convert a GGUF MODEL (catalogue name or file) into ONNX models, one per precision."""
    from profiler.convert import PRECISIONS, convert

    gguf = _gguf_path(model, models_file)
    models = convert(gguf, _split(precision) or list(PRECISIONS), _split(layout) or ["genai"], out_dir, force,
                     progress=lambda text: click.echo(text, err=True))
    if as_json:
        click.echo(json.dumps([m.to_dict() for m in models], indent=2))
        return
    for m in models:
        made = "cached" if m.convert_s is None else f"{m.convert_s:.0f} s"
        click.echo(f"{m.layout:6} {m.precision:5} {m.size_bytes / 2**20:8.1f} MiB  {made:>7}  {m.path}")
    click.echo("\nprofile them:\n  profiler run " + " ".join(shlex.quote(str(m.path)) for m in models))


@click.command("parity")
@click.argument("model")
@click.option("--reference", help="llama.cpp reference (GGUF path or catalogue name; default: the GGUF it was converted from).")
@click.option("-f", "--file", "text_file", type=click.Path(path_type=Path), help="Text to evaluate (default: built-in text).")
@click.option("--tokens", "n_tokens", type=int, default=512, show_default=True, help="Tokens of text to compare.")
@click.option("--greedy", "n_greedy", type=int, default=16, show_default=True, help="Greedy tokens to compare.")
@click.option("--prompt", default="The capital of France is", show_default=True, help="Prompt for the greedy check.")
@click.option("-t", "--threads", type=int, help="Threads (default: physical cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@runtime_options
def parity_command(model, reference, text_file, n_tokens, n_greedy, prompt, threads, as_json, runtime) -> None:
    """KL-divergence of MODEL's logits (ONNX) against llama.cpp's on the same tokens."""
    from profiler.quality.parity import parity

    text = None
    if text_file is not None:
        try:
            text = text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read {text_file}: {exc}") from None
    result = parity(model, reference, text, n_tokens, n_greedy, prompt, threads, runtime["backend"],
                    runtime["onnx_options"], progress=lambda t: click.echo(t, err=True))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    s = result.stats
    click.echo(f"reference  {result.reference['backend']}: {result.reference['path']}")
    click.echo(f"candidate  {result.candidate['backend']}: {result.candidate['path']}")
    click.echo(f"text       {s.n_tokens} tokens of {result.text}, {result.threads} threads")
    click.echo(f"KLD        mean {s.kld_mean:.5f} ± {s.kld_mean_stderr:.5f}  median {s.kld_median:.5f}  "
               f"p99 {s.kld_p99:.4f}  max {s.kld_max:.4f}")
    click.echo(f"same top   {100 * s.same_top_fraction:.1f}%")
    click.echo(f"greedy     {result.greedy_agree}/{len(result.greedy_reference)} first tokens identical "
               f"({result.prompt!r})")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)


COMMANDS = (convert_command, parity_command)


def register(group: click.Group) -> None:
    for command in COMMANDS:
        group.add_command(command)
