"""Knowledge density: accuracy against the parameters a token actually runs through.

Three measurements (docs/density.md has the method and its caveats):

* **Active parameters** come from the model file (``ggufinfo``: non-expert parameters plus the
  routed experts times used/count); a dense model's active count is its total.
* **Effective parameter size** N̂: a *reference family* (one model family at several sizes,
  scored on one benchmark under one setting) is fitted with a logistic in ln N between chance and
  100%; N̂ of a configuration is the reference size that would score its accuracy, and the
  **relative density** is ρ = N̂ / active parameters. N̂'s 95% interval is the inverse-prediction
  (calibration) interval: the family's residual scatter on the logit scale (Student's t on
  sizes - 2 degrees of freedom) combined with the accuracy's own interval; ρ's is N̂'s over the
  active count.
* **The trend**: ln ρ against release date, one point per model (the copies of a model at other
  thread counts, batch settings, quants that inherit its accuracy, or repeated runs count once),
  fitted by least squares; the doubling time and its 95% interval (models - 2 degrees of freedom)
  are compared with 8 months (a popular account) and 3.3 months (the Densing Law,
  Xiao et al. 2024, arXiv 2412.04315).

Settings are never mixed: a family has one setting (``accuracy.Setting``: metric, shots, variant,
task subset), and a configuration is placed on it only with an accuracy measured under that same
setting. A score over a task subset is never placed on a family fitted to full-benchmark numbers:
a subset (the first N documents, or N tasks in one fixed order) need not be as hard as the whole.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from profiler import paths
from profiler.analysis import accuracy as acc_mod
from profiler.analysis.accuracy import Setting
from profiler.errors import UserError
from profiler.stats import (
    Z_95,
    LineFit,
    inverse_prediction,
    least_squares,
    mean_response_half_width,
    t_critical,
    wilson_interval,
)

DOUBLING_REFERENCES_MONTHS = {"popular account": 8.0, "Densing Law (Xiao et al. 2024)": 3.3}
DAYS_PER_MONTH = 365.25 / 12
MIN_FAMILY_SIZES = 3
MIN_TREND_POINTS = 3


# --------------------------------------------------------------------------- the reference family


@dataclass
class ReferencePoint:
    model: str
    n_params_active: int
    accuracy_pct: float
    source: str = ""
    url: str = ""
    measured_on: str = ""


@dataclass
class ReferenceFamily:
    name: str
    setting: Setting
    points: list[ReferencePoint]
    provenance: str = "published"  # published (model cards) / measured (profiler eval)
    note: str = ""

    @property
    def chance_pct(self) -> float:
        chance = acc_mod.chance_pct(self.setting.metric)
        if chance is None:
            raise UserError(f"reference family {self.name}: no chance level is known for {self.setting.metric}; "
                            f"known: {', '.join(sorted(acc_mod.CHANCE_PCT))}")
        return chance


@dataclass
class LogisticFit:
    """accuracy(N) = c + (100 - c) / (1 + exp(-(a + b ln N))), c = chance, b > 0."""

    chance_pct: float
    a: float
    b: float
    ln_n_min: float
    ln_n_max: float
    residual_sd_logit: float
    # what the inverse-prediction interval needs: the number of sizes, their mean ln N and Sxx
    n_points: int = 0
    ln_n_mean: float = 0.0
    sxx: float = 0.0

    @property
    def df(self) -> int:
        """Degrees of freedom of the residual scatter: sizes - 2."""
        return self.n_points - 2

    def line(self) -> LineFit:
        """The fit as the straight line it is on the logit scale: logit = a + b ln N."""
        return LineFit(self.b, self.a, self.residual_sd_logit, self.n_points, self.ln_n_mean, self.sxx)

    def accuracy(self, n_params: float) -> float:
        z = self.a + self.b * math.log(n_params)
        return self.chance_pct + (100 - self.chance_pct) / (1 + math.exp(-z))

    def inverse(self, accuracy_pct: float) -> float | None:
        """The N that scores ``accuracy_pct`` on the curve; None at/below chance or at/above 100%."""
        if not self.chance_pct < accuracy_pct < 100:
            return None
        return math.exp((_logit(accuracy_pct, self.chance_pct) - self.a) / self.b)

    def in_range(self, n_params: float) -> bool:
        return self.ln_n_min <= math.log(n_params) <= self.ln_n_max


def _logit(accuracy_pct: float, chance_pct: float) -> float:
    p = (accuracy_pct - chance_pct) / (100 - chance_pct)
    return math.log(p / (1 - p))


def check_family(family: ReferenceFamily) -> None:
    """One clear line (UserError) for a family that cannot be fitted."""
    sizes = {p.n_params_active for p in family.points}
    if len(sizes) < MIN_FAMILY_SIZES:
        raise UserError(f"reference family {family.name} has {len(sizes)} size(s); the fit needs at least "
                        f"{MIN_FAMILY_SIZES} sizes scored under one setting")
    chance = family.chance_pct
    for p in family.points:
        if p.accuracy_pct <= chance:
            raise UserError(f"reference family {family.name}: {p.model} scores {p.accuracy_pct:g}%, at or below "
                            f"chance ({chance:g}% for {family.setting.metric}), so it says nothing about size")
        if p.accuracy_pct >= 100:
            raise UserError(f"reference family {family.name}: {p.model} scores {p.accuracy_pct:g}%: a saturated "
                            "benchmark cannot place sizes")


def fit_family(family: ReferenceFamily) -> LogisticFit:
    """Least squares of logit((A - c)/(100 - c)) on ln N: exact for points on a logistic curve."""
    check_family(family)
    chance = family.chance_pct
    xs = [math.log(p.n_params_active) for p in family.points]
    ys = [_logit(p.accuracy_pct, chance) for p in family.points]
    line = least_squares(xs, ys)
    slope, intercept, resid_sd = line.slope, line.intercept, line.resid_sd
    if slope <= 0:
        raise UserError(f"reference family {family.name}: accuracy does not rise with size "
                        f"({', '.join(f'{p.model} {p.accuracy_pct:g}%' for p in family.points)}); "
                        "it cannot serve as a size scale")
    return LogisticFit(chance, intercept, slope, min(xs), max(xs), resid_sd, line.n, line.x_mean, line.sxx)


# --------------------------------------------------------------------------- effective size


@dataclass
class EffectiveSize:
    n_hat: float | None
    n_hat_ci95: list[float | None] | None  # [low, high]; an end None: unbounded on that side
    extrapolated: bool  # N̂ or any part of its interval lies outside the family's sizes
    note: str = ""


INTERVAL_METHOD = ("inverse prediction (calibration, Fieller): the family's residual scatter on the logit scale "
                   "(Student's t, sizes - 2 degrees of freedom) and the accuracy's own 95% interval, their half-widths "
                   "combined in an L^p norm, p = 2 df / (df - 1) (at one degree of freedom the larger of the two, "
                   "shrunk by up to 20% where they are alike)")


def effective_size(fit: LogisticFit, accuracy_pct: float, ci95_pct: list[float] | None) -> EffectiveSize:
    """N̂ for an accuracy, with its 95% inverse-prediction interval: the sizes at which the family's
    curve, give or take the scatter of the family's own sizes about it and the accuracy's own
    error, could score this accuracy (stats.inverse_prediction). Without an accuracy interval the
    family's scatter alone makes the interval, and the note says so."""
    n_hat = fit.inverse(accuracy_pct)
    if n_hat is None:
        why = "at or below chance" if accuracy_pct <= fit.chance_pct else "at 100%"
        return EffectiveSize(None, None, False, f"no effective size: accuracy {accuracy_pct:.1f}% is {why} "
                                                 f"({fit.chance_pct:g}% chance)")
    var_low, var_high = _logit_variances(fit.chance_pct, accuracy_pct, ci95_pct)
    pred = inverse_prediction(fit.line(), _logit(accuracy_pct, fit.chance_pct), var_low, var_high)
    ci = [_size(pred.low), _size(pred.high)]
    notes = [_range_note(fit, n_hat, ci)]
    if None in ci and math.isfinite(var_low) and math.isfinite(var_high):
        notes.append(f"N̂'s interval is unbounded: the family's scatter (residual sd {fit.residual_sd_logit:.3f} "
                     f"logit, {fit.df} degree(s) of freedom, t = {pred.t:.1f}) cannot tell its "
                     "curve's slope from flat at 95%")
    if not ci95_pct:
        notes.append("interval from the family's scatter alone: the accuracy has none of its own (no task count or "
                     "CI in its source)")
    extrapolated = bool(notes[0])
    return EffectiveSize(n_hat, ci, extrapolated, "; ".join(filter(None, notes)))


