"""Fleet runs in the store and the reports, without a cluster: compare RUN@DEVICE, the device x
model x test table, the per-device choice, the HTML page's device dimension, fleet keys."""

from __future__ import annotations

import copy
import os

import pytest

from profiler.errors import UserError
from profiler.fleet import dispatch, output
from profiler.report.html import render_html
from profiler.results import compare
from profiler.results.schema import RunResult
from profiler.results.store import Store
from support.tests_support import make_row

FLEET = {"fleet": {"pi5": {"node_id": "aa" * 28, "fingerprint": {"cpu_model": "Cortex-A76", "physical_cores": 4,
                                                                "ram_total_bytes": 8 << 30, "arch": "aarch64"}},
                   "laptop": {"node_id": "bb" * 28, "fingerprint": {"cpu_model": "EPYC", "physical_cores": 8,
                                                                   "ram_total_bytes": 16 << 30, "arch": "x86_64"}}}}


def _rows():
    rows = []
    for device, threads, speed in (("pi5", 4, 10.0), ("laptop", 8, 40.0)):
        for model, rss in (("small", 100 << 20), ("big", 900 << 20)):
            factor = 1.0 if model == "small" else 0.5
            rows.append(make_row(device_name=device, n_threads=threads, model_name=model, test="tg16", n_prompt=0,
                                 n_gen=16, decode_ts=speed * factor, avg_ts=speed * factor,
                                 samples_ts=[speed * factor * 0.99, speed * factor * 1.01], peak_rss_bytes=rss,
                                 energy_source="rapl", energy_measured=True, j_per_decode_token=0.5))
    return rows


def _run() -> RunResult:
    return RunResult(run_id="r1", created="2026-11-29T00:00:00+00:00", command="profiler fleet run", device=FLEET,
                     rows=_rows(), failures=[{"model": "big", "test": "tg16", "error": "device left the fleet",
                                              "device": "pi5"}])


def test_compare_two_devices_of_one_run(tmp_path):
    store = Store(tmp_path / "p.db")
    run = _run()
    store.begin_run(run, {"models": ["small", "big"], "sweep": {}, "fleet": {"devices": ["pi5", "laptop"]}})
    for row in run.rows:
        store.add_row(run.run_id, dispatch.fleet_key(row.device_name, f"{row.model_name}|{row.test}"), row)
    results = compare.compare(compare.load_side("r1@pi5", store), compare.load_side("r1@laptop", store))
    # matched across different thread counts (each device's own core count), laptop 4x faster
    assert sorted(c.model for c in results) == ["big", "small"]
    assert all(c.speedup == pytest.approx(4.0) for c in results)
    with pytest.raises(UserError, match="no rows from device 'jetson'.*laptop, pi5"):
        compare.load_side("r1@jetson", store)


def test_table_and_per_device_choice_within_budget():
    run = _run()
    lines = output.table_rows(run)
    assert [line[:2] for line in lines] == [["laptop", "small"], ["laptop", "big"], ["pi5", "small"], ["pi5", "big"]]
    assert lines[0][-1] == "measured (rapl)"
    choices = {c.device: c for c in output.device_scoreboards(run, max_memory_bytes=500 << 20)}
    assert set(choices) == {"laptop", "pi5"}
    for choice in choices.values():
        # split per device: each board holds that device's two configurations only
        assert len(choice.board.scores) == 2
        reasons = dict(choice.recommendation.excluded)
        assert any("no hellaswag score" in r or "peak memory" in r for r in reasons.values())
    part = output.device_run(run, "pi5")
    assert {r.device_name for r in part.rows} == {"pi5"} and len(part.failures) == 1


def test_score_on_a_fleet_run_keeps_devices_apart():
    from profiler.analysis import scoring

    keys = sorted(c.key for c in scoring.configurations(_run().rows))
    assert keys == ["laptop: big t8", "laptop: small t8", "pi5: big t4", "pi5: small t4"]


def test_html_page_has_the_device_dimension():
    page = render_html(_run())
    assert '<th class="l">device</th>' in page
    assert "Cortex-A76" in page and "Ray node aaaaaaaaaaaa" in page
    assert "pi5: big" in page  # the failure names its device


def test_fleet_keys_round_trip():
    key = dispatch.fleet_key("pi5-kitchen", "m|p512|n0|d0|t4|b2048|ub512|kf16|vf16|faauto")
    assert dispatch.split_key(key) == ("pi5-kitchen", "m|p512|n0|d0|t4|b2048|ub512|kf16|vf16|faauto")


