"""Scores, the Pareto frontier, budget recommendations and the accuracy merge."""

from __future__ import annotations

import json
import math

import pytest

from profiler.analysis import accuracy as acc
from profiler.analysis import scoring, scoring_io
from profiler.errors import UserError
from profiler.models.catalog import Catalog, ModelSpec, load_catalog
from profiler.quality import store
from profiler.quality.missing import has_hellaswag
from support.tests_support import make_row


def _row(name, n_gen=0, n_prompt=0, decode=None, prefill=None, peak=None, j=None, measured=True, threads=4, **extra):
    row = {"model_name": name, "model_filename": f"/m/{name}.gguf", "n_threads": threads, "n_batch": 2048,
           "n_ubatch": 512, "type_k": "f16", "type_v": "f16", "flash_attn": -1, "quant_type": "Q4_0",
           "model_n_params": 500_000_000, "file_size_bytes": 300_000_000, "n_gen": n_gen, "n_prompt": n_prompt,
           "decode_ts": decode, "prefill_ts": prefill, "peak_rss_bytes": peak}
    if j is not None:
        row.update(j_per_decode_token=j, energy_measured=measured, energy_source="rapl", energy_method="counter")
    row.update(extra)
    return make_row(**row)


def _config(name, decode, peak, j=None, params=500_000_000, measured=True):
    rows = [_row(name, n_prompt=512, prefill=900.0, peak=peak - 10),
            _row(name, n_gen=128, decode=decode, peak=peak, j=j, measured=measured)]
    c = scoring.configurations(rows)[0]
    c.n_params = params
    c.model_sha256 = f"sha-{name}"
    return c


def _published(metric, value, on="this file"):
    return acc.AccuracyScore(metric=metric, value_pct=value, provenance="published", n_shot=0, source="card",
                             inherited_from=None if on == "this file" else on)


def test_configuration_summarises_its_rows():
    c = scoring.configurations([_row("a", n_prompt=512, prefill=800.0, peak=100),
                                _row("a", n_gen=128, decode=40.0, peak=150, j=0.02),
                                _row("a", n_gen=128, decode=40.0, peak=120, threads=2)])
    by_key = {x.key: x for x in c}
    assert set(by_key) == {"a t4", "a t2"}
    a4 = by_key["a t4"]
    assert (a4.decode_tps, a4.prefill_tps, a4.peak_rss_bytes, a4.j_per_decode_token) == (40.0, 800.0, 150, 0.02)
    assert a4.energy_note.startswith("measured: rapl")
    assert by_key["a t2"].j_per_decode_token is None and by_key["a t2"].energy_note.startswith("energy unavailable")


def test_score_formulas():
    c = _config("a", decode=50.0, peak=2_000_000_000, j=0.01)
    s = scoring.score(c, "hellaswag", _published("hellaswag", 40.0), price_per_kwh=0.30)
    assert s.tokens_per_j == pytest.approx(100.0)
    assert s.j_per_1k_tokens == pytest.approx(10.0)
    assert s.cost_per_1m_tokens == pytest.approx(0.01 * 1e6 / 3.6e6 * 0.30)
    assert s.accuracy_pct_per_j_per_1k_tokens == pytest.approx(4.0)
    assert s.accuracy_pct_per_gb_peak == pytest.approx(20.0)
    assert s.knowledge_density_pct_per_b_params == pytest.approx(80.0)
    assert s.knowledge_density_above_chance_pct_per_b_params == pytest.approx(30.0)  # (40 - 25) / 0.5


def test_no_energy_means_no_energy_scores_not_zero():
    s = scoring.score(_config("a", 50.0, 10**9), "hellaswag", _published("hellaswag", 40.0), 0.30)
    assert s.tokens_per_j is None and s.cost_per_1m_tokens is None and s.accuracy_pct_per_j_per_1k_tokens is None
    assert s.accuracy_pct_per_gb_peak == pytest.approx(40.0)


def _board(configs_and_acc, price=0.30):
    scores = [scoring.score(c, "hellaswag", a, price) for c, a in configs_and_acc]
    used, notes = scoring.pareto(scores)
    return scoring.Scoreboard("hellaswag", price, scores, used, notes)