def _size(ln_n: float | None) -> float | None:
    """exp(ln N) for an interval end; None (unbounded) beyond what a float holds, where a nearly flat
    slope puts an end."""
    return None if ln_n is None or abs(ln_n) > 700 else math.exp(ln_n)


def _logit_variances(chance_pct: float, accuracy_pct: float, ci95_pct: list[float] | None) -> tuple[float, float]:
    """The accuracy's own variance on the logit scale below and above it, from its 95% interval's
    ends (half-width / 1.96, squared); inf for an end at/below chance or at/above 100%, 0 for none."""
    if not ci95_pct:
        return 0.0, 0.0
    lo, hi = ci95_pct
    y0 = _logit(accuracy_pct, chance_pct)
    low = math.inf if lo <= chance_pct else ((y0 - _logit(min(lo, accuracy_pct), chance_pct)) / Z_95) ** 2
    high = math.inf if hi >= 100 else ((_logit(max(hi, accuracy_pct), chance_pct) - y0) / Z_95) ** 2
    return low, high


def _range_note(fit: LogisticFit, n_hat: float, ci: list[float | None]) -> str:
    """Extrapolated: N̂, or any part of its interval (an unbounded end included), lies outside the
    family's sizes. Empty when all of it lies inside."""
    sizes = f"({fmt_params(math.exp(fit.ln_n_min))}-{fmt_params(math.exp(fit.ln_n_max))})"
    if not fit.in_range(n_hat):
        return f"extrapolated: N̂ lies outside the reference family's sizes {sizes}"
    if any(v is None or not fit.in_range(v) for v in ci):
        return f"extrapolated: N̂'s 95% interval reaches outside the reference family's sizes {sizes}"
    return ""


