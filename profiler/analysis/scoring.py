"""Client-side cost-effectiveness: speed, memory and energy merged with accuracy.

A *configuration* is one model file run under one runtime (threads and the CPUs they ran on,
batch, KV-cache types, flash attention); its numbers come from the rows of a ``profiler run``: peak RSS over all its
tests; decode t/s and J per generated token from one *reference test* shared by the configurations
compared (``reference_shape``: the decode shape most of them ran, tg at depth 0 first on a tie),
never an average over depths or lengths, and J/token averaged only within one attribution.
Accuracy comes from ``profiler.analysis.accuracy``.

Everything here is arithmetic on what it is given: it reads no file and changes no argument.
``scoring_io`` gathers the inputs (runs, catalogue, measurement index, lm-eval files, hashes).

Scores (README, "Scores"), for accuracy A in %, P parameters, E = J per generated token:

* tokens per joule            = 1 / E
* J per 1k generated tokens   = 1000 * E
* cost per 1M tokens          = E * 1e6 / 3.6e6 kWh * price per kWh
* accuracy per joule          = A / (1000 * E)         (% per J spent on 1k generated tokens)
* accuracy per GB             = A / (peak RSS / 1e9)
* knowledge density           = A / (P / 1e9)           (% per billion active parameters)
* chance-adjusted density     = (A - chance) / (P / 1e9)

P is the *active* parameter count (``model_n_params_active``): a mixture-of-experts model counts
only the experts a token runs through; for a dense model it is the total.

A configuration is on the Pareto frontier when no other one is at least as good on every
objective (accuracy, J/token, peak memory, decode t/s) and *significantly* better on one; "at
least as good" means not significantly worse. Each objective has its noise allowance
(``axis_cmp``): quality a significant difference (``ranking``), decode t/s Welch's test on the
repetitions' samples, J/token the 95% interval of the difference (from each reference test's
interval over its repetitions; without one on both sides a stated relative tolerance), peak
memory a stated relative tolerance. J/token figures of different attributions (a process's share,
the whole machine's) decide nothing between each other. An objective that is missing for some
configuration (energy unavailable, say) is left out, and the output says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from profiler.analysis import accuracy as acc_mod
from profiler.analysis import battery_life as battery_mod
from profiler.analysis import ranking
from profiler.errors import UserError
from profiler.platform.placement import NO_MASK, cpu_list_text
from profiler.stats import (
    ALPHA,
    difference_half_width,
    mean_of_independent_half_width,
    mean_of_known,
    welch_t_test,
)

DEFAULT_PRICE_PER_KWH = 0.30
J_PER_KWH = 3.6e6

OBJECTIVES = (  # name, attribute, +1 higher is better / -1 lower is better, label
    ("quality", "accuracy_pct", +1, "accuracy"),
    ("energy", "j_per_decode_token", -1, "J/token"),
    ("memory", "peak_rss_bytes", -1, "peak memory"),
    ("speed", "decode_tps", +1, "decode t/s"),
)
# Noise allowances of the Pareto comparison (docs/quality.md, "Pareto frontier"). Decode t/s uses
# its repetitions' samples and J/token its measured 95% interval when both configurations have
# them; estimated or unresolved J/token and older rows have none, and peak RSS is one maximum, so
# there a stated relative tolerance stands in.
SPEED_TOLERANCE_REL = 0.05  # without samples: t/s within 5% of the larger is not a difference
ENERGY_TOLERANCE_REL = 0.05  # without intervals: J/token within 5% of the larger is not a difference
MEMORY_TOLERANCE_REL = 0.02  # peak RSS within 2% of the larger is not a difference


@dataclass
class Configuration:
    """One model file under one runtime, summarised over its rows."""

    key: str
    model_name: str
    model_file: str
    quant: str
    n_params: int
    file_size_bytes: int
    n_threads: int
    runtime: str  # batch, KV types, flash attention
    placement: str = ""  # the CPUs its threads ran on ("CPUs 4-7 (4× Cortex-A76)"); "": no placement
    n_params_active: int | None = None  # what per-parameter scores divide by (None: rows predate it)
    decode_tps: float | None = None
    prefill_tps: float | None = None
    peak_rss_bytes: int | None = None
    j_per_decode_token: float | None = None
    j_per_decode_token_ci95_j: float | None = None  # the reference test's 95% half-width; None: see energy_interval_note
    energy_interval_note: str = ""  # why J/token has no interval ("" when it has one or no J/token)
    decode_samples_tps: dict[str, list[float]] = field(default_factory=dict)  # the reference test's repetitions; {}: none
    energy_measured: bool | None = None
    energy_note: str = "energy unavailable"
    run_id: str = ""
    model_sha256: str | None = None
    energy_attribution: str | None = None  # process-share / system-wide / as-given, of the J/token above
    # Each decode test shape's own figures; decode_tps and j_per_decode_token are the reference
    # test's (``at_reference``), never an average over unlike shapes.
    decode_tests: list[DecodeTest] = field(default_factory=list)
    reference_test: str | None = None  # the shape decode_tps and J/token come from
    decode_note: str = ""  # which test they come from, or why they are unavailable
    # Battery life (battery_life.py) for the board's answer shape; None: no battery capacity is
    # known for the device (``battery_note`` says why) or the configuration was built by hand
    answers_per_charge: float | None = None
    answers_per_charge_ci95: tuple[float | None, float | None] | None = None
    generation_hours: float | None = None
    battery_measured: bool | None = None
    battery_note: str = ""


@dataclass
class DecodeTest:
    """One decode test shape of a configuration (tg at a depth, or pp+tg) and its own figures."""

    test: str  # "tg128", "pp512+tg128", "tg128 @ d512"
    n_prompt: int
    n_gen: int
    n_depth: int
    decode_tps: float | None
    j_per_decode_token: float | None = None
    energy_measured: bool | None = None
    energy_attribution: str | None = None
    energy_note: str = "energy unavailable"
    samples_tps: list[float] = field(default_factory=list)  # every repetition's t/s; [] unless a pure tg test
    j_per_decode_token_ci95_j: float | None = None  # 95% half-width of the J/token above (``energy_interval``)
    energy_interval_note: str = ""  # why there is none ("" when there is one or no J/token)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_prompt, self.n_gen, self.n_depth)


@dataclass
class Score:
    config: Configuration
    metric: str
    accuracy: acc_mod.AccuracyScore | None
    accuracy_pct: float | None
    chance_pct: float | None
    tokens_per_j: float | None = None
    j_per_1k_tokens: float | None = None
    cost_per_1m_tokens: float | None = None
    accuracy_pct_per_j_per_1k_tokens: float | None = None
    accuracy_pct_per_gb_peak: float | None = None
    knowledge_density_pct_per_b_params: float | None = None
    knowledge_density_above_chance_pct_per_b_params: float | None = None
    on_frontier: bool | None = None  # None: not compared (no accuracy)
    dominated_by: list[str] = field(default_factory=list)
    quality_rank: int | None = None  # 1 + configurations significantly better on quality (ranking.py)

    def objective(self, attr: str):
        return self.accuracy_pct if attr == "accuracy_pct" else getattr(self.config, attr)


@dataclass
class Scoreboard:
    metric: str
    price_per_kwh: float
    scores: list[Score]
    objectives_used: list[str]
    notes: list[str] = field(default_factory=list)
    quality_order: ranking.QualityOrder | None = None  # pairwise significance-aware quality verdicts
    reference_test: str | None = None  # the decode test shape every decode t/s and J/token is from
    reference_note: str = ""  # that, in a sentence, with the configurations that lack it


# --------------------------------------------------------------------------- configurations


def _attribution(row) -> str:
    """The row's energy attribution; rows stored before the label existed say only whether they were split."""
    if row.energy_attribution:
        return row.energy_attribution
    return "process-share" if row.energy_attributed else "not recorded"