def test_pareto_marks_dominated_configurations():
    big = _config("big", decode=20.0, peak=900_000_000, j=0.05)
    small = _config("small", decode=60.0, peak=300_000_000, j=0.01)
    worse = _config("worse", decode=50.0, peak=400_000_000, j=0.02)  # worse than small on everything
    board = _board([(big, _published("hellaswag", 45.0)), (small, _published("hellaswag", 38.0)),
                    (worse, _published("hellaswag", 37.0))])
    state = {s.config.model_name: (s.on_frontier, s.dominated_by) for s in board.scores}
    assert state["big"] == (True, []) and state["small"] == (True, [])
    assert state["worse"] == (False, ["small t4"])
    assert board.objectives_used == ["accuracy", "J/token", "peak memory", "decode t/s"]


def test_pareto_drops_a_missing_objective_and_says_so():
    a = _config("a", decode=20.0, peak=900, j=None)
    b = _config("b", decode=10.0, peak=900, j=0.01)
    board = _board([(a, _published("hellaswag", 40.0)), (b, _published("hellaswag", 40.0))])
    assert "J/token" not in board.objectives_used
    assert any("J/token left out" in n and "a t4" in n for n in board.notes)
    assert [s.on_frontier for s in board.scores] == [True, False]  # faster, same accuracy and memory


def test_recommendation_under_a_budget():
    big = _config("big", decode=8.0, peak=1_500_000_000, j=0.05)
    mid = _config("mid", decode=15.0, peak=800_000_000, j=0.02)
    small = _config("small", decode=40.0, peak=300_000_000, j=0.01)
    none = _config("unrated", decode=90.0, peak=100_000_000, j=0.01)
    board = _board([(big, _published("hellaswag", 48.0)), (mid, _published("hellaswag", 42.0)),
                    (small, _published("hellaswag", 35.0)), (none, None)])
    rec = scoring.recommend(board, max_memory_bytes=scoring.parse_bytes("1GB"), min_tps=10)
    assert rec.best.config.model_name == "mid"
    assert "highest hellaswag among 2 configuration(s)" in rec.why and "42.0%" in rec.why
    assert [s.config.model_name for s in rec.runners_up] == ["small"]
    excluded = dict(rec.excluded)
    assert excluded["big t4"].startswith("peak memory 1.50 GB > 1.00 GB")
    assert excluded["unrated t4"] == "no hellaswag score"
    assert scoring.recommend(board, max_memory_bytes=10).best is None


def test_parse_bytes():
    assert scoring.parse_bytes("1GB") == 10**9
    assert scoring.parse_bytes("1.5GiB") == int(1.5 * 2**30)
    assert scoring.parse_bytes("800M") == 800 * 10**6
    with pytest.raises(UserError, match="not a size"):
        scoring.parse_bytes("lots")


# --------------------------------------------------------------------------- accuracy merge


def test_measured_beats_published_and_inherited_is_labelled():
    scores = [
        _published("hellaswag", 42.99, on="HF instruct (unquantized)"),
        acc.AccuracyScore(metric="hellaswag", value_pct=39.5, provenance="measured", n_shot=0, source="profiler eval",
                          n_tasks=400),
    ]
    winner = acc.best(scores, "HellaSwag")
    assert winner.provenance == "measured" and winner.value_pct == 39.5 and not winner.inherited
    only_published = acc.best(scores[:1], "hellaswag")
    assert only_published.inherited and "inherited from HF instruct (unquantized)" in only_published.label()
    assert acc.best(scores, "piqa") is None


def test_exact_beats_inherited_even_of_higher_provenance():
    lm = acc.AccuracyScore(metric="piqa", value_pct=70.0, provenance="lm-eval", n_shot=0, source="x", inherited_from="hf")
    exact = _published("piqa", 65.0)
    assert acc.best([lm, exact], "piqa") is exact


def test_first_catalogue_entry_wins_among_inherited():
    scores = acc.from_catalog([
        {"metric": "piqa", "value": 66.92, "n_shot": 0, "source": "third party", "measured_on": "instruct"},
        {"metric": "piqa", "value": 68.4, "n_shot": 0, "source": "card", "measured_on": "base model"},
    ])
    assert acc.best(scores, "piqa").value_pct == 66.92


def test_derived_quant_copies_scores_as_inherited():
    scores = acc.inherit(acc.from_catalog([{"metric": "hellaswag", "value": 40.9, "n_shot": 10, "source": "card",
                                            "measured_on": "google/gemma-3-270m"}]), "gemma-q4")
    assert scores[0].inherited_from == "google/gemma-3-270m via gemma-q4"