def few_sizes_note(fit: LogisticFit) -> str | None:
    """Said plainly when the family leaves fewer than 3 degrees of freedom for its scatter: how much
    wider Student's t makes its part of every N̂ interval, and whether it can tell its slope from flat."""
    if fit.df >= 3:
        return None
    t = t_critical(fit.df)
    note = (f"the reference family has {fit.n_points} sizes: {fit.df} degree(s) of freedom for its scatter about "
            f"the curve, so Student's t is {t:.1f} where a well-determined scatter would use 1.96: that part of "
            f"every N̂ interval is {t / Z_95:.1f}x as wide")
    if fit.b ** 2 <= t * t * fit.residual_sd_logit ** 2 / fit.sxx:
        note += (f"; at 95% its scatter (residual sd {fit.residual_sd_logit:.3f} logit) cannot tell the curve's "
                 "slope from flat, so N̂ intervals are unbounded unless the accuracy's own interval dominates")
    return note


def fmt_params(n: float | None) -> str:
    """``134.5M`` / ``1.71B``; ``n/a`` for None."""
    if n is None:
        return "n/a"
    return f"{n / 1e9:.3g}B" if n >= 1e9 else f"{n / 1e6:.4g}M"


def fmt_interval(ci: list | None, fmt) -> str:
    """`` [low, high]`` with ``fmt`` for each end; an open end (None) prints as < or >."""
    if not ci:
        return ""
    lo, hi = ci
    return f" [{'<' if lo is None else fmt(lo)}, {'>' if hi is None else fmt(hi)}]"


# --------------------------------------------------------------------------- the trend