def _energy(rows) -> tuple[float | None, bool | None, str, str | None]:
    """(J per decode token, measured, note, attribution) over rows of one test shape. Figures are
    averaged only within one attribution: a process's share and a whole machine's are not alike."""
    # A J/token of 0 (or less) is physically impossible: rows stored before issue #10 could hold a
    # silent 0.0 from a counter that never advanced. It is unavailable, never the best energy.
    with_energy = [r for r in rows if (r.j_per_decode_token or 0) > 0]
    if not with_energy:
        reasons = {r.energy_unavailable for r in rows} - {None}
        if any(r.j_per_decode_token is not None for r in rows):
            reasons.add("a stored J/token of 0, which no real measurement gives")
        return None, None, "energy unavailable" + (f" ({'; '.join(sorted(reasons))})" if reasons else ""), None
    attributions = sorted({_attribution(r) for r in with_energy})
    if len(attributions) > 1:
        return None, None, (f"energy unavailable, because its rows mix attributions ({', '.join(attributions)}), "
                            "which are not averaged"), None
    value = mean_of_known([r.j_per_decode_token for r in with_energy])
    measured = all(bool(r.energy_measured) for r in with_energy)
    source = with_energy[0].energy_source or "?"
    method = with_energy[0].energy_method or "?"
    return value, measured, f"{'measured' if measured else 'ESTIMATED'}: {source} ({method}), {attributions[0]}", attributions[0]


def decode_interval_j(row) -> tuple[float | None, str]:
    """(95% half-width of the row's decode J/token in J, "") from its decode phase's interval over
    the repetitions, or (None, why): estimated, windows the meter does not resolve, one repetition,
    or a row stored before intervals were."""
    decode = ((row.energy_detail or {}).get("phases") or {}).get("decode") or {}
    half = decode.get("j_per_token_ci95_j")
    if half is not None and row.energy_measured:
        return half, ""
    if not row.energy_measured:
        return None, "estimated, not measured"
    return None, (decode.get("interval") or {}).get("unavailable") or "no interval stored (a row from before J/token intervals)"


def energy_interval(rows) -> tuple[float | None, str]:
    """(95% half-width of the J/token ``_energy`` gives for rows of one test shape, "") or (None,
    why); only for rows that have a J/token of one attribution. That figure is the plain mean of the rows' figures (repeated runs), so its half-width is
    that of a mean of independent estimates (``stats.mean_of_independent_half_width``); one row
    without an interval leaves the mean without one."""
    with_energy = [r for r in rows if (r.j_per_decode_token or 0) > 0]
    found = [decode_interval_j(r) for r in with_energy]
    half = mean_of_independent_half_width([h for h, _ in found])
    if half is not None:
        return half, ""
    return None, "J/token interval unavailable: " + "; ".join(sorted({why for h, why in found if h is None}))