def test_default_catalogue_seeds_are_all_inherited_with_source_and_shots():
    catalog = load_catalog()
    smol = catalog.get("smollm2-135m-instruct-q4_1")
    gemma = catalog.get("gemma-3-270m-q4_k_m")
    for spec in (smol, gemma):
        scores = acc.from_catalog(spec.accuracy)
        assert scores and all(s.inherited and s.source and s.n_shot is not None and s.url for s in scores)
    g = {s.metric: (s.value_pct, s.n_shot) for s in acc.from_catalog(gemma.accuracy)}
    assert g == {"hellaswag": (40.9, 10), "boolq": (61.4, 0), "piqa": (67.7, 0), "arc_easy": (57.7, 0)}
    hs = acc.best(acc.from_catalog(smol.accuracy), "hellaswag")
    assert (hs.value_pct, hs.variant) == (42.99, "acc_norm")
    base_only = [s for s in acc.from_catalog(smol.accuracy) if "base" in s.inherited_from]
    assert {s.metric: s.value_pct for s in base_only} == {"piqa": 68.4, "mmlu_cloze": 31.5, "arc": 43.9, "hellaswag": 42.1}


def test_catalogue_rejects_incomplete_scores(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[[models]]\nname = "x"\nformat = "gguf"\nsource = "x.gguf"\n'
                    '[[models.accuracy]]\nmetric = "piqa"\nvalue = 60.0\nsource = "card"\nmeasured_on = "y"\n')
    with pytest.raises(UserError, match="accuracy #1: missing 'n_shot'"):
        load_catalog(path)
    path.write_text(path.read_text().replace("value = 60.0", "value = 160.0\nn_shot = 0"))
    with pytest.raises(UserError, match="not a percentage"):
        load_catalog(path)


LM_EVAL = {
    "results": {
        "hellaswag": {"alias": "hellaswag", "acc,none": 0.41, "acc_stderr,none": 0.005, "acc_norm,none": 0.43,
                      "acc_norm_stderr,none": 0.005},
        "arc_easy": {"alias": "arc_easy", "acc,none": 0.55, "acc_stderr,none": 0.01},
    },
    "n-shot": {"hellaswag": 0, "arc_easy": 0},
    "config": {"model": "hf", "model_args": "pretrained=HuggingFaceTB/SmolLM2-135M-Instruct"},
}


def test_lm_eval_results(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(LM_EVAL))
    scores = {s.metric: s for s in acc.from_lm_eval(path, ("smol-q4.gguf",))}
    hs = scores["hellaswag"]
    assert (hs.value_pct, hs.variant, hs.n_shot, hs.provenance) == (43.0, "acc_norm", 0, "lm-eval")
    assert hs.inherited_from == "pretrained=HuggingFaceTB/SmolLM2-135M-Instruct"
    assert hs.ci95_pct == pytest.approx([43.0 - 0.98, 43.0 + 0.98])
    assert scores["arc_easy"].variant == "acc"
    exact = acc.from_lm_eval(path, ("SmolLM2-135M-Instruct",))
    assert not exact[0].inherited
    path.write_text("{}")
    with pytest.raises(UserError, match="no 'results'"):
        acc.from_lm_eval(path)


def test_scoreboard_reads_measured_store_by_sha(isolated_env):
    spec = ModelSpec(name="m", format="gguf", sources=["m.gguf"], sha256="ab" * 32, accuracy=[
        {"metric": "hellaswag", "value": 42.99, "n_shot": 0, "source": "card", "measured_on": "unquantized"}])
    config = _config("m", decode=30.0, peak=500_000_000)
    config.model_sha256 = None
    board = scoring_io.board([config], "hellaswag", catalog=Catalog(path=None, models=[spec]))
    assert board.scores[0].accuracy.inherited and any("inherited" in n for n in board.notes)
    store.record([{"model_sha256": "ab" * 32, "metric": "hellaswag", "value_pct": 37.5, "n_tasks": 200, "n_shot": 0}])
    store.record([{"model_sha256": "cd" * 32, "metric": "hellaswag", "value_pct": 99.0, "n_tasks": 200}])  # another file
    assert config.model_sha256 is None  # the board scored a copy carrying the sha256: its argument is unchanged
    board = scoring_io.board([config], "hellaswag", catalog=Catalog(path=None, models=[spec]))
    winner = board.scores[0].accuracy
    assert (winner.value_pct, winner.provenance, winner.inherited) == (37.5, "measured", False)
    assert math.isclose(board.scores[0].accuracy_pct, 37.5)


# --------------------------------------------------------------------------- settings are never mixed


