"""Accuracy from three sources, merged without ever letting a number pass for what it is not.

Sources, in order of precedence for one metric of one model file:

1. ``measured``  - our own ``profiler eval`` on this exact file (matched by sha256);
2. ``lm-eval``   - an lm-evaluation-harness results JSON (``lm_eval --output_path``) the user
                   attaches to the model;
3. ``published`` - a model card's number, from the catalogue's ``[[models.accuracy]]`` tables.

A number measured on anything other than this exact file (the unquantized model, the base
model of an instruct model, the model a quant was made from) is **inherited**: it keeps its
value but is labelled ``inherited from <model>`` everywhere it is shown. An exact
number always beats an inherited one; among exact (or among inherited) numbers the order above holds.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from profiler.errors import UserError

PROVENANCE_RANK = {"measured": 0, "lm-eval": 1, "published": 2}

# Accuracy of guessing uniformly (the floor the chance-adjusted knowledge density subtracts).
CHANCE_PCT = {
    "hellaswag": 25.0,
    "winogrande": 50.0,
    "piqa": 50.0,
    "boolq": 50.0,
    "arc_easy": 25.0,
    "arc_challenge": 25.0,
    "arc": 25.0,
    "mmlu": 25.0,
    "mmlu_cloze": 25.0,
    "openbookqa": 25.0,
    "commonsense_qa": 20.0,
}

ENTRY_KEYS = {
    "metric": str, "value": (int, float), "n_shot": int, "source": str, "url": str,
    "measured_on": str, "variant": str, "note": str,
}
ENTRY_REQUIRED = ("metric", "value", "n_shot", "source", "measured_on")
EXACT_MARKERS = ("this file", "this artifact")


@dataclass
class AccuracyScore:
    metric: str
    value_pct: float
    provenance: str  # measured / lm-eval / published
    n_shot: int | None
    source: str
    inherited_from: str | None = None  # None: measured on this exact file
    variant: str | None = None  # acc, acc_norm, ...
    url: str | None = None
    n_tasks: int | None = None
    ci95_pct: list[float] | None = None
    note: str | None = None

    @property
    def inherited(self) -> bool:
        return self.inherited_from is not None

    def label(self) -> str:
        """Short provenance text for tables: ``measured 0-shot, 400 tasks`` / ``published 10-shot, inherited from X``."""
        parts = [self.provenance]
        if self.n_shot is not None:
            parts[0] += f" {self.n_shot}-shot"
        if self.n_tasks:
            parts.append(f"{self.n_tasks} tasks")
        if self.inherited_from:
            parts.append(f"inherited from {self.inherited_from}")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {**asdict(self), "inherited": self.inherited}


def normalise_metric(name: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    aliases = {"arc_e": "arc_easy", "arc_c": "arc_challenge", "arc_average": "arc", "mmlu_cf": "mmlu_cloze",
               "hella_swag": "hellaswag", "wino_grande": "winogrande"}
    return aliases.get(key, key)


def chance_pct(metric: str) -> float | None:
    return CHANCE_PCT.get(normalise_metric(metric))


# --------------------------------------------------------------------------- the catalogue


def validate_entries(entries: list, where: str) -> list[dict]:
    """Check ``[[models.accuracy]]`` tables; a one-line UserError names the problem."""
    out = []
    for i, entry in enumerate(entries, start=1):
        here = f"{where}: accuracy #{i}"
        if not isinstance(entry, dict):
            raise UserError(f"{here}: must be a table with metric, value, n_shot, source, measured_on")
        for key, value in entry.items():
            if key not in ENTRY_KEYS:
                raise UserError(f"{here}: unknown key '{key}' (known: {', '.join(ENTRY_KEYS)})")
            if isinstance(value, bool) or not isinstance(value, ENTRY_KEYS[key]):
                raise UserError(f"{here}: '{key}' has the wrong type ({type(value).__name__})")
        for key in ENTRY_REQUIRED:
            if key not in entry:
                raise UserError(f"{here}: missing '{key}' (every published score needs its metric, value, shot count, "
                                "source and the model it was measured on)")
        if not 0 <= float(entry["value"]) <= 100:
            raise UserError(f"{here}: value {entry['value']} is not a percentage (0-100)")
        if entry["n_shot"] < 0:
            raise UserError(f"{here}: n_shot must be >= 0")
        out.append(entry)
    return out


def from_catalog(entries: list[dict]) -> list[AccuracyScore]:
    scores = []
    for e in entries:
        on = e["measured_on"]
        exact = on.strip().lower() in EXACT_MARKERS
        scores.append(AccuracyScore(
            metric=normalise_metric(e["metric"]), value_pct=float(e["value"]), provenance="published",
            n_shot=e["n_shot"], source=e["source"], inherited_from=None if exact else on,
            variant=e.get("variant"), url=e.get("url"), note=e.get("note"),
        ))
    return scores


def inherit(scores: list[AccuracyScore], parent: str) -> list[AccuracyScore]:
    """A derived file's view of its parent's scores: all inherited (never exact)."""
    out = []
    for s in scores:
        via = f"{s.inherited_from} via {parent}" if s.inherited_from else parent
        out.append(AccuracyScore(**{**asdict(s), "inherited_from": via}))
    return out


# --------------------------------------------------------------------------- lm-evaluation-harness


def from_lm_eval(path: str | Path, artifact_names: tuple[str, ...] = ()) -> list[AccuracyScore]:
    """Scores from an ``lm_eval --output_path`` results JSON.

    acc_norm is taken where the task reports it, else acc. The run is exact only when its
    model arguments name this file (``artifact_names``: file name or sha256); otherwise it is
    inherited from whatever model the harness loaded.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"lm-eval results not found: {p}") from None
    except ValueError as exc:
        raise UserError(f"{p} is not JSON ({exc})") from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict) or not results:
        raise UserError(f"{p} has no 'results' table; give the results_*.json that lm_eval --output_path writes")
    config = data.get("config") or {}
    model_args = str(config.get("model_args") or data.get("model_name") or "unknown model")
    exact = any(name and name in model_args for name in artifact_names)
    shots = data.get("n-shot") or {}
    scores = []
    for task, values in results.items():
        if not isinstance(values, dict):
            continue
        for variant in ("acc_norm", "acc"):
            value = values.get(f"{variant},none", values.get(variant))
            if isinstance(value, (int, float)) and not math.isnan(value):
                stderr = values.get(f"{variant}_stderr,none")
                ci = [100 * (value - 1.96 * stderr), 100 * (value + 1.96 * stderr)] if isinstance(stderr, (int, float)) else None
                scores.append(AccuracyScore(
                    metric=normalise_metric(task), value_pct=100 * float(value), provenance="lm-eval",
                    n_shot=shots.get(task) if isinstance(shots.get(task), int) else None,
                    source=f"lm-eval results {p.name}", inherited_from=None if exact else model_args,
                    variant=variant, ci95_pct=ci,
                ))
                break
    if not scores:
        raise UserError(f"{p}: no acc or acc_norm values in its results")
    return scores


