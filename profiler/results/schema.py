"""Result dataclasses and the versioned JSON they serialise to.

Field names follow llama-bench's JSON wherever a field means the same thing, so tools that
read llama-bench output read ours; our additions carry their unit in the name.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

# 2: rows record their placement (cpu_mask, cpu_strict, cpu_affinity, cpu_cores); version-1 files
# still load, their rows without a placement (None)
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
FLASH_ATTN_INT = {"auto": -1, "off": 0, "on": 1}


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class, despite the name

    # --- llama-bench fields (same names, same meaning) ---
    build_commit: str
    build_number: int
    cpu_info: str
    gpu_info: str
    backends: str
    model_filename: str
    model_type: str
    model_size: int
    model_n_params: int
    n_batch: int
    n_ubatch: int
    n_threads: int
    type_k: str
    type_v: str
    n_gpu_layers: int
    flash_attn: int
    use_mmap: bool
    n_prompt: int
    n_gen: int
    n_depth: int
    test_time: str
    avg_ns: int
    stddev_ns: int
    avg_ts: float
    stddev_ts: float
    samples_ns: list[int]
    samples_ts: list[float]
    # --- ours ---
    backend: str
    model_name: str
    test: str
    quant_type: str
    file_size_bytes: int
    n_ctx: int
    repetitions: int
    random_tokens: bool
    kv_cache_bytes: int
    load_s: float
    ttft_ms: float | None  # None: a test without a prompt has no first token to wait for
    ttft_ms_samples: list[float]
    prefill_ts: float | None
    decode_ts: float | None
    itl_ms_p50: float | None
    itl_ms_p90: float | None
    itl_ms_p99: float | None
    itl_ms_samples: list[float]
    rss_bytes: int | None
    peak_rss_bytes: int | None
    peak_rss_method: str
    pss_bytes: int | None
    uss_bytes: int | None
    weight_bytes_per_token: int
    bytes_per_token: int | None
    achieved_gbps: float | None
    bw_fraction: float | None
    # --- memory of the model apart from the interpreter, and the bandwidth bw_fraction divides by ---
    rss_before_load_bytes: int | None = None  # this process's RSS just before the model was loaded
    model_peak_rss_bytes: int | None = None  # peak_rss_bytes - rss_before_load_bytes
    bw_read_gbps: float | None = None  # read bandwidth measured at this test's thread count
    bw_probe_threads: int | None = None
    bw_probe_buffer_bytes: int | None = None
    bw_note: str | None = None  # why bw_fraction is missing, or why the probe buffer was smaller than promised
    # --- active parameters (docs/density.md) ---
    # Parameters one token runs through: a mixture-of-experts model counts only the experts it
    # routes to (plus router and shared experts); equals model_n_params for a dense model.
    # None on rows written before it existed. weight_bytes_per_token counts the same share.
    model_n_params_active: int | None = None
    # --- where the model came from (README "Models you already have") ---
    # catalog, path, or the local store it was profiled in: ollama, hf-cache, lmstudio, llamacpp;
    # model_name is then the name the user knows it by (ollama:llama3.2:1b)
    model_source: str | None = None
    model_sha256: str | None = None  # the file's sha256 when known (catalogue, or verified in its store)
    # --- energy (docs/energy.md): every figure carries its provenance; None = unavailable ---
    energy_source: str | None = None
    energy_method: str | None = None  # counter / sampled / model / constant
    energy_scope: str | None = None  # package / soc / board-rails / battery-system / wall
    energy_measured: bool | None = None
    energy_attributed: bool | None = None  # system-wide energy split by this process's CPU share
    # "process-share" (split by CPU time), "system-wide" (the share could not be computed: the
    # figure is the whole machine's) or "as-given" (a --watts constant); tables mark system-wide
    energy_attribution: str | None = None
    energy_rate_hz: float | None = None  # None when read at window edges (counters) instead of a rate
    energy_sampling: str | None = None  # how: window edges, the monitor process, or a thread in this one
    energy_samples: int | None = None  # readings taken during the test
    energy_samples_missed: int | None = None  # failed reads + scheduled reads that never happened
    energy_read_errors: int | None = None  # reads that failed (raised or returned nothing)
    thermal_samples_missed: int | None = None
    thermal_read_errors: int | None = None  # failed reads, including single sensors within a reading
    energy_unavailable: str | None = None  # the reason, when there is no figure
    energy_prefill_j: float | None = None
    energy_decode_j: float | None = None
    energy_prefill_net_j: float | None = None  # minus idle power x time
    energy_decode_net_j: float | None = None
    j_per_prefill_token: float | None = None
    j_per_decode_token: float | None = None
    tokens_per_j: float | None = None
    # attributed energy / time over the timed windows: this process's share of the power, not the
    # device's (stored as avg_power_w before issue #19.11; row_from_dict reads that name)
    process_power_w: float | None = None
    device_power_w: float | None = None  # what the source saw (the domain's energy) / time, same windows
    idle_power_w: float | None = None
    # --- thermal and frequency during the test ---
    temp_max_c: float | None = None
    temp_start_c: float | None = None
    freq_ratio: float | None = None  # mean current / maximum CPU frequency
    freq_ratio_min: float | None = None
    throttled: bool | None = None  # None: no throttle indicator on this device
    throttle_reasons: list[str] = field(default_factory=list)
    # --- sustained mode (profiler run --sustained S) ---
    sustained_s: float | None = None
    burst_ts: float | None = None
    steady_ts: float | None = None
    throttle_onset_s: float | None = None
    # --- repetitions (-r auto: profiler/measure/adaptive.py) ---
    ci95_rel: float | None = None  # half-width of the mean t/s's 95% CI, over the mean
    # how: "student-t", or "ar1-adjusted" for lag-1 autocorrelation between repetitions (docs/repetitions.md)
    ci95_method: str | None = None
    ci95_rho_hat: float | None = None  # bias-corrected lag-1 autocorrelation; None below 8 samples
    ci_target_rel: float | None = None  # -r auto's --ci-target; None with a fixed -r
    stop_reason: str = "fixed"  # target / trend / time-cap / rep-cap (-r auto), fixed (-r N)
    warmup_passes: int = 0  # llama-bench's short pass + full passes dropped until two agreed
    trend_drift_rel: float | None = None  # with stop_reason "trend": fitted t/s change over the run
    test_wall_s: float | None = None  # the whole test: warm-up, every pass, untimed parts (depth fill, token choice)
    # --- placement (-C/--cpu-mask, --cores; docs/measurement.md "Placement"); None: stored before it ---
    cpu_mask: str | None = None  # llama-bench's: the mask asked for, 0x0 = no placement
    cpu_strict: bool | None = None  # llama-bench's --cpu-strict
    # the CPUs the measuring process's threads were allowed, read back with sched_getaffinity after the test
    cpu_affinity: list[int] | None = None
    cpu_cores: str | None = None  # the core clusters those CPUs are on: "4× Cortex-A76"
    # raw samples and provenance behind the fields above
    energy_detail: dict = field(default_factory=dict)
    thermal_detail: dict = field(default_factory=dict)
    sustained_detail: dict = field(default_factory=dict)
    # decode_step: what one timed decode covers on this backend (the same step everywhere, llama-bench's);
    # ONNX Runtime's session options (execution_provider, intra_op_num_threads, graph_optimization_level,
    # ...); llama.cpp's settings are the llama-bench fields above
    session_options: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # --- fleet (profiler fleet run, docs/fleet.md): which device measured this row; None elsewhere ---
    device_name: str | None = None
    device_node_id: str | None = None  # the Ray node id
    # CPU, board, RAM, architecture, and the energy source and whether it was measured or estimated
    device_fingerprint: dict = field(default_factory=dict)
    test_start_unix_s: float | None = None  # wall clock on the device when the test began
    test_end_unix_s: float | None = None  # ... and when its row was ready
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return json_safe(asdict(self))


def new_run_id() -> str:
    """A run's id: when it started, then 4 random hex digits so two runs in one second differ."""
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