@pytest.mark.parametrize("recorded, ray_set, expected", [("", "1", None), ("3", "1", "3"), (None, "1", "1")])
def test_device_task_puts_back_the_users_omp_setting(monkeypatch, recorded, ray_set, expected):
    """Ray forces OMP_NUM_THREADS=1 in a worker that claims no CPU; the measured child must not inherit it."""
    from profiler.fleet.cluster import ORIGINAL_OMP_ENV
    from profiler.fleet.device_task import restore_user_environment

    monkeypatch.setenv("OMP_NUM_THREADS", ray_set)
    if recorded is None:
        monkeypatch.delenv(ORIGINAL_OMP_ENV, raising=False)
    else:
        monkeypatch.setenv(ORIGINAL_OMP_ENV, recorded)
    restore_user_environment()
    assert os.environ.get("OMP_NUM_THREADS") == expected


def test_closing_line_per_device_and_model_names_the_device_and_its_cpu():
    run = _run()
    run.device = copy.deepcopy(run.device)  # FLEET is shared by the other tests
    run.device["fleet"]["pi5"]["measured_device"] = {"board": "Raspberry Pi 5 Model B Rev 1.0",
                                                     "cpu_model": "Cortex-A76", "physical_cores": 4}
    lines = output.closing_lines(run)
    # one line per (device, model), each naming the device, its board when it has one, and its CPU
    assert len(lines) == 4
    assert sorted(line.split(" on ")[0] for line in lines) == ["big F32", "big F32", "small F32", "small F32"]
    laptop = [line for line in lines if " on laptop [EPYC] (8 threads): " in line]
    pi5 = [line for line in lines if " on pi5 [Raspberry Pi 5 Model B, Cortex-A76] (4 threads): " in line]
    assert len(laptop) == 2 and len(pi5) == 2
    assert any(line.startswith("small F32 on laptop") and "40.0 t/s generation" in line for line in laptop)
    assert not any("unknown" in line for line in lines)


def test_warnings_of_the_run_and_of_its_rows_are_shown_once_each():
    run = _run()
    run.warnings = ["skipped gemma: not in the cache", "pi5: throttled"]
    run.rows[0].warnings = ["throttled", "throttled"]
    assert output.warnings(run) == ["skipped gemma: not in the cache", "pi5: throttled"]


def test_fleet_run_carries_the_callers_warnings():
    """RunOptions.warnings (profiler run --all-local's skipped models) belong to the fleet run too."""
    from profiler.measure.plan import Sweep
    from profiler.run.options import RunOptions
    from profiler.run.orchestrate import Ledger, Plan

    options = RunOptions(warnings=["skipped gemma-3-270m: not in the local cache"])
    run = dispatch.start_run(Ledger(options, None, Plan([], Sweep())), [])
    assert run.warnings == ["skipped gemma-3-270m: not in the local cache"]
    options.warnings.append("later")  # a copy: the options' list is not the run's
    assert run.warnings == ["skipped gemma-3-270m: not in the local cache"]


def _dispatch(tmp_path) -> dispatch.Dispatch:
    from profiler.run.options import Callbacks, RunOptions

    run = RunResult(run_id="r2", created="2026-11-29T00:00:00+00:00", command="profiler fleet run",
                    device={"fleet": {"pi5": {}}})
    store = Store(tmp_path / "p.db")
    store.begin_run(run, {"models": ["small"], "sweep": {}, "fleet": {"devices": ["pi5"]}})
    messages: list[str] = []
    run_dispatch = dispatch.Dispatch(None, store, run, RunOptions(save=False), Callbacks(message=messages.append))
    run_dispatch.remaining["pi5"] = [("small", "pp16", "small|pp16"), ("small", "tg8", "small|tg8"),
                                     ("big", "pp16", "big|pp16")]
    run_dispatch.messages = messages
    return run_dispatch


def test_a_device_dying_between_two_tests_records_the_next_test_and_what_was_not_run(tmp_path):
    d = _dispatch(tmp_path)
    d._on_event({"device": "pi5", "type": "test_started", "model": "small", "test": "pp16"})
    row = make_row(device_name="pi5", model_name="small", test="pp16", n_prompt=16)
    d._on_event({"device": "pi5", "type": "row", "key": "small|pp16", "row": row.to_dict()})
    d._fail("pi5", "aa" * 28, "device left the fleet: Ray reports its node dead")
    [failure] = d.run.failures
    assert (failure["model"], failure["test"]) == ("small", "tg8")  # the test that was next, not None
    assert failure["not_run"] == ["small tg8", "big pp16"]
    assert "between tests: small tg8 was next" in failure["error"]
    assert failure["error"].endswith("not run: small tg8, big pp16")
    assert any("pi5 failed between tests, before small tg8" in m for m in d.messages)
    assert Store(tmp_path / "p.db").load_run("r2").failures == [failure]  # stored as it happened