def test_label_and_setting_show_shots_variant_and_subset():
    measured = acc.from_store([{"metric": "hellaswag", "value_pct": 30.0, "n_tasks": 100, "n_shot": 0,
                                "selection": "100 of 10042, llama-perplexity's random order", "data_sha256": "f" * 64}])[0]
    assert measured.label() == "measured 0-shot acc_norm per token, 100 tasks"
    assert measured.setting_text() == "0-shot acc_norm per token, 100 of 10042, llama-perplexity's random order; data ffffffffffff"
    published = _published("hellaswag", 40.9)
    assert published.setting_text() == "0-shot variant unstated, full benchmark"
    assert measured.setting() != published.setting()


def test_winogrande_measured_by_us_is_plain_acc_not_acc_norm():
    lines = [{"metric": "winogrande", "value_pct": 55.0, "n_tasks": 50, "source": "profiler eval (50 of 1267)"},
             {"metric": "hellaswag", "value_pct": 30.0, "n_tasks": 50, "source": "profiler eval (50 of 10042)"}]
    wino, hs = acc.from_store(lines)
    assert wino.variant == "acc" and hs.variant == "acc_norm_token"
    assert wino.subset == "50 of 1267"  # older index lines: the selection read from the source text


def test_best_and_the_scoreboard_never_rank_across_settings(isolated_env):
    ours = _config("ours", decode=20.0, peak=400_000_000, j=0.02)
    carded = _config("carded", decode=30.0, peak=300_000_000, j=0.01)
    store.record([{"model_sha256": ours.model_sha256, "metric": "hellaswag", "value_pct": 35.0, "n_tasks": 400,
                   "n_shot": 0, "selection": "400 of 10042", "data_sha256": "d" * 64}])
    card = ModelSpec(name="carded", format="gguf", sources=["c.gguf"], accuracy=[
        {"metric": "hellaswag", "value": 40.9, "n_shot": 10, "variant": "acc_norm", "source": "card",
         "measured_on": "google/gemma-3-270m"}])
    board = scoring_io.board([ours, carded], "hellaswag", catalog=Catalog(path=None, models=[card]))
    by = {s.config.model_name: s for s in board.scores}
    assert by["ours"].accuracy.provenance == "measured" and by["carded"].accuracy is None  # 10-shot is not 0-shot
    assert any("carded t4" in n and "10-shot acc_norm" in n and "not comparable" in n for n in board.notes)
    assert scoring.recommend(board).best.config.model_name == "ours"
    only = acc.best(acc.from_catalog(card.accuracy), "hellaswag", setting=acc.Setting("hellaswag", 0, "acc_norm_token"))
    assert only is None  # asked for one setting, a number in another is never returned


def test_lm_eval_is_exact_only_when_its_model_args_name_the_file(tmp_path):
    path = tmp_path / "results.json"
    for args, exact in [("pretrained=org/repo,gguf_file=smol-q4.gguf", True),
                        ("pretrained=/models/smol-q4.gguf", True),
                        ("pretrained=org/smol-q4.gguf-v2", False),  # contains the name, names another file
                        (f"pretrained=x,revision={'ab' * 32}", True)]:
        path.write_text(json.dumps({**LM_EVAL, "config": {"model_args": args}}))
        scores = acc.from_lm_eval(path, ("smol-q4.gguf", "ab" * 32))
        assert all(s.inherited is not exact for s in scores), args
    path.write_text(json.dumps({**LM_EVAL, "config": {"model_args": "pretrained=a/smol-q4.gguf"}}))
    assert all(s.inherited for s in acc.from_lm_eval(path, ("q4.gguf",)))  # a substring is not a name


# --------------------------------------------------------------------------- uncertainty-aware ranking


def _bits(*runs: tuple[str, int]) -> str:
    return "".join(bit * count for bit, count in runs)


# The ladder: 100 HellaSwag tasks say Q2_K (34%) beats Q4_1 (30%); PPL and KLD on the same
# text say Q2_K is far worse. Q2_K is also the fastest, smallest and cheapest.
LADDER = {  # name: (decode t/s, peak bytes, J/token, tasks right as runs of 1/0, KLD, PPL)
    "q8_0": (20.0, 400_000_000, 0.030, _bits(("1", 20), ("0", 14), ("1", 11), ("0", 55)), (0.0005, 0.00005), (25.20, 0.34)),
    "q4_1": (30.0, 250_000_000, 0.020, _bits(("1", 20), ("0", 14), ("1", 10), ("0", 56)), (0.0027, 0.0002), (25.70, 0.35)),
    "q2_k": (45.0, 150_000_000, 0.012, _bits(("1", 34), ("0", 66)), (0.41, 0.02), (35.45, 0.50)),
}