# --------------------------------------------------------------------------- measured


def from_store(entries: list[dict]) -> list[AccuracyScore]:
    """Our own task measurements for one file (already matched by sha256), newest per metric last."""
    scores = []
    for e in entries:
        if "value_pct" not in e:
            continue  # perplexity / KLD lines
        scores.append(AccuracyScore(
            metric=normalise_metric(e["metric"]), value_pct=float(e["value_pct"]), provenance="measured",
            n_shot=e.get("n_shot", 0), source=e.get("source", "profiler eval"), variant="acc_norm",
            n_tasks=e.get("n_tasks"), ci95_pct=e.get("ci95_pct"), note=f"run {e.get('run_id')}",
        ))
    return scores


def best(scores: list[AccuracyScore], metric: str) -> AccuracyScore | None:
    """The score that wins for ``metric``: exact (this file) before inherited, then measured >
    lm-eval > published, then more tasks; then the latest measurement (the store is in time
    order) or the first catalogue entry (the catalogue lists the closest model first)."""
    metric = normalise_metric(metric)
    candidates = [(i, s) for i, s in enumerate(scores) if s.metric == metric]
    if not candidates:
        return None

    def key(item):
        i, s = item
        return (s.inherited, PROVENANCE_RANK.get(s.provenance, 9), -(s.n_tasks or 0), -i if s.provenance == "measured" else i)

    return min(candidates, key=key)[1]


def metrics(scores: list[AccuracyScore]) -> list[str]:
    return sorted({s.metric for s in scores})
