"""Multiple-choice tasks scored as ``llama-perplexity --hellaswag`` / ``--winogrande`` score them.

HellaSwag (llama.cpp's text format, 6 lines per task: ``activity: context``, the gold ending
index 0-3, then the four endings):

* each candidate is tokenised as ``context + " " + ending`` with the model's special tokens;
* the tokens the four candidates share (the common prefix) are decoded once and belong to all
  four sequences; the rest of each candidate is its own sequence;
* a candidate's score is the mean log-probability of its tokens after the common prefix
  (length-normalised), and the task is right when the gold ending scores highest;
* tasks are drawn in llama-perplexity's random order (``std::mt19937(1)``, reproduced in
  ``rng.py``), so ``--tasks N`` picks the same deterministic subset it does;
* accuracy comes with a 95% Wilson score interval.

Winogrande (CSV ``idx,sentence,option1,option2,answer``, ``_`` marks the blank): both options
are substituted; when both continuations after the common prefix are longer than 3 tokens only
the words after the option are scored (llama-perplexity's rule, including its known quirk of
taking the second option's first logit from the wrong place when it does not skip the option).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from profiler.backends.base import Backend, ContextParams, SeqBatch
from profiler.errors import UserError
from profiler.quality.logits import row_stats
from profiler.quality.rng import MT19937, scaled_index, uniform_below
from profiler.stats import proportion_stderr, wilson_interval

MAX_TASKS_PER_BATCH = 32  # llama-perplexity's HellaSwag limit
# What our own task scorers measure (this module): HellaSwag's ending log-prob is
# averaged per token (lm-eval's acc_norm divides by bytes: another number); Winogrande compares
# the words after the blank without normalisation, which is lm-eval's plain acc.
MEASURED_VARIANT = {"hellaswag": "acc_norm_token", "winogrande": "acc"}


@dataclass
class TaskResult:
    task: str  # "hellaswag" / "winogrande"
    metric: str  # what accuracy means here
    n_tasks: int
    n_tasks_in_file: int
    n_correct: int
    accuracy_pct: float
    ci95_low_pct: float
    ci95_high_pct: float
    stderr_pct: float
    selection: str
    n_ctx: int
    eval_seconds: float
    tasks_per_s: float
    n_tokens_evaluated: int
    source: dict = field(default_factory=dict)
    predictions: list[dict] = field(default_factory=list)  # raw samples: per task index, gold, choice, scores


def _lines(text: str) -> list[str]:
    """``std::getline`` on '\\n' over the text (the trailing newline was already dropped)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    n = 0
    for column in zip(*seqs, strict=False):
        if any(t != column[0] for t in column[1:]):
            break
        n += 1
    return n


@dataclass
class _Choice:
    """One multiple-choice task, tokenised."""

    index: int
    gold: int
    seqs: list[list[int]]
    common: int
    extra: dict = field(default_factory=dict)

    @property
    def required(self) -> int:
        return self.common + sum(len(s) - self.common for s in self.seqs)


def _add_task(batch: SeqBatch, task: _Choice, s0: int, all_outputs: bool) -> None:
    """Shared prefix once (in every sequence of the task), then each candidate's own tokens.
    Outputs: the prefix's last token, and each candidate token except (HellaSwag) the last."""
    ids = tuple(range(s0, s0 + len(task.seqs)))
    for i in range(task.common):
        batch.add(task.seqs[0][i], i, ids, i == task.common - 1)
    for s, seq in enumerate(task.seqs):
        for i in range(task.common, len(seq)):
            batch.add(seq[i], i, (s0 + s,), all_outputs or i < len(seq) - 1)


