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

Numbers are only ever compared under one *setting*: the shot count, the variant (``acc``,
``acc_norm`` normalised by bytes as lm-eval does, ``acc_norm_token`` normalised per token as
llama-perplexity and ``profiler eval`` do) and the task subset (the full benchmark, or N tasks of
a data file in a fixed order). ``comparable`` picks one setting for a set of configurations.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from profiler.errors import UserError
from profiler.quality.tasks import MEASURED_VARIANT

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

EXACT_MARKERS = ("this file", "this artifact")

VARIANT_TEXT = {"acc_norm_token": "acc_norm per token", "acc_norm": "acc_norm", "acc": "acc"}

# Size of the split a published full-benchmark number is computed on (validation, or test where
# cards report test): the task count behind its uncertainty when the source states none.
FULL_SET_TASKS = {
    "hellaswag": 10042, "winogrande": 1267, "piqa": 1838, "boolq": 3270, "arc_easy": 2376,
    "arc_challenge": 1172, "openbookqa": 500, "commonsense_qa": 1221, "mmlu": 14042,
}


@dataclass(frozen=True)
class Setting:
    """What must be equal for two accuracy numbers to be compared: the task, the shot count, the
    variant (acc / acc_norm / acc_norm per token / the harness a card names) and the task subset
    (None: the whole benchmark as its source reports it)."""

    metric: str
    n_shot: int | None
    variant: str | None
    subset: str | None = None

    def text(self) -> str:
        """``0-shot acc_norm per token, 100 of 10042 tasks (...)``: shown beside every number."""
        return f"{self._shots()} {self._variant_text()}, {self.subset or 'full benchmark'}"

    def label(self) -> str:
        """``hellaswag 0-shot, lighteval`` (a subset is named after it): a reference family's setting."""
        label = f"{self.metric} {self._shots()}, {self.variant or 'variant unstated'}"
        return f"{label}, {self.subset}" if self.subset else label

    def _shots(self) -> str:
        return "?-shot" if self.n_shot is None else f"{self.n_shot}-shot"

    def _variant_text(self) -> str:
        return VARIANT_TEXT.get(self.variant or "", self.variant) or "variant unstated"


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
    subset: str | None = None  # None: the whole benchmark as its source reports it
    n_correct: int | None = None
    task_correct: str | None = None  # "0"/"1" per task in the subset's order (paired tests)

    @property
    def inherited(self) -> bool:
        return self.inherited_from is not None

    def setting(self) -> Setting:
        return Setting(normalise_metric(self.metric), self.n_shot, self.variant, self.subset)

    def setting_text(self) -> str:
        return self.setting().text()

    def label(self) -> str:
        """Provenance and setting for tables: ``measured 0-shot acc_norm per token, 400 tasks`` /
        ``published 10-shot acc_norm, inherited from X``."""
        parts = [self.provenance]
        if self.n_shot is not None:
            parts[0] += f" {self.n_shot}-shot"
        parts[0] += f" {VARIANT_TEXT.get(self.variant or '', self.variant) or 'variant unstated'}"
        if self.n_tasks:
            parts.append(f"{self.n_tasks} tasks")
        elif self.subset:
            parts.append(self.subset)
        if self.inherited_from:
            parts.append(f"inherited from {self.inherited_from}")
        return ", ".join(parts)

    def tasks_behind(self) -> int | None:
        """How many tasks the number averages: stated, or the benchmark's split for a full-set number."""
        if self.n_tasks:
            return self.n_tasks
        return FULL_SET_TASKS.get(self.metric) if self.subset is None else None

    def to_dict(self) -> dict:
        out = {**asdict(self), "inherited": self.inherited, "setting": self.setting_text()}
        out.pop("task_correct")  # per-task outcomes stay in the measurement index
        return out


def normalise_metric(name: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    aliases = {"arc_e": "arc_easy", "arc_c": "arc_challenge", "arc_average": "arc", "mmlu_cf": "mmlu_cloze",
               "hella_swag": "hellaswag", "wino_grande": "winogrande"}
    return aliases.get(key, key)


def how_to_measure(metric: str, model: str = "MODEL") -> str:
    """How ``model`` gets a ``metric`` score: the one wording every "no score" note uses."""
    metric = normalise_metric(metric)
    if metric == "hellaswag":
        return f"measure it with: profiler eval {model} --hellaswag"
    if metric == "winogrande":
        return f"measure it with: profiler eval {model} --winogrande FILE.csv"
    return (f"give it one with lm-eval's results (profiler score --lm-eval {model}=results.json) "
            "or a published score in the catalogue (models.toml)")


def chance_pct(metric: str) -> float | None:
    return CHANCE_PCT.get(normalise_metric(metric))


# --------------------------------------------------------------------------- the catalogue


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

    acc_norm is taken where the task reports it, else acc. The run is exact only when one of
    its model arguments names this file (``artifact_names``: file name or sha256, see
    ``names_file``); otherwise it is inherited from whatever model the harness loaded.
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
    exact = names_file(model_args, artifact_names)
    shots = data.get("n-shot") or {}
    limit = config.get("limit")
    samples = data.get("n-samples") or {}
    scores = []
    for task, values in results.items():
        if not isinstance(values, dict):
            continue
        for variant in ("acc_norm", "acc"):
            value = values.get(f"{variant},none", values.get(variant))
            if isinstance(value, (int, float)) and not math.isnan(value):
                stderr = values.get(f"{variant}_stderr,none")
                ci = [100 * (value - 1.96 * stderr), 100 * (value + 1.96 * stderr)] if isinstance(stderr, (int, float)) else None
                effective = (samples.get(task) or {}).get("effective") if isinstance(samples.get(task), dict) else None
                scores.append(AccuracyScore(
                    metric=normalise_metric(task), value_pct=100 * float(value), provenance="lm-eval",
                    n_shot=shots.get(task) if isinstance(shots.get(task), int) else None,
                    source=f"lm-eval results {p.name}", inherited_from=None if exact else model_args,
                    variant=variant, ci95_pct=ci, subset=f"first {limit} documents (lm-eval --limit)" if limit else None,
                    n_tasks=effective if isinstance(effective, int) and limit else None,
                ))
                break
    if not scores:
        raise UserError(f"{p}: no acc or acc_norm values in its results")
    return scores


def names_file(model_args: str, artifact_names: tuple[str, ...]) -> bool:
    """Whether lm-eval's ``model_args`` (``key=value,key=value``) name this file: some value is
    the file's sha256, or a path or repo id whose last component is the file's name. A name that
    merely occurs inside a value (``q4.gguf`` in ``smol-q4.gguf``) does not count."""
    names = {n for n in artifact_names if n}
    for part in model_args.split(","):
        _, _, value = part.partition("=")
        value = value.strip().strip("'\"")
        if value and (value in names or value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] in names):
            return True
    return False