@dataclass
class Trend:
    n_points: int
    doubling_months: float | None  # None: ρ does not grow with time in this data
    doubling_ci95_months: list[float | None] | None  # [low, high]; None high = unbounded
    slope_per_month: float
    slope_ci95_per_month: list[float]
    intercept: float
    date0: str  # the date the intercept refers to
    comparisons: list[str] = field(default_factory=list)
    # what the 95% band of the fitted line needs: residual sd, mean x, Sxx and the t quantile
    resid_sd: float = 0.0
    x_mean_months: float = 0.0
    sxx: float = 0.0
    t975: float = 0.0
    n_configurations: int = 0  # configurations behind the n_points models (0: fitted on points directly)
    method: str = ("least squares of ln ρ on months since date0, one point per model (its configurations share "
                   "its accuracy and count once); 95% intervals from Student's t on points - 2 degrees of freedom")

    def band_ln_rho(self, months: float) -> tuple[float, float]:
        """95% confidence band of the fitted mean ln ρ, ``months`` after date0."""
        centre = self.intercept + self.slope_per_month * months
        half = mean_response_half_width(self.t975, self.resid_sd, self.n_points, self.x_mean_months, self.sxx, months)
        return centre - half, centre + half

    def predict_ln_rho(self, date: dt.date) -> float:
        return self.intercept + self.slope_per_month * _months(dt.date.fromisoformat(self.date0), date)


def _months(start: dt.date, end: dt.date) -> float:
    return (end - start).days / DAYS_PER_MONTH


def fit_trend(points: list[tuple[str, float]]) -> Trend:
    """ln ρ = α + β·months; doubling time ln 2/β with a t-based 95% interval on β."""
    dated = [(dt.date.fromisoformat(d), rho) for d, rho in points]
    if len({d for d, _ in dated}) < MIN_TREND_POINTS:
        raise UserError(f"the density trend needs at least {MIN_TREND_POINTS} different release dates; "
                        f"got {len({d for d, _ in dated})}")
    date0 = min(d for d, _ in dated)
    xs = [_months(date0, d) for d, _ in dated]
    ys = [math.log(rho) for _, rho in dated]
    line = least_squares(xs, ys)
    slope, intercept = line.slope, line.intercept
    lo, hi = line.slope_interval()
    doubling = math.log(2) / slope if slope > 0 else None
    ci = None
    if hi > 0:  # faster growth (hi) -> shorter doubling; lo <= 0 leaves the long end unbounded
        ci = [math.log(2) / hi, math.log(2) / lo if lo > 0 else None]
    trend = Trend(line.n, doubling, ci, slope, [lo, hi], intercept, date0.isoformat(), resid_sd=line.resid_sd,
                  x_mean_months=line.x_mean, sxx=line.sxx, t975=line.t975())
    trend.comparisons = [_compare(name, months, ci) for name, months in DOUBLING_REFERENCES_MONTHS.items()]
    return trend


def _compare(name: str, months: float, ci: list[float | None] | None) -> str:
    if ci is None:
        return f"{name} ({months:g} months): not comparable, ρ does not grow with release date in this data"
    lo, hi = ci
    if months < lo:
        return f"{name} ({months:g} months): faster than this data allows (interval {lo:.1f}-{_fmt_months(hi)})"
    if hi is not None and months > hi:
        return f"{name} ({months:g} months): slower than this data allows (interval {lo:.1f}-{hi:.1f})"
    return f"{name} ({months:g} months): consistent with this data (interval {lo:.1f}-{_fmt_months(hi)})"


def _fmt_months(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:.1f}"


# --------------------------------------------------------------------------- per configuration


@dataclass
class ConfigDensity:
    key: str
    model_name: str
    n_params_total: int | None
    n_params_active: int | None
    released: str | None
    accuracy: acc_mod.AccuracyScore | None
    setting: str | None
    accuracy_pct_per_active_b: float | None = None
    n_hat: float | None = None
    n_hat_ci95: list[float | None] | None = None
    rho: float | None = None
    rho_ci95: list[float | None] | None = None
    extrapolated: bool = False
    j_per_decode_token: float | None = None
    energy_measured: bool | None = None
    peak_rss_bytes: int | None = None
    notes: list[str] = field(default_factory=list)