def decode_shape(row) -> tuple[int, int, int] | None:
    """(n_prompt, n_gen, n_depth) of a decode test; None for a prompt-only or sustained test (a
    sustained row measures heat soak, not the same thing as its burst shape)."""
    if not (row.n_gen or 0) > 0 or row.sustained_s is not None:
        return None
    return (row.n_prompt or 0, row.n_gen, row.n_depth or 0)


def shape_name(shape: tuple[int, int, int]) -> str:
    """The test's name as ``profiler run`` writes it: tg128, pp512+tg128, tg128 @ d512."""
    n_prompt, n_gen, n_depth = shape
    label = "+".join(([f"pp{n_prompt}"] if n_prompt else []) + [f"tg{n_gen}"])
    return f"{label} @ d{n_depth}" if n_depth else label


def decode_tests(rows) -> list[DecodeTest]:
    """Each decode shape among ``rows`` with its own t/s and J/token."""
    shapes: dict[tuple[int, int, int], list] = {}
    for row in rows:
        shape = decode_shape(row)
        if shape is not None:
            shapes.setdefault(shape, []).append(row)
    tests = []
    for shape, mine in sorted(shapes.items()):
        j, measured, note, attribution = _energy(mine)
        half, why = energy_interval(mine) if j is not None else (None, "")
        tests.append(DecodeTest(test=shape_name(shape), n_prompt=shape[0], n_gen=shape[1], n_depth=shape[2],
                                decode_tps=mean_of_known([r.decode_ts for r in mine]), j_per_decode_token=j,
                                energy_measured=measured, energy_attribution=attribution, energy_note=note,
                                samples_tps=decode_samples(mine), j_per_decode_token_ci95_j=half,
                                energy_interval_note=why))
    return tests


def reference_shape(configs: list[Configuration]) -> tuple[int, int, int] | None:
    """The decode test the scoreboard compares: the shape the most configurations ran; on a tie,
    tg at depth 0 (a plain decode on an empty cache, llama-bench's tg) first, then the longer n_gen
    (longer windows resolve energy better), then the shorter prompt and depth."""
    count: dict[tuple[int, int, int], int] = {}
    for c in configs:
        for shape in {t.shape for t in c.decode_tests if t.decode_tps is not None}:
            count[shape] = count.get(shape, 0) + 1
    if not count:
        return None
    return max(count, key=lambda s: (count[s], s[0] == 0 and s[2] == 0, s[1], -s[0], -s[2]))


# The figures a configuration takes from its reference test (fields of both DecodeTest and Configuration).
REFERENCE_FIELDS = ("decode_tps", "j_per_decode_token", "j_per_decode_token_ci95_j", "energy_interval_note",
                    "energy_measured", "energy_attribution", "energy_note")


def at_reference(configs: list[Configuration]) -> tuple[list[Configuration], str | None, str]:
    """Copies of ``configs`` whose decode t/s and J/token are the reference test's; (copies, its
    name, a sentence saying which test and which configurations lack it). Configurations built
    without their decode tests (by hand, from a catalogue) are left as they are."""
    measured = [c for c in configs if c.decode_tests]
    shape = reference_shape(measured)
    if shape is None:
        return list(configs), None, ""
    name = shape_name(shape)
    out, lacking = [], []
    for c in configs:
        if not c.decode_tests:
            out.append(c)
            continue
        found = next((t for t in c.decode_tests if t.shape == shape and t.decode_tps is not None), None)
        if found is None:
            lacking.append(c.key)
            ran = ", ".join(t.test for t in c.decode_tests)
            why = f"unavailable, because this configuration has no {name} test (it ran {ran})"
            unavailable = {**dict.fromkeys(REFERENCE_FIELDS), "energy_interval_note": "", "energy_note": f"energy {why}"}
            out.append(replace(c, **unavailable, reference_test=name, decode_samples_tps={},
                               decode_note=f"decode t/s and J/token {why}"))
        else:
            out.append(replace(c, **{f: getattr(found, f) for f in REFERENCE_FIELDS}, reference_test=name,
                               decode_samples_tps={name: found.samples_tps} if found.samples_tps else {},
                               decode_note=f"decode t/s and J/token from {name}"))
    note = (f"reference test {name}: decode t/s and J/token come from this test alone, the decode shape the most "
            f"configurations ran ({len(measured) - len(lacking)} of {len(measured)}); other shapes (depths, prompts, "
            "lengths) are not averaged in")
    if lacking:
        note += f"; unavailable for {', '.join(lacking)}, which did not run it"
    return out, name, note + _attribution_note(out)


def _attribution_note(configs: list[Configuration]) -> str:
    """Says so when the J/token figures compared are of different attributions."""
    kinds: dict[str, list[str]] = {}
    for c in configs:
        if c.j_per_decode_token is not None and c.energy_attribution:
            kinds.setdefault(c.energy_attribution, []).append(c.key)
    if len(kinds) < 2:
        return f"; J/token attribution: {next(iter(kinds))}" if kinds else ""
    parts = "; ".join(f"{kind} for {', '.join(keys)}" for kind, keys in sorted(kinds.items()))
    return (f"; J/token attribution differs ({parts}): a system-wide figure is the whole machine's, a "
            "process-share figure this process's share, so those are not like for like")