@dataclass
class RunResult:
    run_id: str
    created: str
    command: str
    device: dict
    rows: list[TestResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # One dict per model whose run broke off: model, test in flight, error; "recovered" (when and
    # how) once a --resume has measured every test it had missed.
    failures: list[dict] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    tool: str = "profiler"

    @property
    def open_failures(self) -> list[dict]:
        """The failures whose tests are still missing: what the exit status and status reflect."""
        return [f for f in self.failures if not f.get("recovered")]

    def to_dict(self) -> dict:
        return {
            "schema_version": self.schema_version,
            "tool": self.tool,
            "run_id": self.run_id,
            "created": self.created,
            "command": self.command,
            "device": json_safe(self.device),
            "warnings": list(self.warnings),
            "failures": list(self.failures),
            "rows": [r.to_dict() for r in self.rows],
        }


def recover_failures(failures: list[dict], complete) -> list[dict]:
    """Mark as recovered each failure for which ``complete(failure)`` says every test it had missed
    is now stored (a --resume made it good); the record stays, for the history. Returns those marked."""
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    marked = [f for f in failures if not f.get("recovered") and complete(f)]
    for failure in marked:
        failure["recovered"] = f"by --resume at {when}: every test it had missed is measured"
    return marked


def failure_label(failure: dict) -> str:
    """How a failure reads in every listing: "failed", or "recovered" once a resume made it good."""
    return "recovered" if failure.get("recovered") else "failed"


def json_safe(value):
    """JSON has no NaN: write null, so a missing number never reads as a number (tuples become
    lists, as json.dumps writes them)."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


# Row fields renamed since rows were first stored: old name -> new name (the store keeps each row's
# JSON as written, so every reader goes through row_from_dict).
RENAMED_FIELDS = {"avg_power_w": "process_power_w"}


def _device_power_w(detail: dict) -> float | None:
    """The device's power over the timed windows from a row's own per-phase breakdown (rows stored
    before device_power_w existed): sum of domain_j / sum of duration_s over the phases that have one."""
    phases = [p for p in (detail or {}).get("phases", {}).values()
              if isinstance(p, dict) and p.get("domain_j") is not None and p.get("duration_s")]
    seconds = sum(p["duration_s"] for p in phases)
    return sum(p["domain_j"] for p in phases) / seconds if seconds > 0 else None


def row_from_dict(data: dict) -> TestResult:
    data = dict(data)
    for old, new in RENAMED_FIELDS.items():
        if old in data:
            value = data.pop(old)
            data.setdefault(new, value)
    if "device_power_w" not in data and data.get("energy_detail"):
        data["device_power_w"] = _device_power_w(data["energy_detail"])
    names = {f.name for f in fields(TestResult)}
    known = {k: v for k, v in data.items() if k in names}
    extra = {k: v for k, v in data.items() if k not in names}
    row = TestResult(**known)
    row.extra.update(extra)
    return row


def load_run(path: str | Path) -> RunResult:
    data = json.loads(Path(path).read_text())
    version = data.get("schema_version")
    if version not in READABLE_VERSIONS:
        from profiler.errors import UserError

        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise UserError(f"{path}: results schema version {version} is not supported (this profiler reads {readable})")
    return RunResult(
        run_id=data["run_id"],
        created=data["created"],
        command=data.get("command", ""),
        device=data.get("device", {}),
        rows=[row_from_dict(r) for r in data.get("rows", [])],
        warnings=data.get("warnings", []),
        failures=data.get("failures", []),
    )


def find_run(ref: str | None, reports_dir: Path) -> Path:
    """A run's results.json from a path, a run id in ``reports_dir``, or (None) the latest run there."""
    from profiler.errors import UserError

    if ref:
        p = Path(ref)
        for candidate in (p, p / "results.json", Path(reports_dir) / ref / "results.json"):
            if candidate.is_file():
                return candidate
        raise UserError(f"no run '{ref}': give a results.json, a run folder or a run id in {reports_dir}")
    runs = sorted(Path(reports_dir).glob("*/results.json"))
    if not runs:
        raise UserError(f"no runs in {reports_dir}: measure first with profiler run (or pass --run PATH)")
    return runs[-1]
