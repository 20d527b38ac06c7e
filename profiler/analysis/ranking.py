"""Which of two configurations has the better quality, and by which measure: only when the data can tell.

Task accuracy is compared first, under one setting (``accuracy.comparable``):

* both files scored on the same tasks with per-task outcomes stored (``profiler eval``): an exact
  McNemar test on the tasks where they disagree (paired, so the shared easy and hard tasks cancel);
* otherwise a two-proportion z-test from each number's task count (a full-benchmark number counts
  its split's size, ``accuracy.FULL_SET_TASKS``), or from its stated 95% interval.

A difference with p >= 0.05 never ranks, and what it is gets said: *equivalent* when an
equivalence test (two one-sided tests at 5%, ``EQUIVALENCE_MARGIN_PCT``) shows the difference is
within +-1 point; *not resolved* otherwise, with the 95% interval of the difference and the task
count that would resolve it (95% confidence, 80% power). A number inherited from another file
(``AccuracyScore.inherited``) was *not measured* on this one: no test is run on it, and it never
ranks. When the tasks cannot separate two files *of one model*, a measure on the same text that
can decides instead: the mean KL-divergence against the same reference file on the same text,
context and chunks, each with a known standard error (lower is better; any other pair is not
compared, and the notes say why), else
perplexity on the same text, context and chunks (lower is better; same parameter count, so the
same tokenizer's model). Each such case is named in the notes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from profiler.analysis.accuracy import FULL_SET_TASKS, AccuracyScore
from profiler.stats import (
    ALPHA,
    Z_90,
    Z_95,
    equivalent,
    mcnemar_p,
    mean_difference_interval,
    mean_difference_p,
    paired_difference_interval,
    tasks_to_resolve,
    tasks_to_show_equivalence,
    two_proportion_difference_interval,
    two_proportion_p,
)

EQUIVALENCE_MARGIN_PCT = 1.0  # accuracy points: a difference shown to be inside +-1 point is "equivalent"


@dataclass
class AccuracyTest:
    p_value: float | None  # None: no test (no uncertainty known, or not measured on these files)
    method: str
    n_needed: int | None = None  # tasks that would resolve the observed difference (None: it is 0)
    measured: bool = True  # False: a number is inherited from another file, so nothing was tested
    diff_pct: float | None = None  # a - b, points
    ci95_pct: tuple[float, float] | None = None  # 95% interval of a - b, points
    ci90_pct: tuple[float, float] | None = None  # 90% interval of a - b: the TOST reads it
    equivalent: bool | None = None  # TOST at 5% against +-EQUIVALENCE_MARGIN_PCT; None: not tested
    n_equivalence: int | None = None  # tasks for the TOST to show equivalence (80% power at a true 0)


def accuracy_test(a: AccuracyScore, b: AccuracyScore) -> AccuracyTest:
    """Paired when both carry per-task outcomes on the same tasks; else unpaired. A number
    inherited from another file is not tested: it says nothing about the difference of these two."""
    if a.inherited or b.inherited:
        which = "; ".join(f"{s.value_pct:.1f}% inherited from {s.inherited_from}" for s in (a, b) if s.inherited)
        return AccuracyTest(None, f"not measured: {which}", measured=False)
    pa, pb = a.value_pct / 100, b.value_pct / 100
    margin = EQUIVALENCE_MARGIN_PCT / 100
    if a.task_correct and b.task_correct and len(a.task_correct) == len(b.task_correct) and a.setting() == b.setting():
        only_a = sum(1 for x, y in zip(a.task_correct, b.task_correct, strict=True) if x == "1" and y == "0")
        only_b = sum(1 for x, y in zip(a.task_correct, b.task_correct, strict=True) if x == "0" and y == "1")
        n = len(a.task_correct)
        return _with_intervals(
            AccuracyTest(mcnemar_p(only_a, only_b), f"paired McNemar on the same {n} tasks",
                         tasks_to_resolve(pa, pb, (only_a + only_b) / n),
                         n_equivalence=tasks_to_show_equivalence(margin, (pa + pb) / 2, (only_a + only_b) / n)),
            a, b, lambda z: paired_difference_interval(only_a, only_b, n, z))
    na, nb = a.tasks_behind(), b.tasks_behind()
    if na and nb:
        return _with_intervals(
            AccuracyTest(two_proportion_p(pa, na, pb, nb), f"two-proportion test ({na} and {nb} tasks)",
                         tasks_to_resolve(pa, pb), n_equivalence=tasks_to_show_equivalence(margin, (pa + pb) / 2)),
            a, b, lambda z: two_proportion_difference_interval(pa, na, pb, nb, z))
    se_a, se_b = _se_from_interval(a), _se_from_interval(b)
    if se_a is not None and se_b is not None:
        return _with_intervals(
            AccuracyTest(mean_difference_p(a.value_pct, se_a, b.value_pct, se_b), "z-test from the stated 95% intervals"),
            a, b, lambda z: tuple(v / 100 for v in mean_difference_interval(a.value_pct, se_a, b.value_pct, se_b, z)))
    return AccuracyTest(None, "no uncertainty known", diff_pct=a.value_pct - b.value_pct)


def _with_intervals(test: AccuracyTest, a: AccuracyScore, b: AccuracyScore, interval) -> AccuracyTest:
    """The difference, its 95% interval, and the TOST decision from its 90% interval
    (``interval(z)``: the interval of p_a - p_b in 0..1 at normal quantile z)."""
    test.diff_pct = a.value_pct - b.value_pct
    test.ci95_pct = tuple(100 * v for v in interval(Z_95))
    test.ci90_pct = tuple(100 * v for v in interval(Z_90))
    test.equivalent = equivalent(test.ci90_pct, EQUIVALENCE_MARGIN_PCT)
    return test


def _se_from_interval(score: AccuracyScore) -> float | None:
    ci = score.ci95_pct
    if not ci or len(ci) != 2 or any(v is None for v in ci):
        return None
    return (ci[1] - ci[0]) / (2 * Z_95)


# --------------------------------------------------------------------------- pairs of configurations


@dataclass
class Evidence:
    """What is known about one configuration's quality."""

    key: str
    accuracy: AccuracyScore | None
    kld: list[dict] = field(default_factory=list)  # store lines (value, uncertainty, reference, text, n_ctx, n_chunks)
    ppl: list[dict] = field(default_factory=list)  # store lines (value, uncertainty, data_sha256, n_ctx, n_chunks)
    n_params: int | None = None