def _battery(rows, device: Mapping | None, answer: tuple[int, int]) -> dict:
    """The configuration's battery-life fields, from the capacity stored with the device that ran
    the rows (a fleet row carries its own device's fingerprint)."""
    own = (rows[0].device_fingerprint or {}).get("battery")
    capacity = battery_mod.capacity_of({"battery": own} if own else device)
    life = battery_mod.battery_life(rows, capacity, answer)
    if life.unavailable:
        return {"battery_note": life.unavailable}
    return {"answers_per_charge": life.answers_per_charge, "answers_per_charge_ci95": life.answers_per_charge_ci95,
            "generation_hours": life.generation_hours, "battery_measured": life.measured,
            "battery_note": f"{life.prompt_tokens}+{life.answer_tokens} tokens; {life.provenance}"
                            + (f"; no interval: {life.interval_note}" if life.interval_note else "")}


def configurations(run_rows, run_id: str = "", run_device: Mapping | None = None,
                   answer: tuple[int, int] = battery_mod.DEFAULT_ANSWER) -> list[Configuration]:
    """Group a run's rows by model file and runtime; decode t/s and J/token are the run's reference
    test's (``at_reference``); answers per charge for ``answer`` where ``run_device`` (the run's) or the
    rows' own fingerprints record a battery."""
    groups: dict[tuple, list] = {}
    for row in run_rows:
        key = (row.model_name, row.model_filename, row.n_threads, row.n_batch,
               row.n_ubatch, row.type_k, row.type_v, row.flash_attn,
               row.device_name,  # a fleet run: each device's rows are its own configurations
               row.cpu_mask or NO_MASK)  # and each placement its own (rows before placements: none)
        groups.setdefault(key, []).append(row)
    configs = []
    for (name, filename, threads, nb, nub, tk, tv, fa, device, _), rows in groups.items():
        first = rows[0]
        where = placement_text(first)
        tests = decode_tests(rows)
        note = _energy(rows)[2] if not tests else "energy unavailable"  # with decode tests: the reference's, below
        peaks = [r.peak_rss_bytes for r in rows if r.peak_rss_bytes is not None]
        runtime = f"b{nb}/ub{nub}, kv {tk}/{tv}, fa {({-1: 'auto', 0: 'off', 1: 'on'}).get(fa, fa)}"
        configs.append(Configuration(
            key=f"{device + ': ' if device else ''}{name} t{threads}" + (f" on {where}" if where else ""),
            model_name=name, model_file=filename, quant=first.quant_type,
            n_params=first.model_n_params, file_size_bytes=first.file_size_bytes,
            n_threads=threads, runtime=runtime, placement=where,
            n_params_active=first.model_n_params_active or first.model_n_params,
            prefill_tps=mean_of_known([r.prefill_ts for r in rows if (r.n_prompt or 0) > 0]),
            peak_rss_bytes=max(peaks) if peaks else None, energy_note=note, run_id=run_id, decode_tests=tests,
            **_battery(rows, run_device, answer),
        ))
    keys = [c.key for c in configs]
    for c in configs:  # same model at the same thread count under another runtime: name them apart
        if keys.count(c.key) > 1:
            c.key = f"{c.key} {c.runtime}"
    return at_reference(configs)[0]


def setting_text(config: Configuration) -> str:
    """What to run: "Q4_K_M, 4 threads on CPUs 4-7 (4× Cortex-A76)" (the quant, threads and cores)."""
    threads = f"{config.n_threads} thread{'s' if config.n_threads != 1 else ''}"
    return f"{config.quant}, {threads}" + (f" on {config.placement}" if config.placement else "")


def placement_text(row) -> str:
    """Where a placed row's threads ran, as the kernel reported it: "CPUs 4-7 (4× Cortex-A76)";
    "" for a row without a placement."""
    if (row.cpu_mask or NO_MASK) == NO_MASK or not row.cpu_affinity:
        return ""
    text = f"CPU{'s' if len(row.cpu_affinity) > 1 else ''} {cpu_list_text(row.cpu_affinity)}"
    return f"{text} ({row.cpu_cores})" if row.cpu_cores else text


def decode_samples(rows) -> list[float]:
    """The repetition t/s samples of one decode test shape's rows; [] unless every row is a pure
    generation test with two or more samples (a pp+tg row's samples are of both phases, not decode)."""
    if not rows or any((r.n_prompt or 0) > 0 or len(r.samples_ts or []) < 2 for r in rows):
        return []
    return [x for r in rows for x in r.samples_ts]


# --------------------------------------------------------------------------- scores


def score(config: Configuration, metric: str, acc: acc_mod.AccuracyScore | None, price_per_kwh: float) -> Score:
    a = acc.value_pct if acc else None
    chance = acc_mod.chance_pct(metric)
    s = Score(config=config, metric=acc_mod.normalise_metric(metric), accuracy=acc, accuracy_pct=a, chance_pct=chance)
    e = config.j_per_decode_token
    if e is not None and e > 0:
        s.tokens_per_j = 1 / e
        s.j_per_1k_tokens = 1000 * e
        s.cost_per_1m_tokens = e * 1e6 / J_PER_KWH * price_per_kwh
        if a is not None:
            s.accuracy_pct_per_j_per_1k_tokens = a / (1000 * e)
    if a is not None and config.peak_rss_bytes:
        s.accuracy_pct_per_gb_peak = a / (config.peak_rss_bytes / 1e9)
    active = config.n_params_active or config.n_params  # per-parameter scores use active parameters
    if a is not None and active:
        s.knowledge_density_pct_per_b_params = a / (active / 1e9)
        if chance is not None:
            s.knowledge_density_above_chance_pct_per_b_params = (a - chance) / (active / 1e9)
    return s