# --------------------------------------------------------------------------- measured


def from_store(entries: list[dict]) -> list[AccuracyScore]:
    """Our own task measurements for one file (already matched by sha256), newest per metric last."""
    scores = []
    for e in entries:
        if "value_pct" not in e:
            continue  # perplexity / KLD lines
        metric = normalise_metric(e["metric"])
        scores.append(AccuracyScore(
            metric=metric, value_pct=float(e["value_pct"]), provenance="measured",
            n_shot=e.get("n_shot", 0), source=e.get("source", "profiler eval"),
            variant=e.get("variant") or MEASURED_VARIANT.get(metric, "acc"),
            n_tasks=e.get("n_tasks"), ci95_pct=e.get("ci95_pct"), note=f"run {e.get('run_id')}",
            subset=_measured_subset(e), n_correct=e.get("n_correct"), task_correct=e.get("task_correct"),
        ))
    return scores


def _measured_subset(entry: dict) -> str:
    """Which tasks a measurement scored: count, order and data file (older index lines carry the
    selection only inside their source text)."""
    selection = entry.get("selection")
    if selection is None:
        source = str(entry.get("source") or "")
        selection = source[source.find("(") + 1 : source.rfind(")")] if "(" in source else f"{entry.get('n_tasks')} tasks"
    data = entry.get("data_sha256")
    return f"{selection}; data {data[:12]}" if data else selection


def best(scores: list[AccuracyScore], metric: str, setting: Setting | None = None) -> AccuracyScore | None:
    """The score that stands for ``metric`` (only among scores in ``setting`` when given): exact
    (this file) before inherited, then measured > lm-eval > published, then more tasks; then the
    latest measurement (the store is in time order) or the first catalogue entry (the catalogue
    lists the closest model first). Precedence only: values are never compared here."""
    metric = normalise_metric(metric)
    candidates = [(i, s) for i, s in enumerate(scores)
                  if s.metric == metric and (setting is None or s.setting() == setting)]
    if not candidates:
        return None
    return min(candidates, key=_precedence)[1]


def _precedence(item: tuple[int, AccuracyScore]) -> tuple:
    i, s = item
    return (s.inherited, PROVENANCE_RANK.get(s.provenance, 9), -(s.n_tasks or 0), -i if s.provenance == "measured" else i)


def comparable(per_config: list[list[AccuracyScore]], metric: str) -> tuple[list[AccuracyScore | None], list[tuple[int, str]]]:
    """One score per configuration, all under one setting, and (index, note) for those left without.

    The setting is the one most configurations have a number in; ties go to the setting with
    more exact (this-file) numbers, then to the better provenance. A configuration known only
    under another setting (say a published 10-shot score beside measured 0-shot ones) gets
    None: it is shown, never ranked against the others."""
    metric = normalise_metric(metric)
    coverage: dict[Setting, list] = {}
    for i, scores in enumerate(per_config):
        for setting in dict.fromkeys(s.setting() for s in scores if s.metric == metric):
            winner = best(scores, metric, setting)
            coverage.setdefault(setting, []).append((i, winner))
    if not coverage:
        return [None] * len(per_config), []

    def strength(setting):
        winners = [w for _, w in coverage[setting]]
        return (len(winners), sum(not w.inherited for w in winners),
                -min(PROVENANCE_RANK.get(w.provenance, 9) for w in winners), max(w.n_tasks or 0 for w in winners))

    chosen = max(coverage, key=strength)
    picked = dict(coverage[chosen])
    out, notes = [picked.get(i) for i in range(len(per_config))], []
    shown = next(iter(picked.values())).setting_text()
    for i, scores in enumerate(per_config):
        other = best(scores, metric)
        if out[i] is None and other is not None:
            notes.append((i, f"{metric} {other.value_pct:.1f} is {other.label()} ({other.setting_text()}), not "
                             f"comparable with the others' {shown}: not ranked"))
    return out, notes


def metrics(scores: list[AccuracyScore]) -> list[str]:
    return sorted({s.metric for s in scores})