@dataclass
class Verdict:
    sign: int  # +1: a is better, -1: b is better, 0: neither shown better (see ``case``)
    measure: str  # the metric, "KLD", "PPL", or "" when neither is shown better
    accuracy: AccuracyTest | None
    detail: str = ""  # the fallback's numbers, for notes

    @property
    def case(self) -> str:
        """"better" (a measure decided), else why not: "not measured" (an inherited number: nothing
        was tested), "equivalent" (shown within the margin) or "not resolved" (neither)."""
        if self.sign:
            return "better"
        if self.accuracy is not None and not self.accuracy.measured:
            return "not measured"
        return "equivalent" if self.accuracy is not None and self.accuracy.equivalent else "not resolved"

    def flipped(self) -> Verdict:
        """The same verdict seen from b's side."""
        test = self.accuracy
        if test is not None and test.diff_pct is not None:
            test = replace(test, diff_pct=0.0 - test.diff_pct, ci95_pct=_neg(test.ci95_pct), ci90_pct=_neg(test.ci90_pct))
        return Verdict(-self.sign, self.measure, test, self.detail)


def _neg(interval: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if interval is None else (-interval[1], -interval[0])


def compare(a: Evidence, b: Evidence, metric: str) -> Verdict:
    """Task accuracy when it resolves the difference; else KLD or PPL on the same text when it does."""
    test = accuracy_test(a.accuracy, b.accuracy) if a.accuracy and b.accuracy else None
    if test is not None and test.measured:
        if test.p_value is None:  # nothing to test with: the numbers are taken as they are
            diff = a.accuracy.value_pct - b.accuracy.value_pct
            return Verdict((diff > 0) - (diff < 0), metric if diff else "", test)
        if test.p_value < ALPHA:
            return Verdict(1 if a.accuracy.value_pct > b.accuracy.value_pct else -1, metric, test)
    for measure, pair in (("KLD", _kld_pair(a, b)), ("PPL", _ppl_pair(a, b))):
        if pair is None:
            continue
        x, y = pair
        if mean_difference_p(x["value"], x["uncertainty"], y["value"], y["uncertainty"]) < ALPHA:
            detail = "; ".join(t for t in (f"{measure} {_g(x['value'])} vs {_g(y['value'])}", _kld_unmatched(a, b)) if t)
            return Verdict(1 if x["value"] < y["value"] else -1, measure, test, detail)
    return Verdict(0, "", test, _kld_unmatched(a, b))


def _g(value: float) -> str:
    return f"{value:.4g}"


def _testable(line: dict) -> bool:
    """A value with a known, positive SE: llama-perplexity prints 0 for the SE of fewer than 11
    tokens (not known, not exact), and a z-test on it would rank on noise."""
    value, se = line.get("value"), line.get("uncertainty")
    return (isinstance(value, (int, float)) and isinstance(se, (int, float)) and math.isfinite(value)
            and math.isfinite(se) and se > 0)


# what two KLD lines must share to be compared: the reference model and the reference file saved
# from it, the text, the context and the chunks scored (a --chunks subset is another sample)
KLD_SAME = {"reference_sha256": "reference model", "reference_file_sha256": "reference file",
            "data_sha256": "text", "n_ctx": "n_ctx", "n_chunks": "chunks"}
KLD_SAME_TOP_K = {"top_k": "top-k", "tail_samples": "tail samples"}  # for a top-k (not full-vocabulary) reference


def _kld_mismatch(x: dict, y: dict) -> str | None:
    """Why two KLD lines cannot be compared; None when they can."""
    missing = [label for key, label in KLD_SAME.items() if not x.get(key) or not y.get(key)]
    if missing:
        return (f"a KLD line lacks its {', '.join(missing)} (recorded by an older profiler, or not known), so the "
                "two KLDs may be against different references or texts; re-run profiler eval --kld to compare them")
    same = dict(KLD_SAME)
    if any(_top_k_reference(line) for line in (x, y)):
        same.update(KLD_SAME_TOP_K)
    differ = [label for key, label in same.items() if x.get(key) != y.get(key)]
    if differ:
        return f"the KLDs differ in {', '.join(differ)}"
    if not (_testable(x) and _testable(y)):
        return "a KLD has no standard error (llama-perplexity gives none below 11 tokens): not testable"
    return None


def _top_k_reference(line: dict) -> bool:
    top_k, n_vocab = line.get("top_k"), line.get("n_vocab")
    return not (isinstance(top_k, int) and isinstance(n_vocab, int) and top_k >= n_vocab)


def _kld_pair(a: Evidence, b: Evidence) -> tuple[dict, dict] | None:
    """The newest KLD of each against one shared reference, on the same text, context and chunks."""
    for x in reversed(a.kld):
        for y in reversed(b.kld):
            if _kld_mismatch(x, y) is None:
                return x, y
    return None


def _kld_unmatched(a: Evidence, b: Evidence) -> str:
    """Why no KLD pair of ``a`` and ``b`` was compared (their newest lines), for the notes; "" when
    either has no KLD or a pair exists."""
    if not a.kld or not b.kld or _kld_pair(a, b) is not None:
        return ""
    return f"KLD not compared: {_kld_mismatch(a.kld[-1], b.kld[-1])}"


def _ppl_pair(a: Evidence, b: Evidence) -> tuple[dict, dict] | None:
    """The newest perplexities on the same text, context and chunks, of two files of one model."""
    if not a.n_params or a.n_params != b.n_params:
        return None
    same = ("data_sha256", "n_ctx", "n_chunks")
    for x in reversed(a.ppl):
        for y in reversed(b.ppl):
            if x.get("data_sha256") and all(x.get(k) == y.get(k) for k in same) and _testable(x) and _testable(y):
                return x, y
    return None


def evidence(key: str, accuracy: AccuracyScore | None, lines: list[dict], n_params: int | None) -> Evidence:
    """A configuration's quality evidence: its accuracy, and the KLD and PPL lines among the
    measurement-index ``lines`` of its exact file."""
    return Evidence(key, accuracy, [x for x in lines if x.get("metric") == "kld"],
                    [x for x in lines if x.get("metric") == "ppl"], n_params)


class QualityOrder:
    """Pairwise quality verdicts over a scoreboard's configurations, and the notes that explain them."""

    def __init__(self, evidence: list[Evidence], metric: str) -> None:
        self.metric = metric
        self.keys = [e.key for e in evidence]
        self._verdicts: dict[tuple[str, str], Verdict] = {}
        rated = [e for e in evidence if e.accuracy is not None]
        for i, a in enumerate(rated):
            for b in rated[i + 1 :]:
                v = compare(a, b, metric)
                self._verdicts[(a.key, b.key)] = v
                self._verdicts[(b.key, a.key)] = v.flipped()
        self.notes = self._notes(rated)

    def cmp(self, a: str, b: str) -> int:
        """+1 when ``a`` has significantly better quality than ``b``, -1 when worse, 0 when neither
        (``verdict(a, b).case`` says which: not measured, equivalent or not resolved)."""
        v = self._verdicts.get((a, b))
        return v.sign if v else 0

    def verdict(self, a: str, b: str) -> Verdict | None:
        return self._verdicts.get((a, b))

    def rank(self, key: str) -> int:
        """1 + the number of configurations significantly better than ``key``."""
        return 1 + sum(1 for other in self.keys if other != key and self.cmp(other, key) > 0)

    def _notes(self, rated: list[Evidence]) -> list[str]:
        groups: dict[str, list[str]] = {}
        untested = []
        for i, a in enumerate(rated):
            for b in rated[i + 1 :]:
                v = self._verdicts[(a.key, b.key)]
                if v.accuracy is not None and v.accuracy.measured and v.accuracy.p_value is None:
                    untested.append(f"{a.key} / {b.key}")
                    continue
                if v.measure == self.metric:
                    continue
                groups.setdefault(f"ranked by {v.measure}" if v.sign else v.case, []).append(_pair_text(a, b, v))
        n = _task_count(rated)
        at = f" at {n} tasks" if n else ""
        heads = {
            "not resolved": f"{self.metric} does not resolve these{at}, and no KLD or PPL on the same text does either; "
                            "neither is ranked above the other",
            "equivalent": f"{self.metric} shows these equivalent{at} (the difference is within "
                          f"+-{EQUIVALENCE_MARGIN_PCT:g} point: two one-sided tests at 5%)",
            "not measured": f"{self.metric} is not measured on both files of these pairs (an inherited number is "
                            "never tested), so quality does not rank them",
        }
        notes = [f"{heads.get(key) or f'{self.metric} cannot tell these apart{at}; {key}'}: {'; '.join(pairs)}"
                 for key, pairs in groups.items()]
        if untested:
            notes.append(f"{self.metric}: no task count or interval is known for {', '.join(untested)}, so their numbers "
                         "are compared as given")
        return notes


def _task_count(rated: list[Evidence]) -> int | None:
    counts = {e.accuracy.n_tasks for e in rated if e.accuracy and e.accuracy.n_tasks}
    return counts.pop() if len(counts) == 1 else None


def _pair_text(a: Evidence, b: Evidence, v: Verdict) -> str:
    if not v.accuracy.measured:
        return f"{a.key} vs {b.key} ({v.accuracy.method})" + (f", {v.detail}" if v.detail else "")
    text = f"{a.key} vs {b.key}: {a.accuracy.value_pct:.1f}% vs {b.accuracy.value_pct:.1f}%, {difference_text(v.accuracy)}"
    if v.detail:
        text += f", {v.detail}"
    more = more_tasks_text(v.accuracy, a.accuracy.metric)
    return f"{text}; {more}" if more else text


def difference_text(test: AccuracyTest) -> str:
    """``difference -4.0 points, 95% CI [-12.6, +4.6] (p=0.54, paired McNemar on the same 100 tasks)``;
    an equivalent pair adds the 90% interval its TOST read."""
    lo, hi = test.ci95_pct
    text = f"difference {test.diff_pct:+.1f} points, 95% CI [{lo:+.1f}, {hi:+.1f}] (p={test.p_value:.2f}, {test.method})"
    if test.equivalent:
        text += (f", 90% CI [{test.ci90_pct[0]:+.1f}, {test.ci90_pct[1]:+.1f}] inside "
                 f"+-{EQUIVALENCE_MARGIN_PCT:g} point")
    return text


def more_tasks_text(test: AccuracyTest, metric: str) -> str:
    """What more tasks would settle: the observed difference, or (when it is 0) equivalence; ""
    once settled."""
    if test.equivalent or (test.p_value is not None and test.p_value < ALPHA):
        return ""
    limit = FULL_SET_TASKS.get(metric)
    if test.n_needed is not None:
        more, n = f"about {test.n_needed} tasks would resolve a difference this size", test.n_needed
    elif test.n_equivalence is not None:
        more, n = (f"no difference observed; about {test.n_equivalence} tasks would show one within "
                   f"+-{EQUIVALENCE_MARGIN_PCT:g} point"), test.n_equivalence
    else:
        return ""
    return more if limit is None or n <= limit else f"{more}, more than the benchmark has"