def _relative_cmp(a: float, b: float, sign: int, tolerance: float) -> int:
    """+1 when a is better than b by more than ``tolerance`` of the larger, -1 when worse, else 0."""
    if abs(a - b) <= tolerance * max(abs(a), abs(b)):
        return 0
    return 1 if sign * (a - b) > 0 else -1


def _speed_cmp(a: Configuration, b: Configuration) -> int:
    """Welch's test on each decode test's repetitions: faster only when every test both ran says
    so at p < 0.05 (each test must agree, so no correction for several is needed). Without samples
    on both sides for the same tests: the stated tolerance on the means."""
    tests = a.decode_samples_tps.keys()
    if not tests or tests != b.decode_samples_tps.keys():
        return _relative_cmp(a.decode_tps, b.decode_tps, +1, SPEED_TOLERANCE_REL)
    signs = set()
    for test in tests:
        xa, xb = a.decode_samples_tps[test], b.decode_samples_tps[test]
        p = welch_t_test(xa, xb)
        if p is None or p >= ALPHA:
            return 0
        signs.add(1 if mean_of_known(xa) > mean_of_known(xb) else -1)
    return signs.pop() if len(signs) == 1 else 0


def unlike_attribution(a: Configuration, b: Configuration) -> bool:
    """Whether the two J/token figures are of different attributions (a process's share against
    the whole machine's, say): not like for like, so neither is better on energy."""
    return bool(a.energy_attribution and b.energy_attribution and a.energy_attribution != b.energy_attribution)


def _energy_cmp(a: Configuration, b: Configuration) -> int:
    """Less energy only when the 95% interval of the difference excludes 0 (the two reference
    tests' intervals, independent, in quadrature); without an interval on both sides (estimates,
    unresolved windows, older rows) the stated tolerance. Unlike attributions: never."""
    if unlike_attribution(a, b):
        return 0
    ea, eb = a.j_per_decode_token, b.j_per_decode_token
    if a.j_per_decode_token_ci95_j is None or b.j_per_decode_token_ci95_j is None:
        return _relative_cmp(ea, eb, -1, ENERGY_TOLERANCE_REL)
    if abs(ea - eb) <= difference_half_width(a.j_per_decode_token_ci95_j, b.j_per_decode_token_ci95_j):
        return 0
    return 1 if ea < eb else -1


def axis_cmp(a: Score, b: Score, attr: str, sign: int, order: ranking.QualityOrder) -> int:
    """+1 when ``a`` is significantly better than ``b`` on one objective, -1 when worse, 0 when the
    difference is within that objective's noise allowance."""
    if attr == "accuracy_pct":  # only a significant difference counts
        return order.cmp(a.config.key, b.config.key)
    if attr == "decode_tps":
        return _speed_cmp(a.config, b.config)
    if attr == "j_per_decode_token":
        return _energy_cmp(a.config, b.config)
    return _relative_cmp(a.objective(attr), b.objective(attr), sign, MEMORY_TOLERANCE_REL)


def _dominates(a: Score, b: Score, objectives, order: ranking.QualityOrder) -> bool:
    """At least as good on every objective (never significantly worse) and significantly better on one."""
    better = False
    for _, attr, sign, _ in objectives:
        c = axis_cmp(a, b, attr, sign, order)
        if c < 0:
            return False
        better = better or c > 0
    return better


def quality_order(scores: list[Score], metric: str, measurements: list[list[dict]]) -> ranking.QualityOrder:
    """Which configurations the quality data can tell apart (task accuracy, else KLD/PPL from
    ``measurements``: each configuration's measurement-index lines)."""
    return ranking.QualityOrder([ranking.evidence(s.config.key, s.accuracy, lines, s.config.n_params)
                                 for s, lines in zip(scores, measurements, strict=True)], metric)


def _accuracy_only_order(scores: list[Score], metric: str) -> ranking.QualityOrder:
    """Significance from the accuracies alone (no KLD/PPL lookup in the measurement index)."""
    return ranking.QualityOrder([ranking.Evidence(s.config.key, s.accuracy) for s in scores], metric)


@dataclass
class Mark:
    """One configuration's place on the frontier."""

    on_frontier: bool
    dominated_by: list[str]
    quality_rank: int


@dataclass
class Frontier:
    objectives_used: list[str]  # labels
    notes: list[str]  # objectives left out, configurations not compared
    marks: dict[str, Mark]  # by configuration key; only configurations with an accuracy

    def marked(self, scores: list[Score]) -> list[Score]:
        """Copies of ``scores`` carrying their marks (the arguments are unchanged)."""
        return [replace(s, **vars(self.marks[s.config.key])) if s.config.key in self.marks else replace(s)
                for s in scores]