def place(fit: LogisticFit, family: ReferenceFamily, row: ConfigDensity) -> ConfigDensity:
    """Fill N̂, ρ and their intervals for a configuration whose accuracy is in the family's setting."""
    acc = row.accuracy
    if acc is None or not row.n_params_active:
        return row
    row.accuracy_pct_per_active_b = acc.value_pct / (row.n_params_active / 1e9)
    refusal = why_not_placed(acc.setting(), family)
    if refusal:
        row.notes.append(refusal)
        return row
    size = effective_size(fit, acc.value_pct, acc.ci95_pct or _binomial_ci(acc))
    row.n_hat, row.n_hat_ci95, row.extrapolated = size.n_hat, size.n_hat_ci95, size.extrapolated
    if size.note:
        row.notes.append(size.note)
    if size.n_hat is not None:
        row.rho = size.n_hat / row.n_params_active
        if size.n_hat_ci95:
            row.rho_ci95 = [None if v is None else v / row.n_params_active for v in size.n_hat_ci95]
    if acc.inherited:
        row.notes.append(f"accuracy inherited from {acc.inherited_from}, not measured on this file")
    return row


def why_not_placed(setting: Setting, family: ReferenceFamily) -> str | None:
    """Why a score in ``setting`` cannot be placed on ``family``'s curve; None when it can."""
    if setting == family.setting:
        return None
    if setting.subset and not family.setting.subset and replace(setting, subset=None) == family.setting:
        return (f"not placed on {family.name}: its accuracy is over a task subset ({setting.subset}), the family is "
                "fitted to full-benchmark numbers; a subset is another setting, and settings are never mixed")
    return (f"not placed on {family.name}: its accuracy is {setting.label()}, the family's is "
            f"{family.setting.label()}; settings are never mixed")


def _binomial_ci(acc: acc_mod.AccuracyScore) -> list[float] | None:
    """Wilson 95% interval from the task count, when the source gives one but no interval."""
    n = acc.n_tasks
    if not n:
        return None
    low, high = wilson_interval(acc.value_pct / 100, n)
    return [100 * low, 100 * high]


def pick_accuracy(scores: list[acc_mod.AccuracyScore], setting: Setting) -> acc_mod.AccuracyScore | None:
    """The best score in exactly the family's setting; else the best for the metric (shown, not placed)."""
    same = [s for s in scores if s.setting() == setting]
    return acc_mod.best(same, setting.metric) or acc_mod.best(scores, setting.metric)


# --------------------------------------------------------------------------- the report


@dataclass
class DensityReport:
    family: ReferenceFamily
    fit: LogisticFit
    rows: list[ConfigDensity]
    trend: Trend | None
    trend_note: str
    cost: list[str]
    notes: list[str] = field(default_factory=list)
    schema_version: int = 1

    def to_dict(self) -> dict:
        from profiler.results.schema import json_safe

        rows = []
        for r in self.rows:
            d = asdict(r)
            d["accuracy"] = r.accuracy.to_dict() if r.accuracy else None
            rows.append(d)
        return json_safe({
            "schema_version": self.schema_version,
            "family": {**asdict(self.family), "setting": asdict(self.family.setting),
                       "chance_pct": self.family.chance_pct},
            "fit": {**asdict(self.fit), "form": "A = c + (100 - c) / (1 + exp(-(a + b ln N)))",
                    "method": "least squares on logit((A - c)/(100 - c)) against ln N",
                    "n_hat_interval": INTERVAL_METHOD},
            "configurations": rows,
            "trend": asdict(self.trend) if self.trend else None,
            "trend_note": self.trend_note,
            "doubling_references_months": DOUBLING_REFERENCES_MONTHS,
            "cost": self.cost,
            "notes": self.notes,
        })


def model_of(row: ConfigDensity) -> str:
    """The model a configuration's accuracy belongs to: the model it is inherited from (quants of one
    base share its score), else the model itself. Thread counts, batch settings and repeated runs
    of one model are the same model."""
    acc = row.accuracy
    return acc.inherited_from if acc is not None and acc.inherited_from else row.model_name


