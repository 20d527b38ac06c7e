"""Width-aware terminal tables: the default view fits the terminal, ``--wide`` shows every column.

A table is a list of ``Column`` objects over rows. ``print_table`` drops columns that are n/a on
every row (one line says which and why), keeps the core columns, adds the others while they fit,
and cuts long names with an ellipsis as a last resort, so that no row ever wraps. Saved reports
are written elsewhere and keep every field; this module only shapes what a person reads.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

ELLIPSIS = "…"


# ----------------------------------------------------------------------------- numbers and units


def sig3(value: float) -> str:
    """Three significant digits, never fewer than the integer digits: 1234 -> "1234", 0.01234 -> "0.0123"."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    if decimals and abs(float(text)) >= 10 ** (3 - decimals):  # rounding carried a digit (99.95 -> 100.0)
        text = f"{value:.{decimals - 1}f}"
    return text


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def rate_pm(mean: float, sd: float | None) -> str:
    """A rate and its spread at the mean's precision: "193 ± 14", "12.3 ± 0.4"."""
    head = sig3(mean)
    if sd is None or not math.isfinite(sd):
        return head
    decimals = _decimals(head)
    spread = f"{sd:.{decimals}f}"
    if sd > 0 and float(spread) == 0:  # keep one significant digit rather than print a silent zero
        spread = f"{sd:.1g}"
    return f"{head} ± {spread}"


def scaled(value: float, units: Sequence[tuple[float, str]]) -> str:
    """Pick the largest unit the value reaches (the last tuple is the fallback) and print 3 significant digits."""
    for factor, unit in units:
        if abs(value) >= factor:
            return f"{sig3(value / factor)} {unit}"
    factor, unit = units[-1]
    return f"{sig3(value / factor)} {unit}"


