"""``profiler fit``: the largest context that fits, and why (profiler/analysis/fit.py, docs/fit.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from profiler.errors import UserError


def _size(text: str | None, flag: str) -> int | None:
    from profiler.analysis.scoring import parse_bytes

    if text is None:
        return None
    try:
        return parse_bytes(text)
    except UserError:
        raise UserError(f"{flag} '{text}' is not a size like 4GB, 800MB or 1.5GiB") from None


@click.command("fit")
@click.argument("models", nargs=-1)
@click.option("--ram", help="RAM of the device to plan for, e.g. 4GB (default: available here now).")
@click.option("--margin", help="Left for the OS and other programs, e.g. 512MB (default 256MiB).")
@click.option("-ctk", "--cache-type-k", "type_k", default="f16", help="K cache type (default f16).")
@click.option("-ctv", "--cache-type-v", "type_v", default="f16", help="V cache type (default f16).")
@click.option("-ub", "--ubatch-size", "n_ubatch", type=click.IntRange(min=1), default=512,
              help="Physical batch size (default 512).")
@click.option("-fa", "--flash-attn", "flash_attn", type=click.Choice(["auto", "on", "off"]), default="auto",
              help="Flash attention as the run will use it (default auto).")
@click.option("--no-mmap", is_flag=True, help="The weights read into memory (llama-bench -mmp 0): counted in full.")
@click.option("--all-local", is_flag=True, help="Every GGUF model already on this machine (profiler models).")
@click.option("--verify", is_flag=True, help="Also run each model here at three contexts and compare.")
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
@click.option("--models-file", type=click.Path(path_type=Path), help="Model catalogue (default ./models.toml).")
def fit_command(models, ram, margin, type_k, type_v, n_ubatch, flash_attn, no_mmap, all_local, verify, as_json,
                models_file) -> None:
    """The memory MODELS need at 2k..32k and their trained context, the largest context that fits, and
    where the bytes go (weights, KV cache per layer, compute)."""
    from profiler import api
    from profiler.analysis.fit import DEFAULT_MARGIN_BYTES, FitSettings

    settings = FitSettings(ram_bytes=_size(ram, "--ram"), type_k=type_k, type_v=type_v, n_ubatch=n_ubatch,
                           margin_bytes=DEFAULT_MARGIN_BYTES if margin is None else _size(margin, "--margin"),
                           flash_attn=flash_attn, use_mmap=not no_mmap)
    progress = None if as_json else (lambda text: click.echo(text, err=True))
    reports, skipped = api.fit(models, settings, all_local, verify, models_file, progress)
    if as_json:
        click.echo(json.dumps({"models": [r.to_dict() for r in reports], "skipped": skipped}, indent=2))
        return
    from profiler.report.fit_text import fit_text

    click.echo(fit_text(reports, skipped))


def register(cli: click.Group) -> None:
    cli.add_command(fit_command)
