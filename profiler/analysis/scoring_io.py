"""Where the scoreboard's inputs come from: saved runs, the catalogue, the measurement index,
lm-eval result files, and each model file's sha256.

``scoring`` only computes; this module reads. A model file is hashed here, at most once, and the
configurations it returns carry the hash, so nothing downstream reads the file again.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from profiler.analysis import accuracy as acc_mod
from profiler.analysis import battery_life as battery_mod
from profiler.analysis import scoring
from profiler.models.catalog import Catalog, merged_catalog, sha256_file
from profiler.quality import store
from profiler.results.schema import find_run, load_run


def identified(configs: list[scoring.Configuration], catalog: Catalog | None) -> list[scoring.Configuration]:
    """Copies of ``configs`` that carry their model file's sha256: already known, the catalogue's,
    else the file hashed (once per file, however many configurations share it)."""
    hashed: dict[str, str] = {}
    out = []
    for c in configs:
        spec = catalog.find(c.model_name) if catalog else None
        sha = c.model_sha256 or (spec.sha256 if spec else None) or _hash_once(c.model_file, hashed)
        out.append(replace(c, model_sha256=sha))
    return out


def _hash_once(model_file: str | None, hashed: dict[str, str]) -> str | None:
    if not model_file or not Path(model_file).exists():
        return None
    if model_file not in hashed:
        hashed[model_file] = sha256_file(Path(model_file))
    return hashed[model_file]


def measurement_lines(config: scoring.Configuration) -> list[dict]:
    """What ``profiler eval`` stored for the configuration's exact file (matched by sha256)."""
    return store.measurements(config.model_sha256) if config.model_sha256 else []


def known_accuracy(config: scoring.Configuration, catalog: Catalog | None, lm_eval: dict[str, list[str]] | None = None,
                   lines: list[dict] | None = None) -> list[acc_mod.AccuracyScore]:
    """Every score known for an identified configuration's model file: measured (its measurement
    ``lines``, read when not given), lm-eval, published, inherited."""
    lines = measurement_lines(config) if lines is None else lines
    scores = acc_mod.from_store(lines)
    names = tuple(filter(None, (Path(config.model_file).name if config.model_file else None, config.model_sha256)))
    for path in (lm_eval or {}).get(config.model_name, []):
        scores += acc_mod.from_lm_eval(path, names)
    spec = catalog.find(config.model_name) if catalog else None
    if spec is not None:  # derived quants carry their parent's scores already, marked inherited
        scores += acc_mod.from_catalog(spec.accuracy)
    return scores


def board(configs: list[scoring.Configuration], metric: str = "hellaswag",
          price_per_kwh: float = scoring.DEFAULT_PRICE_PER_KWH, catalog: Catalog | None = None,
          lm_eval: dict[str, list[str]] | None = None) -> scoring.Scoreboard:
    """The scoreboard of ``configs`` with every accuracy and measurement known for their files."""
    scoring.check_price(price_per_kwh)  # before any file is hashed
    configs = identified(configs, catalog)
    lines = [measurement_lines(c) for c in configs]
    known = [known_accuracy(c, catalog, lm_eval, ls) for c, ls in zip(configs, lines, strict=True)]
    return scoring.build(configs, known, metric, price_per_kwh, lines)


def scoreboard_for_runs(run_refs: list[str] | None, reports_dir: Path, metric: str = "hellaswag",
                        price_per_kwh: float = scoring.DEFAULT_PRICE_PER_KWH, catalog_paths: list[Path] | None = None,
                        lm_eval: dict[str, list[str]] | None = None,
                        answer: tuple[int, int] = battery_mod.DEFAULT_ANSWER) -> scoring.Scoreboard:
    """The scoreboard over one or more saved runs (the latest by default); answers per charge of
    ``answer`` (prompt, answer tokens) where a run's device has a battery."""
    configs = []
    for ref in run_refs or [None]:
        run = load_run(find_run(ref, reports_dir))
        configs += scoring.configurations(run.rows, run.run_id, run.device, answer)
    return board(configs, metric, price_per_kwh, merged_catalog(catalog_paths), lm_eval)