def size(num_bytes: float | None) -> str | None:
    if num_bytes is None:
        return None
    return scaled(num_bytes, [(2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B")])


def seconds(value_s: float | None) -> str | None:
    if value_s is None:
        return None
    return scaled(value_s, [(1, "s"), (1e-3, "ms"), (1e-6, "µs")])


def joules(value_j: float | None) -> str | None:
    if value_j is None:
        return None
    return scaled(value_j, [(1, "J"), (1e-3, "mJ"), (1e-6, "µJ")])


def rate(value: float | None, unit: str = "t/s") -> str | None:
    return None if value is None else f"{sig3(value)} {unit}".strip()


# ----------------------------------------------------------------------------- readable names

_QUANT_TAIL = re.compile(r"[-_.](?:i?q\d[\w]*|f16|f32|bf16|fp16|fp32|int[48]|q\d+_\w+)$", re.IGNORECASE)
_EXTENSION = re.compile(r"\.(gguf|onnx|bin)$", re.IGNORECASE)
_FLAVOUR = re.compile(r"[-_](instruct|chat|it)$", re.IGNORECASE)


def short_model_name(name: str, quant: str | None = None, drop_flavour: bool = True) -> str:
    """"smollm2-135m-instruct-q4_1" -> "smollm2-135m": no folder, extension or quant suffix (the quant
    is shown next to it), and no "-instruct" when ``drop_flavour``."""
    path = PurePath(str(name))
    text = path.parent.name if path.name == "model.onnx" and path.parent.name else path.name  # ONNX: NAME/model.onnx
    text = _EXTENSION.sub("", text)
    if quant and text.lower().endswith(quant.lower()) and len(text) > len(quant) + 1:
        text = text[: -len(quant)].rstrip("-_.")
    else:
        text = _QUANT_TAIL.sub("", text) or text
    if drop_flavour:
        text = _FLAVOUR.sub("", text) or text
    return text


def short_model_names(pairs: Sequence[tuple[str, str | None]]) -> dict[tuple[str, str | None], str]:
    """Short "name quant" labels for (model name, quant) pairs, kept apart when shortening would merge two."""
    pairs = list(dict.fromkeys(pairs))

    def label(pair, drop_flavour: bool) -> str:
        name, quant = pair
        base = short_model_name(name, quant, drop_flavour)
        return f"{base} {quant}" if quant and quant.lower() not in ("?", "unknown") else base

    labels = {p: label(p, True) for p in pairs}
    for attempt in (lambda p: label(p, False), lambda p: PurePath(str(p[0])).name, lambda p: str(p[0])):
        clash = [p for p in pairs if list(labels.values()).count(labels[p]) > 1]
        if not clash:
            break
        for p in clash:
            labels[p] = attempt(p)
    return labels


_CPU_NOISE = re.compile(r"\((?:R|TM|tm|r)\)|\bCPU\b|\bProcessor\b|@.*$|\b\d+-Core\b|\bwith .*$", re.IGNORECASE)


def short_device(device: Mapping) -> str:
    """"Raspberry Pi 5 Model B" or a CPU name without trademarks and clock: "Intel Core i7-8650U"."""
    board = device.get("board")
    if board:
        return re.sub(r"\s+Rev\s+[\d.]+$", "", str(board)).strip()
    cpu = _CPU_NOISE.sub(" ", str(device.get("cpu_model") or "unknown CPU"))
    return " ".join(cpu.split()) or "unknown CPU"


# ----------------------------------------------------------------------------- the width-aware table


def _get(row: Any, name: str, default=None):
    if isinstance(row, Mapping):
        return row.get(name, default)
    return getattr(row, name, default)


@dataclass(frozen=True)
class Column:
    """One column: ``cell(row)`` returns the text, or None for n/a."""

    header: str
    cell: Callable[[Any], str | None]
    justify: str = "right"
    core: bool = False  # in the default view
    shrink: bool = False  # may be cut with an ellipsis when nothing else fits (long names)
    cut_end: bool = False  # cut at the end (lists) rather than in the middle (names with a quant tail)
    why_na: Callable[[list], str] | None = None  # why the column is empty, for the "dropped" line


@dataclass(frozen=True)
class Style:
    """How much room the frame takes: a bordered box, or a compact one; long headers on two lines."""

    compact: bool = False
    stacked: bool = False


STYLES = (Style(), Style(compact=True), Style(compact=True, stacked=True))


@dataclass
class Layout:
    shown: list[Column]
    cells: list[list[str]]
    dropped: list[tuple[Column, str]]  # (column, reason) for columns n/a on every row
    hidden: list[Column]  # columns with data that did not fit (shown by --wide)
    width: int  # the width the table is rendered at
    style: Style = Style()


NA = "n/a"
_MEASURE = Console(width=100_000, file=io.StringIO(), color_system=None)


def _header(col: Column, cells: Sequence[Sequence[str]], index: int, style: Style) -> str:
    """The header, split at its first space when that makes it no wider than its data (compact tables)."""
    if not style.stacked or " " not in col.header:
        return col.header
    data = max((cell_len(row[index]) for row in cells), default=0)
    if data >= cell_len(col.header):
        return col.header
    splits = [i for i, ch in enumerate(col.header) if ch == " "]
    best = min(splits, key=lambda i: max(cell_len(col.header[:i]), cell_len(col.header[i + 1:])))
    return f"{col.header[:best]}\n{col.header[best + 1:]}"


def _table(columns: Sequence[Column], cells: Sequence[Sequence[str]], style: Style) -> Table:
    table = Table(box=box.SIMPLE_HEAD if style.compact else box.ROUNDED, show_edge=not style.compact,
                  pad_edge=not style.compact)
    for i, col in enumerate(columns):
        table.add_column(_header(col, cells, i, style), justify=col.justify, no_wrap=True, overflow="ellipsis")
    for row in cells:
        table.add_row(*row)
    return table


def _natural_width(columns: Sequence[Column], cells: Sequence[Sequence[str]], style: Style = Style()) -> int:
    return _MEASURE.measure(_table(columns, cells, style)).maximum


def _cut(text: str, width: int, at_end: bool = False) -> str:
    """Cut the middle out, so both the model's name and its quant/threads tail stay readable
    (``at_end``: keep the start, for lists)."""
    if cell_len(text) <= width:
        return text
    keep = width - 1
    tail = 0 if at_end else keep // 2
    return text[: keep - tail] + ELLIPSIS + (text[-tail:] if tail else "")


def layout(columns: Sequence[Column], rows: Sequence[Any], width: int, wide: bool = False) -> Layout:
    """Choose the columns, the frame and, as a last resort, cut names so the table fits ``width``
    (``wide``: every column in a bordered box, however wide)."""
    all_cells = [[c.cell(r) for c in columns] for r in rows]
    dropped, kept = [], []
    for i, col in enumerate(columns):
        if rows and all(row[i] is None for row in all_cells):
            dropped.append((col, col.why_na(list(rows)) if col.why_na else "no data"))
        else:
            kept.append(i)

    def cells_for(indices):
        return [[NA if all_cells[r][i] is None else all_cells[r][i] for i in indices] for r in range(len(rows))]

    if wide:
        cells, chosen = cells_for(kept), [columns[i] for i in kept]
        return Layout(chosen, cells, dropped, [], max(width, _natural_width(chosen, cells)))
    shown = [i for i in kept if columns[i].core]
    for i in (i for i in kept if not columns[i].core):  # extras, in order, while a bordered table still fits
        trial = sorted(shown + [i])
        if _natural_width([columns[j] for j in trial], cells_for(trial)) <= width:
            shown = trial
    hidden = [columns[i] for i in kept if i not in shown]
    cells, chosen = cells_for(shown), [columns[i] for i in shown]
    style = next((st for st in STYLES if _natural_width(chosen, cells, st) <= width), STYLES[-1])
    if _natural_width(chosen, cells, style) > width:
        cells = _shrink(chosen, cells, width, style)
    return Layout(chosen, cells, dropped, hidden, width, style)


def _shrink(columns: list[Column], cells: list[list[str]], width: int, style: Style) -> list[list[str]]:
    """Cut the shrinkable columns (names) from the longest down until the table fits."""
    cells = [list(r) for r in cells]
    shrinkable = [i for i, c in enumerate(columns) if c.shrink]
    while shrinkable and _natural_width(columns, cells, style) > width:
        widths = {i: max(cell_len(r[i]) for r in cells) for i in shrinkable}
        widest = max(widths, key=widths.get)
        target = widths[widest] - 1
        if target < max(6, cell_len(columns[widest].header)):
            shrinkable.remove(widest)
            continue
        for r in cells:
            r[widest] = _cut(r[widest], target, columns[widest].cut_end)
    return cells


def build_table(lay: Layout) -> Table:
    return _table(lay.shown, lay.cells, lay.style)


def notes(lay: Layout, wide_hint: bool = True) -> list[str]:
    lines = []
    if lay.dropped:
        lines.append("not shown, n/a on every row: " + "; ".join(f"{c.header}: {why}" for c, why in lay.dropped))
    if lay.hidden and wide_hint:
        lines.append(f"{len(lay.hidden)} more column(s) with --wide or a wider terminal: "
                     + ", ".join(c.header for c in lay.hidden))
    return lines


def print_table(console: Console, title: str | None, columns: Sequence[Column], rows: Sequence[Any],
                wide: bool = False) -> Layout:
    """Print the title, the fitted table and its notes; returns the layout (tests read it)."""
    lay = layout(columns, rows, console.width, wide)
    if title:
        console.print(Text(title, style="bold"))
    if not rows:
        console.print("no rows")
        return lay
    table = build_table(lay)
    if wide and lay.width > console.width:  # --wide: lines may be longer than the terminal, never folded
        narrow = console.width
        console.width = lay.width
        try:
            console.print(table, crop=False)
        finally:
            console.width = narrow
    else:
        console.print(table)
    if lay.style.compact:  # the compact frame has no bottom border: a blank line ends the table
        console.print()
    for line in notes(lay):
        console.print(Text(line, style="dim"))
    return lay


def varies(rows: Sequence[Any], name: str) -> bool:
    return len({_get(r, name) for r in rows}) > 1