# what a KLD line records of its setting (profiler eval --kld): reference model and file, text, context, chunks
KLD_SETTING = {"reference_sha256": "f" * 64, "reference_file_sha256": "e" * 64, "data_sha256": "w" * 64,
               "n_ctx": 512, "n_chunks": 10, "top_k": 128, "tail_samples": 64, "n_vocab": 49152}


def _ladder(kld=True, ppl=True):
    configs = []
    for name, (tps, peak, j, bits, k, p) in LADDER.items():
        c = _config(name, decode=tps, peak=peak, j=j, params=134_515_008)
        base = {"model_sha256": c.model_sha256, "run_id": "r"}
        store.record([{**base, "metric": "hellaswag", "value_pct": 100 * bits.count("1") / len(bits), "n_tasks": 100,
                       "n_shot": 0, "selection": "100 of 10042", "data_sha256": "d" * 64, "task_correct": bits}])
        if kld:
            store.record([{**base, "metric": "kld", "value": k[0], "uncertainty": k[1], **KLD_SETTING}])
        if ppl:
            store.record([{**base, "metric": "ppl", "value": p[0], "uncertainty": p[1], "data_sha256": "w" * 64,
                           "n_ctx": 512, "n_chunks": 10}])
        configs.append(c)
    return scoring_io.board(configs, "hellaswag")


def test_noisy_accuracy_never_ranks_a_worse_quant_above_a_better_one(isolated_env):
    board = _ladder()
    by = {s.config.model_name: s for s in board.scores}
    assert by["q2_k"].accuracy_pct > by["q4_1"].accuracy_pct  # the noisy metric inverts the true order
    order = board.quality_order
    assert order.cmp("q4_1 t4", "q2_k t4") == 1 and order.verdict("q4_1 t4", "q2_k t4").measure == "KLD"
    assert order.verdict("q4_1 t4", "q2_k t4").accuracy.method == "paired McNemar on the same 100 tasks"
    assert (by["q8_0"].quality_rank, by["q4_1"].quality_rank, by["q2_k"].quality_rank) == (1, 2, 3)
    note = next(n for n in board.notes if "cannot tell" in n)
    assert note.startswith("hellaswag cannot tell these apart at 100 tasks; ranked by KLD")
    assert "q4_1 t4 vs q2_k t4" in note and "tasks would resolve" in note
    # the fast low-quality file keeps its end of the frontier, but does not dominate the better one
    assert by["q2_k"].on_frontier and by["q4_1"].on_frontier and by["q4_1"].dominated_by == []
    rec = scoring.recommend(board, max_memory_bytes=300_000_000)  # q8_0 does not fit
    assert rec.best.config.model_name == "q4_1", rec.why
    assert "KLD" in rec.why
    assert scoring.recommend(board).best.config.model_name == "q8_0"
    data = scoring.to_dict(board, rec)
    assert {s["configuration"]["model_name"]: s["quality_rank"] for s in data["scores"]} == {"q8_0": 1, "q4_1": 2, "q2_k": 3}
    assert "task_correct" not in data["scores"][0]["accuracy"]


def test_perplexity_decides_when_there_is_no_kld(isolated_env):
    board = _ladder(kld=False)
    assert board.quality_order.verdict("q4_1 t4", "q2_k t4").measure == "PPL"
    assert scoring.recommend(board, max_memory_bytes=300_000_000).best.config.model_name == "q4_1"


def test_unresolved_differences_are_ties_decided_by_cost(isolated_env):
    board = _ladder(kld=False, ppl=False)
    assert board.quality_order.cmp("q4_1 t4", "q2_k t4") == 0
    assert any("treated as tied" in n for n in board.notes)
    rec = scoring.recommend(board)
    assert rec.best.config.model_name == "q2_k"  # tied on quality: the least energy wins
    assert "statistically tied on quality with" in rec.why


def test_the_run_scoreboard_measures_every_file_on_the_same_task_count(isolated_env):
    store.record([{"model_sha256": "a" * 64, "metric": "hellaswag", "value_pct": 40.0, "n_tasks": 400}])
    assert not has_hellaswag("a" * 64, 200)  # 400 tasks are another subset than the 200 asked
    assert not has_hellaswag("a" * 64, 800)
    assert has_hellaswag("a" * 64, 400)