def test_a_device_dying_in_a_test_records_that_test(tmp_path):
    d = _dispatch(tmp_path)
    d._on_event({"device": "pi5", "type": "test_started", "model": "small", "test": "pp16"})
    d._fail("pi5", "aa" * 28, "device left the fleet")
    [failure] = d.run.failures
    assert (failure["model"], failure["test"]) == ("small", "pp16")
    assert failure["not_run"] == ["small pp16", "small tg8", "big pp16"]
    assert "between tests" not in failure["error"]


def test_a_fleet_run_without_model_names_sends_the_catalogues_defaults(tiny_gguf, tmp_path):
    """profiler fleet run with no names measures the catalogue's default models: each is resolved
    and offered to the devices (it once zipped the defaults with the empty name list: nothing sent)."""
    from profiler.run.options import Callbacks
    from profiler.sources import resolve_models

    models = tmp_path / "models.toml"
    models.write_text(f'[[models]]\nname = "tiny"\nformat = "gguf"\nsource = "{tiny_gguf}"\ndefault = true\n'
                      f'[[models]]\nname = "other"\nformat = "gguf"\nsource = "{tiny_gguf}"\n')
    specs = resolve_models([], models)
    files = dispatch.model_files(specs, [], Callbacks())
    assert [(model.name, path) for model, path in files] == [("tiny", tiny_gguf)]


def test_table_keeps_profiler_runs_order_within_each_device():
    """pp before tg before pg, model by model as measured: the order profiler run shows (tg once came first)."""
    rows = [make_row(device_name=device, model_name=model, test=test, n_prompt=p, n_gen=n)
            for device in ("pi5", "laptop") for model in ("zeta", "alpha")
            for test, p, n in (("pp16", 16, 0), ("tg8", 0, 8), ("pp8+tg4", 8, 4))]
    run = RunResult(run_id="r3", created="2026-11-29T00:00:00+00:00", command="profiler fleet run", device=FLEET,
                    rows=rows)
    lines = output.table_rows(run)
    expected = [[d, m, t] for d in ("laptop", "pi5") for m in ("zeta", "alpha") for t in ("pp16", "tg8", "pp8+tg4")]
    assert [[line[0], line[1], line[3]] for line in lines] == expected


def test_per_device_choice_without_quality_data_is_on_cost_and_says_how_to_get_it():
    choices = {c.device: c for c in output.device_scoreboards(_run())}
    for device, choice in choices.items():
        rec = choice.recommendation
        assert rec.best is not None and rec.best.config.key == f"{device}: small t{4 if device == 'pi5' else 8}"
        assert rec.excluded == []
        assert "on cost alone" in rec.why and "no quality data: no hellaswag score exists" in rec.why
        assert "profiler eval MODEL --hellaswag" in rec.why


def test_a_resume_that_measured_every_missing_test_recovers_the_failure():
    from profiler.results.schema import failure_label, recover_failures

    run = _run()
    run.failures.append({"model": "small", "test": "tg16", "error": "crashed", "device": "laptop"})
    marked = recover_failures(run.failures, lambda f: f["device"] == "pi5")
    assert [f["device"] for f in marked] == ["pi5"]
    assert run.failures[0]["recovered"].startswith("by --resume at ")
    assert [f["device"] for f in run.open_failures] == ["laptop"]
    assert [failure_label(f) for f in run.failures] == ["recovered", "failed"]
    assert recover_failures(run.failures, lambda f: True) == [run.failures[1]]  # once each


def test_fleet_devices_lists_the_live_node_and_the_dead_one_only_with_all():
    from profiler.fleet import registry

    old = registry.DeviceNode("pi5", "aa" * 28, "10.0.0.5", alive=False, slots=1.0)
    new = registry.DeviceNode("pi5", "bb" * 28, "10.0.0.5", alive=True, slots=1.0)
    laptop = registry.DeviceNode("laptop", "cc" * 28, "10.0.0.6", alive=True, slots=1.0)
    assert registry.listed([old, new, laptop]) == [new, laptop]
    assert registry.listed([old, new, laptop], every=True) == [old, new, laptop]
    node = {"RayletSocketName": "/tmp/ray/session_2026-12-03_17-08-16_1/sockets/raylet.2"}
    assert registry.ray_log(node) == "/tmp/ray/session_2026-12-03_17-08-16_1/logs/raylet.2.out"