def trend_points(rows: list[ConfigDensity]) -> list[tuple[str, float, list[str]]]:
    """One (release date, ρ, configuration keys) per model: the configurations of a model are copies
    of one accuracy, not independent points. A model whose configurations differ in ρ takes the mean of
    their ln ρ."""
    groups: dict[tuple[str, str], list[ConfigDensity]] = {}
    for r in rows:
        if r.rho and r.released:
            groups.setdefault((r.released, model_of(r)), []).append(r)
    return [(released, math.exp(sum(math.log(r.rho) for r in members) / len(members)), [r.key for r in members])
            for (released, _), members in groups.items()]


def trend_for(rows: list[ConfigDensity]) -> tuple[Trend | None, str]:
    """Fit the trend over the placed models with a release date (one point each), or say why not."""
    placed = [r for r in rows if r.rho]
    missing = [r.key for r in placed if not r.released]
    points = trend_points(rows)
    n_dates = len({d for d, _, _ in points})
    if n_dates < MIN_TREND_POINTS:
        why = (f"no trend: it needs ρ at {MIN_TREND_POINTS} or more different release dates, this data has "
               f"{n_dates}")
        if missing:
            why += f"; release date missing for {', '.join(missing)} (add released = YYYY-MM-DD to its catalogue entry)"
        return None, why
    trend = fit_trend([(d, rho) for d, rho, _ in points])
    n_configs = trend.n_configurations = sum(len(keys) for _, _, keys in points)
    note = (f"fitted over {len(points)} independent points, one per model ({trend.n_points - 2} degree(s) of "
            f"freedom)")
    if n_configs > len(points):
        note += (f"; {n_configs} configurations: a model's copies (thread counts, batch settings, quants that "
                 "inherit its accuracy, repeated runs) share its accuracy and count once")
    if missing:
        note += f"; left out (no release date): {', '.join(missing)}"
    return trend, note


def cost_side(rows: list[ConfigDensity]) -> list[str]:
    """What equal capability costs here: J per token and peak memory per effective billion parameters,
    and between configurations whose accuracy intervals overlap (equal accuracy), the cost ratios."""
    lines = []
    for r in rows:
        if not r.n_hat:
            continue
        per_b = r.n_hat / 1e9
        j = f"{r.j_per_decode_token / per_b:.3g} J/token" if r.j_per_decode_token else "J/token unavailable"
        if r.j_per_decode_token and r.energy_measured is False:
            j += " (ESTIMATED energy)"
        mem = f"{r.peak_rss_bytes / 1e9 / per_b:.3g} GB peak" if r.peak_rss_bytes else "peak memory unavailable"
        lines.append(f"{r.key}: per effective billion parameters {j}, {mem}")
    placed = [r for r in rows if r.n_hat and r.accuracy]
    for i, a in enumerate(placed):
        for b in placed[i + 1:]:
            if _overlap(a, b):
                lines.append(_equal_accuracy_line(a, b))
    return lines


def _interval(r: ConfigDensity) -> list[float]:
    ci = r.accuracy.ci95_pct or _binomial_ci(r.accuracy)
    return ci or [r.accuracy.value_pct, r.accuracy.value_pct]


def _overlap(a: ConfigDensity, b: ConfigDensity) -> bool:
    (alo, ahi), (blo, bhi) = _interval(a), _interval(b)
    return alo <= bhi and blo <= ahi


def _equal_accuracy_line(a: ConfigDensity, b: ConfigDensity) -> str:
    parts = []
    if a.j_per_decode_token and b.j_per_decode_token:
        parts.append(f"J/token {a.j_per_decode_token / b.j_per_decode_token:.2f}x")
    if a.peak_rss_bytes and b.peak_rss_bytes:
        parts.append(f"peak memory {a.peak_rss_bytes / b.peak_rss_bytes:.2f}x")
    cost = ", ".join(parts) or "no cost measured on both"
    return f"equal accuracy within intervals: {a.key} vs {b.key}: {cost}"