def pareto(scores: list[Score], order: ranking.QualityOrder | None = None) -> Frontier:
    """Frontier membership of each configuration with an accuracy, and which objectives were used.
    On quality a configuration beats another only where ``order`` (default: from the scores'
    accuracy alone) finds a significant difference; on the others, beyond their noise allowance
    (``axis_cmp``). Changes nothing: ``Frontier.marked`` gives marked copies."""
    rated = [s for s in scores if s.accuracy_pct is not None]
    order = order or _accuracy_only_order(scores, scores[0].metric if scores else "")
    used, notes = [], []
    for name, attr, sign, label in OBJECTIVES:
        missing = [s.config.key for s in rated if s.objective(attr) is None]
        if missing:
            notes.append(f"{label} left out of the Pareto frontier: unavailable for {', '.join(missing)}")
        else:
            used.append((name, attr, sign, label))
    if any(u[0] == "energy" for u in used):
        notes += _unlike_energy_notes(rated)
    marks = {}
    for s in rated:
        by = [o.config.key for o in rated if o is not s and _dominates(o, s, used, order)]
        marks[s.config.key] = Mark(on_frontier=not by, dominated_by=by, quality_rank=order.rank(s.config.key))
    if scores and not rated:  # one note saying so, and how to get a score, rather than one per configuration
        notes.append(f"{no_quality_text(scores)}; until then the scoreboard compares cost only")
    for s in scores:
        if s.accuracy_pct is None and rated:
            notes.append(f"{s.config.key}: no {s.metric} score, so it is not compared")
    return Frontier([u[3] for u in used], notes, marks)


def no_quality_text(scores: list[Score]) -> str:
    """That no configuration has any score on the metric (none measured on these files, none
    published), and how to get one."""
    names = list(dict.fromkeys(s.config.model_name for s in scores))
    which = f"this model ({names[0]})" if len(names) == 1 else f"these models ({', '.join(names)})"
    metric = scores[0].metric if scores else "accuracy"
    return (f"no quality data: no {metric} score exists for {which}, neither measured on these files nor "
            f"published; {acc_mod.how_to_measure(metric, names[0] if len(names) == 1 else 'MODEL')}")


def _unlike_energy_notes(rated: list[Score]) -> list[str]:
    """One note naming the pairs whose J/token figures are of different attributions."""
    pairs = [f"{a.config.key} ({a.config.energy_attribution}) and {b.config.key} ({b.config.energy_attribution})"
             for i, a in enumerate(rated) for b in rated[i + 1 :] if unlike_attribution(a.config, b.config)]
    if not pairs:
        return []
    return [f"J/token not compared in the Pareto frontier between {'; '.join(pairs)}: their attributions differ "
            "(a process's share against the whole machine's), so energy decides no dominance between them"]


def scoreboard(scores: list[Score], price_per_kwh: float, order: ranking.QualityOrder | None = None,
               notes: list[str] | None = None) -> Scoreboard:
    """The scoreboard of ``scores`` (all of one metric): marked copies, the objectives used and the
    notes (``notes`` first, then the frontier's, then the quality order's)."""
    metric = scores[0].metric if scores else ""
    order = order or _accuracy_only_order(scores, metric)
    frontier = pareto(scores, order)
    return Scoreboard(metric=metric, price_per_kwh=price_per_kwh, scores=frontier.marked(scores),
                      objectives_used=frontier.objectives_used, notes=(notes or []) + frontier.notes + order.notes,
                      quality_order=order)


def check_price(price_per_kwh: float) -> None:
    if price_per_kwh < 0:
        raise UserError(f"--price-kwh {price_per_kwh} is invalid: it must be >= 0")


def build(configs: list[Configuration], known: list[list[acc_mod.AccuracyScore]], metric: str = "hellaswag",
          price_per_kwh: float = DEFAULT_PRICE_PER_KWH, measurements: list[list[dict]] | None = None) -> Scoreboard:
    """The scoreboard of ``configs``, given every accuracy ``known`` for each and (for KLD/PPL
    tie-breaks) each one's measurement-index lines."""
    check_price(price_per_kwh)
    configs, reference, reference_note = at_reference(configs)  # one reference test across every run given
    chosen, setting_notes = acc_mod.comparable(known, metric)
    scores = [score(c, metric, a, price_per_kwh) for c, a in zip(configs, chosen, strict=True)]
    order = quality_order(scores, acc_mod.normalise_metric(metric), measurements or [[] for _ in configs])
    board = scoreboard(scores, price_per_kwh, order, [f"{configs[i].key}: {text}" for i, text in setting_notes])
    board.metric = acc_mod.normalise_metric(metric)
    for s in scores:
        if s.accuracy and s.accuracy.inherited:
            board.notes.append(f"{s.config.key}: {s.metric} {s.accuracy.value_pct:.1f} is inherited from "
                               f"{s.accuracy.inherited_from}, not measured on this file; "
                               f"{acc_mod.how_to_measure(s.metric, s.config.model_name)}")
    board.reference_test, board.reference_note = reference, reference_note
    return board


# --------------------------------------------------------------------------- budget recommendation