def _run_batches(
    backend: Backend,
    tasks: list[_Choice],
    n_ctx: int,
    max_seq: int,
    all_outputs: bool,
    score: Callable[[_Choice, np.ndarray, np.ndarray], None],
    threads: int,
) -> int:
    """Pack as many tasks per batch as fit in n_ctx tokens and max_seq sequences (llama-perplexity's
    packing), decode, and hand each task its output rows' logits and log-sum-exp."""
    evaluated = 0
    i0 = 0
    while i0 < len(tasks):
        batch, spans, n_cur, i1 = SeqBatch(), [], 0, i0
        while i1 < len(tasks) and n_cur + tasks[i1].required <= n_ctx:
            width = len(tasks[i1].seqs)
            if (i1 - i0 + 1) * width > max_seq:
                break
            before = sum(batch.outputs)
            _add_task(batch, tasks[i1], (i1 - i0) * width, all_outputs)
            spans.append((before, sum(batch.outputs)))
            n_cur += tasks[i1].required
            i1 += 1
        if i1 == i0:
            raise UserError(f"task {tasks[i0].index} needs {tasks[i0].required} tokens, more than the context ({n_ctx}); raise --ctx")
        logits = backend.logits_batch(batch)
        lse = row_stats(logits, threads).log_sum_exp
        for task, (lo, hi) in zip(tasks[i0:i1], spans, strict=True):
            score(task, logits[lo:hi], lse[lo:hi])
        evaluated += len(batch)
        i0 = i1
    return evaluated


def _logp(rows: np.ndarray, lse: np.ndarray, index: int, token: int) -> float:
    return float(rows[index, token]) - float(lse[index])


# --------------------------------------------------------------------------- HellaSwag