def build_report(rows: list[ConfigDensity], family: ReferenceFamily) -> DensityReport:
    fit = fit_family(family)
    for r in rows:
        place(fit, family, r)
    trend, note = trend_for(rows)
    notes = [n for n in [few_sizes_note(fit)] if n]
    if not any(r.rho for r in rows):
        notes.append(f"no configuration has an accuracy in the family's setting ({family.setting.label()}); "
                     "measure one with profiler eval, or use a family in the setting your numbers have")
    return DensityReport(family, fit, rows, trend, note, cost_side(rows), notes)


# --------------------------------------------------------------------------- reference families on disk


def load_families(path: str | Path | None = None) -> dict[str, ReferenceFamily]:
    """Reference families from a TOML file (the shipped one by default); one-line errors."""
    from profiler.models.catalog import tomllib

    path = Path(path) if path else paths.reference_families_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"reference families file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read reference families {path}: {exc}") from None
    families = {}
    for i, entry in enumerate(data.get("families", []), start=1):
        family = _family_from_entry(entry, f"{path}: [[families]] #{i}")
        families[family.name] = family
    if not families:
        raise UserError(f"{path} defines no [[families]]")
    return families


def _family_from_entry(entry: dict, where: str) -> ReferenceFamily:
    for key in ("name", "metric", "n_shot", "points"):
        if key not in entry:
            raise UserError(f"{where}: missing '{key}' (a family needs its name, metric, n_shot and points)")
    points = []
    for j, p in enumerate(entry["points"], start=1):
        here = f"{where} point #{j}"
        for key in ("model", "params", "value", "source"):
            if key not in p:
                raise UserError(f"{here}: missing '{key}' (every number needs its model, params, value and source)")
        setting_keys = {k: p[k] for k in ("metric", "n_shot", "variant") if k in p}
        family_setting = {"metric": entry["metric"], "n_shot": entry["n_shot"], "variant": entry.get("variant")}
        mixed = {k: v for k, v in setting_keys.items() if v != family_setting[k]}
        if mixed:
            raise UserError(f"{here}: mixed settings: {p['model']} has "
                            f"{', '.join(f'{k}={v}' for k, v in mixed.items())} but the family is "
                            f"{', '.join(f'{k}={family_setting[k]}' for k in mixed)}; a fit never mixes settings")
        from profiler.models.catalog import parse_params

        points.append(ReferencePoint(model=p["model"], n_params_active=parse_params(p["params"], here),
                                     accuracy_pct=float(p["value"]), source=p["source"], url=p.get("url", ""),
                                     measured_on=p.get("measured_on", p["model"])))
    setting = Setting(acc_mod.normalise_metric(entry["metric"]), entry["n_shot"], entry.get("variant"))
    return ReferenceFamily(entry["name"], setting, points, entry.get("provenance", "published"), entry.get("note", ""))


def family_from_catalog(family_name: str, catalog, metric: str = "hellaswag") -> ReferenceFamily:
    """A measured family: the catalogue models of ``family`` with a ``profiler eval`` measurement of
    ``metric`` on their exact files. Their settings must agree."""
    from profiler.quality import store

    points, settings = [], {}
    for spec in catalog.models:
        if spec.family != family_name or not spec.sha256:
            continue
        measured = acc_mod.best(acc_mod.from_store(store.measurements(spec.sha256)), metric)
        if measured is None:
            continue
        if not spec.n_params:
            raise UserError(f"catalogue model {spec.name} has no params; the family fit needs each size's parameter count")
        settings[spec.name] = measured.setting()
        points.append(ReferencePoint(spec.name, spec.n_params, measured.value_pct, source=measured.source,
                                     measured_on="this file", url=""))
    if not points:
        raise UserError(f"no catalogue model of family '{family_name}' has a measured {metric} score; run "
                        f"profiler eval MODEL --{metric} {metric} on each size first")
    if len(set(settings.values())) > 1:
        raise UserError(f"family '{family_name}' mixes settings ("
                        f"{'; '.join(f'{m}: {s.label()}' for m, s in settings.items())}); measure every size the same way")
    return ReferenceFamily(f"{family_name} (measured)", next(iter(settings.values())), points, "measured",
                           "measured with profiler eval on each size")