def parse_bytes(text: str) -> int:
    """``1GB`` (1e9), ``1GiB`` (2^30), ``800MB``, ``512M``, or a plain number of bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?)[bB]?\s*", text or "")
    if not match:
        raise UserError(f"--max-memory '{text}' is not a size like 1GB, 800MB or 1.5GiB")
    power = " kmgt".index(match.group(2).lower() or " ")
    base = 1024 if match.group(3) else 1000
    return int(float(match.group(1)) * base**power)


NO_BUDGET = "no budget set"


@dataclass
class Recommendation:
    best: Score | None
    why: str
    runners_up: list[Score]
    excluded: list[tuple[str, str]]  # (configuration, reason)


def _cost_key(s: Score):
    inf = math.inf
    return (s.config.j_per_decode_token if s.config.j_per_decode_token is not None else inf,
            -(s.config.decode_tps or 0), s.config.peak_rss_bytes or inf)


def _quality_ranked(fits: list[Score], order: ranking.QualityOrder) -> list[Score]:
    """Fewest configurations significantly better first (the top tier: none is), then the cheaper."""
    def losses(s: Score) -> int:
        return sum(1 for o in fits if o is not s and order.cmp(o.config.key, s.config.key) > 0)

    return sorted(fits, key=lambda s: (losses(s), _cost_key(s)))


def recommend(board: Scoreboard, max_memory_bytes: int | None = None, min_tps: float | None = None,
              max_j_per_token: float | None = None, n_runners_up: int = 3,
              min_answers_per_charge: float | None = None) -> Recommendation:
    """The best-quality configuration inside the budget. Quality differences the data do not show
    (``ranking``: not measured, equivalent or not resolved; ``why`` says which, for each) rank
    nobody, and among the configurations no other beats on quality the choice goes to less energy,
    then speed, then memory: never significantly worse on the quality measure in use than another
    configuration in the budget. With no measured difference at all, ``why`` says the choice is
    on cost alone."""
    fits, excluded = [], []
    rated = any(s.accuracy_pct is not None for s in board.scores)  # with no score at all: cost decides
    for s in board.scores:
        c = s.config
        reason = None
        if s.accuracy_pct is None and rated:
            reason = f"no {board.metric} score"
        elif max_memory_bytes is not None and (c.peak_rss_bytes is None or c.peak_rss_bytes > max_memory_bytes):
            reason = "peak memory unknown" if c.peak_rss_bytes is None else f"peak memory {c.peak_rss_bytes / 1e9:.2f} GB > {max_memory_bytes / 1e9:.2f} GB"
        elif min_tps is not None and (c.decode_tps is None or c.decode_tps < min_tps):
            reason = "no decode test" if c.decode_tps is None else f"decode {c.decode_tps:.1f} t/s < {min_tps:g}"
        elif max_j_per_token is not None and (c.j_per_decode_token is None or c.j_per_decode_token > max_j_per_token):
            reason = ("energy unavailable" if c.j_per_decode_token is None else
                      f"{c.j_per_decode_token:.3g} J/token{'' if c.energy_measured else ' (est.)'} > {max_j_per_token:g}")
        elif min_answers_per_charge is not None and (c.answers_per_charge is None
                                                     or c.answers_per_charge < min_answers_per_charge):
            reason = (f"battery life {c.battery_note or 'unavailable'}" if c.answers_per_charge is None else
                      f"{c.answers_per_charge:,.0f} answers/charge{'' if c.battery_measured else ' (est.)'} "
                      f"< {min_answers_per_charge:g}")
        if reason:
            excluded.append((c.key, reason))
        else:
            fits.append(s)
    budget = _budget_text(max_memory_bytes, min_tps, max_j_per_token, min_answers_per_charge)
    if not fits:
        return Recommendation(None, f"no configuration meets the budget ({budget})", [], excluded)
    where = (f"among {len(fits)} configuration(s) within the budget ({budget})" if budget != NO_BUDGET
             else f"among {len(fits)} configuration(s) ({NO_BUDGET})")
    if not rated:
        by_cost = sorted(fits, key=_cost_key)
        why = f"on cost alone (lower J/token, then higher t/s, then lower memory) {where}: {no_quality_text(board.scores)}"
        return Recommendation(by_cost[0], why, by_cost[1 : 1 + n_runners_up], excluded)
    order = board.quality_order or _accuracy_only_order(board.scores, board.metric)
    ranked = _quality_ranked(fits, order)
    top = ranked[0]
    verdicts = {s.config.key: order.verdict(top.config.key, s.config.key) for s in ranked[1:]}
    measured = [s for s in ranked[1:] if verdicts[s.config.key] and verdicts[s.config.key].case != "not measured"]
    if len(fits) == 1:
        why = f"the only configuration within the budget ({budget}): {top.accuracy_pct:.1f}% ({top.accuracy.label()})"
    elif not measured:
        why = (f"on cost alone (lower J/token, then higher t/s, then lower memory) {where}: no {board.metric} "
               f"difference between it and the others is measured on their own files; {top.accuracy_pct:.1f}% "
               f"({top.accuracy.label()})")
    else:
        why = f"{_why_quality(top, ranked[1:], verdicts, board.metric)} {where}: {top.accuracy_pct:.1f}% ({top.accuracy.label()})"
        why += _ties_text(top, ranked[1:], verdicts, board.metric)
    decided = {v.measure for v in verdicts.values() if v} - {board.metric, ""}
    if decided:
        why += f"; ranked above others by {', '.join(sorted(decided))} where {board.metric} could not tell"
    if top.on_frontier:
        why += "; on the Pareto frontier"
    elif top.dominated_by:
        why += f"; note: dominated by {', '.join(top.dominated_by)}, which are outside the budget"
    return Recommendation(top, why, ranked[1 : 1 + n_runners_up], excluded)


def _ties_text(top: Score, others: list[Score], verdicts: dict, metric: str) -> str:
    """The configurations quality did not separate from ``top``, each with why: equivalent (within
    the margin), not resolved (the difference's interval and the tasks that would resolve it) or
    not measured (an inherited number); then the cost order that chose among them."""
    groups: dict[str, list[str]] = {}
    for s in others:
        v = verdicts[s.config.key]
        if v is None or v.sign or (v.accuracy is not None and v.accuracy.measured and v.accuracy.p_value is None):
            continue
        if v.case == "not measured":
            groups.setdefault(v.case, []).append(s.config.key)
            continue
        more = ranking.more_tasks_text(v.accuracy, metric)
        groups.setdefault(v.case, []).append(f"{s.config.key} ({ranking.difference_text(v.accuracy)}"
                                             + (f"; {more})" if more else ")"))
    if not groups:
        return ""
    heads = {"equivalent": f"equivalent on {metric} to",
             "not resolved": f"{metric} difference not resolved against",
             "not measured": f"{metric} difference not measured against"}
    parts = [f"{heads[case]} {', '.join(groups[case])}" for case in ("equivalent", "not resolved", "not measured")
             if case in groups]
    return "; " + "; ".join(parts) + "; among these, chosen for lower J/token, then higher t/s, then lower memory"


def _why_quality(top: Score, others: list[Score], verdicts: dict, metric: str) -> str:
    """"highest <metric>" only when it is shown better than every other one (by the metric, or by
    KLD/PPL: "best quality"); else it is merely not shown worse than any."""
    if all(verdicts[s.config.key] and verdicts[s.config.key].sign > 0 for s in others):
        return f"highest {metric}" if all(top.accuracy_pct >= s.accuracy_pct for s in others) else "best quality"
    return f"none shown better on {metric}"


def _budget_text(max_memory_bytes, min_tps, max_j, min_answers=None) -> str:
    parts = []
    if max_memory_bytes is not None:
        parts.append(f"peak memory <= {max_memory_bytes / 1e9:.2f} GB")
    if min_tps is not None:
        parts.append(f"decode >= {min_tps:g} t/s")
    if max_j is not None:
        parts.append(f"<= {max_j:g} J/token")
    if min_answers is not None:
        parts.append(f">= {min_answers:g} answers per charge")
    return ", ".join(parts) or NO_BUDGET


# --------------------------------------------------------------------------- command-line values and JSON


def parse_lm_eval(values: list[str]) -> dict[str, list[str]]:
    """``MODEL=results.json`` pairs -> {model: [files]}."""
    out: dict[str, list[str]] = {}
    for value in values:
        model, sep, path = value.partition("=")
        if not sep or not model or not path:
            raise UserError(f"--lm-eval '{value}' must be MODEL=RESULTS.json (the catalogue name the run measured)")
        out.setdefault(model, []).append(path)
    return out


def _score_dict(s: Score) -> dict:
    from dataclasses import asdict

    out = {k: v for k, v in asdict(s).items() if k not in ("config", "accuracy")}
    out["configuration"] = asdict(s.config)
    out["accuracy"] = s.accuracy.to_dict() if s.accuracy else None
    return out


PARETO_NOISE = {  # what "better" needs per objective (JSON: pareto_noise; docs/quality.md, "Pareto frontier")
    "accuracy": f"p < {ALPHA:g} (else KLD/PPL on the same text)",
    "decode t/s": f"Welch p < {ALPHA:g} on the repetitions (without samples: > {SPEED_TOLERANCE_REL:.0%} apart)",
    "J/token": (f"the 95% interval of the difference excludes 0 (each reference test's interval over its repetitions, "
                f"in quadrature; without a measured interval on both sides: > {ENERGY_TOLERANCE_REL:.0%} apart, stated); "
                "never across attributions (process-share against system-wide)"),
    "peak memory": f"> {MEMORY_TOLERANCE_REL:.0%} apart (stated)",
}


def _pairs_dict(board: Scoreboard) -> list[dict]:
    """Every rated pair's quality verdict: better (by which measure), or not measured, equivalent or
    not resolved, with the difference and its 95% interval where a test was run."""
    order = board.quality_order
    if order is None:
        return []
    keys = [s.config.key for s in board.scores if s.accuracy_pct is not None]
    out = []
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            v = order.verdict(a, b)
            if v is None:
                continue
            t = v.accuracy
            out.append({"a": a, "b": b, "case": v.case, "better": {1: a, -1: b}.get(v.sign), "measure": v.measure or None,
                        "difference_pct": t.diff_pct if t else None, "ci95_pct": list(t.ci95_pct) if t and t.ci95_pct else None,
                        "p_value": t.p_value if t else None, "method": t.method if t else None,
                        "tasks_to_resolve": t.n_needed if t else None, "equivalence_margin_pct": ranking.EQUIVALENCE_MARGIN_PCT})
    return out


def to_dict(board: Scoreboard, rec: Recommendation | None = None) -> dict:
    """JSON form: every score with its configuration and the accuracy's provenance."""
    from profiler.results.schema import json_safe

    data = {"metric": board.metric, "price_per_kwh": board.price_per_kwh, "objectives_used": board.objectives_used,
            "reference_test": board.reference_test, "reference_note": board.reference_note,
            "pareto_noise": PARETO_NOISE, "notes": board.notes, "scores": [_score_dict(s) for s in board.scores],
            "quality_pairs": _pairs_dict(board)}
    if rec is not None:
        data["recommendation"] = {"best": rec.best.config.key if rec.best else None,
                                  "setting": setting_text(rec.best.config) if rec.best else None, "why": rec.why,
                                  "runners_up": [s.config.key for s in rec.runners_up],
                                  "excluded": [{"configuration": k, "reason": r} for k, r in rec.excluded]}
    return json_safe(data)