def load_hellaswag(text: str) -> list[tuple[str, int, list[str]]]:
    lines = _lines(text)
    if not lines or len(lines) % 6 != 0:
        raise UserError(f"HellaSwag file has {len(lines)} lines, not a multiple of 6 (llama.cpp's 6-lines-per-task format)")
    tasks = []
    for t in range(len(lines) // 6):
        gold = lines[6 * t + 1].strip()
        if gold not in ("0", "1", "2", "3"):
            raise UserError(f"HellaSwag task {t + 1} (line {6 * t + 2}): gold label '{gold[:20]}' is not 0-3")
        tasks.append((lines[6 * t], int(gold), lines[6 * t + 2 : 6 * t + 6]))
    return tasks


def hellaswag_order(n_total: int, n_tasks: int | None) -> list[int]:
    """Task indices in llama-perplexity's order: uniform draws without replacement from mt19937(1)."""
    count = n_total if n_tasks is None else min(n_tasks, n_total)
    rng, pool, order = MT19937(1), list(range(n_total)), []
    for _ in range(count):
        order.append(pool.pop(uniform_below(rng, len(pool))))
    return order


def _hellaswag_score(task: _Choice, rows: np.ndarray, lse: np.ndarray) -> None:
    scores = []
    li = 1  # row 0 is the prefix's last token; then each ending's rows in order
    for seq in task.seqs:
        if len(seq) <= task.common:  # an ending that adds no token cannot be scored
            scores.append(-math.inf)
            continue
        total = _logp(rows, lse, 0, seq[task.common])
        for j in range(task.common, len(seq) - 1):
            total += _logp(rows, lse, li, seq[j + 1])
            li += 1
        scores.append(total / (len(seq) - task.common))
    task.extra["scores"] = scores


def hellaswag(
    backend: Backend,
    text: str,
    n_tasks: int | None = None,
    n_ctx: int = 512,
    n_parallel: int = 4,
    threads: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> TaskResult:
    """Accuracy on HellaSwag tasks (see the module docstring); ``n_parallel`` as llama-perplexity's -np."""
    if n_tasks is not None and n_tasks < 1:
        raise UserError(f"--tasks {n_tasks} is invalid: it must be >= 1")
    data = load_hellaswag(text)
    order = hellaswag_order(len(data), n_tasks)
    tasks = []
    for idx in order:
        context, gold, endings = data[idx]
        seqs = [backend.tokenize(context + " " + ending, add_special=True) for ending in endings]
        tasks.append(_Choice(idx, gold, seqs, _common_prefix(seqs)))
    parallel = max(4, n_parallel)
    ctx_total = parallel * n_ctx
    backend.configure(ContextParams(n_ctx=ctx_total, n_batch=ctx_total, n_ubatch=min(512, ctx_total),
                                    n_seq_max=parallel, kv_unified=True))
    backend.set_threads(threads)
    max_seq = min(4 * MAX_TASKS_PER_BATCH, parallel)
    start = time.perf_counter()
    evaluated = 0
    for lo in range(0, len(tasks), 256):  # progress in steps; packing restarts at each step boundary only
        evaluated += _run_batches(backend, tasks[lo : lo + 256], ctx_total, max_seq, False, _hellaswag_score, threads)
        if progress:
            progress(min(lo + 256, len(tasks)), len(tasks))
    seconds = time.perf_counter() - start
    predictions = []
    for task in tasks:
        scores = task.extra["scores"]
        choice = max(range(4), key=lambda s: (scores[s], -s))  # first maximum, as llama-perplexity
        predictions.append({"task": task.index, "gold": task.gold, "choice": choice, "scores": [round(s, 6) for s in scores]})
    selection = f"all {len(data)} tasks" if len(tasks) == len(data) else f"{len(tasks)} of {len(data)}"
    return _result("hellaswag", "acc_norm (mean log-prob per ending token), 0-shot", predictions, len(data),
                   f"{selection}, llama-perplexity's random order (mt19937 seed 1)", n_ctx, seconds, evaluated)


def _result(task, metric, predictions, n_in_file, selection, n_ctx, seconds, evaluated) -> TaskResult:
    n = len(predictions)
    correct = sum(1 for p in predictions if p["choice"] == p["gold"])
    p = correct / n if n else math.nan
    low, high = wilson_interval(p, n)
    return TaskResult(
        task=task,
        metric=metric,
        n_tasks=n,
        n_tasks_in_file=n_in_file,
        n_correct=correct,
        accuracy_pct=100 * p,
        ci95_low_pct=100 * low,
        ci95_high_pct=100 * high,
        stderr_pct=100 * proportion_stderr(p, n),
        selection=selection,
        n_ctx=n_ctx,
        eval_seconds=seconds,
        tasks_per_s=n / seconds if seconds > 0 else math.nan,
        n_tokens_evaluated=evaluated,
        predictions=predictions,
    )


# --------------------------------------------------------------------------- Winogrande


def _split_csv_line(line: str) -> list[int] | None:
    """Positions of the first four commas outside double quotes."""
    commas, quoted = [], False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            commas.append(i)
            if len(commas) == 4:
                return commas
    return None


def _parse_answer(text: str) -> int | None:
    digits = text.lstrip()
    end = 0
    while end < len(digits) and (digits[end].isdigit() or (end == 0 and digits[end] in "+-")):
        end += 1
    try:
        value = int(digits[:end])
    except ValueError:
        return None
    return value if value in (1, 2) else None


def load_winogrande(text: str) -> tuple[list[dict], int]:
    """Rows of ``idx,sentence,option1,option2,answer``; returns (tasks, lines skipped)."""
    tasks, skipped = [], 0
    for line in _lines(text):
        commas = _split_csv_line(line)
        if commas is None:
            skipped += 1
            continue
        c0, c1, c2, c3 = commas
        quoted = line[c0 + 1 : c0 + 2] == '"'
        sentence = line[c0 + 2 : c1 - 1] if quoted else line[c0 + 1 : c1]
        answer = _parse_answer(line[c3 + 1 :])
        blank = sentence.find("_")
        if blank < 0 or answer is None:
            skipped += 1  # the header line lands here
            continue
        tasks.append({
            "first": sentence[:blank], "second": sentence[blank + 1 :],
            "choices": (line[c1 + 1 : c2], line[c2 + 1 : c3]), "answer": answer,
        })
    if not tasks:
        raise UserError("no Winogrande tasks found: expected CSV rows idx,sentence,option1,option2,answer with _ in the sentence")
    return tasks, skipped


def winogrande_order(n_total: int, n_tasks: int | None) -> list[int]:
    """llama-perplexity's subset: scaled float draws from mt19937(1), swap-with-last removal."""
    if n_tasks is None or n_tasks >= n_total:
        return list(range(n_total))
    rng, aux, order = MT19937(1), list(range(n_total)), []
    for _ in range(n_tasks):
        j = scaled_index(rng, len(aux))
        order.append(aux[j])
        aux[j] = aux[-1]
        aux.pop()
    return order


def _winogrande_score(task: _Choice, rows: np.ndarray, lse: np.ndarray) -> None:
    seq0, seq1 = task.seqs
    cp = task.common
    skip_choice = len(seq0) - cp > 3 and len(seq1) - cp > 3
    scores = []
    for s, seq in enumerate(task.seqs):
        n_base = task.extra["n_base"][s] if skip_choice else cp
        last = 1 if len(seq) - n_base > 1 else 0
        # Output row of position p: 1 + (p - cp) for the first option; the second option's rows
        # follow the first's. llama-perplexity's offset for the second is reproduced as it is.
        li = n_base - cp if s == 0 else len(seq0) - cp + n_base - cp
        total, count = 0.0, 0
        for j in range(n_base - 1, len(seq) - 1 - last):
            total += _logp(rows, lse, li, seq[j + 1])
            li += 1
            count += 1
        scores.append(total / count if count else math.nan)
    task.extra["scores"] = scores


def winogrande(
    backend: Backend,
    text: str,
    n_tasks: int | None = None,
    n_ctx: int = 512,
    n_parallel: int = 4,
    threads: int = 1,
) -> TaskResult:
    """Winogrande accuracy (see the module docstring)."""
    if n_tasks is not None and n_tasks < 1:
        raise UserError(f"--tasks {n_tasks} is invalid: it must be >= 1")
    rows, _ = load_winogrande(text)
    order = winogrande_order(len(rows), n_tasks)
    tasks = []
    for idx in order:
        row = rows[idx]
        seqs = [backend.tokenize(row["first"] + c + row["second"], add_special=True) for c in row["choices"]]
        n_base = [len(backend.tokenize(row["first"] + c, add_special=True)) for c in row["choices"]]
        tasks.append(_Choice(idx, row["answer"] - 1, seqs, _common_prefix(seqs), {"n_base": n_base}))
    parallel = max(4, n_parallel)
    ctx_total = parallel * n_ctx
    backend.configure(ContextParams(n_ctx=ctx_total, n_batch=ctx_total, n_ubatch=min(512, ctx_total),
                                    n_seq_max=parallel, kv_unified=True))
    backend.set_threads(threads)
    start = time.perf_counter()
    evaluated = _run_batches(backend, tasks, ctx_total, min(2 * 128, parallel), True, _winogrande_score, threads)
    seconds = time.perf_counter() - start
    predictions = []
    for task in tasks:
        s1, s2 = task.extra["scores"]
        choice = 0 if s1 > s2 else 1  # NaN compares false: option 2, as in C++
        predictions.append({"task": task.index, "gold": task.gold, "choice": choice, "scores": [s1, s2]})
    selection = f"all {len(rows)} tasks" if len(tasks) == len(rows) else f"{len(tasks)} of {len(rows)}, llama-perplexity's random subset (mt19937 seed 1)"
    return _result("winogrande", "accuracy (mean log-prob of the words after the blank), 0-shot", predictions,
                   len(rows), selection, n_ctx, seconds, evaluated)


def read_task_file(path: str | Path) -> str:
    from profiler.quality.data import read_text_file

    return read_text_file(path)[0]
