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
           "decode_ts": decode, "prefill_ts": prefill, "peak_rss_bytes": peak,
           "test": f"tg{n_gen}" if n_gen else f"pp{n_prompt}",
           "samples_ts": [v * f for v in (decode or prefill or 1.0,) for f in (0.99, 1.0, 1.01)]}
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
    return scoring.scoreboard(scores, price)


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
        assert len(scores) == 2 and all(s.inherited is not exact for s in scores), args
    path.write_text(json.dumps({**LM_EVAL, "config": {"model_args": "pretrained=a/smol-q4.gguf"}}))
    scores = acc.from_lm_eval(path, ("q4.gguf",))
    assert len(scores) == 2 and all(s.inherited for s in scores)  # a substring is not a name


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
    rec = scoring.recommend(board)
    assert rec.best.config.model_name == "q2_k"  # not separated on quality: the least energy wins
    assert "statistically tied" not in rec.why and "treated as tied" not in " ".join(board.notes)
    assert board.quality_order.verdict("q2_k t4", "q4_1 t4").case == "not resolved"
    assert rec.why.startswith("none shown better on hellaswag among 3")
    # the difference, its 95% interval from the paired counts, and the tasks that would resolve it
    assert ("hellaswag difference not resolved against q4_1 t4 (difference +4.0 points, 95% CI [-5.8, +13.7] "
            "(p=0.54, paired McNemar on the same 100 tasks); about 1175 tasks would resolve a difference this size)") in rec.why
    note = next(n for n in board.notes if "does not resolve" in n)
    assert note.startswith("hellaswag does not resolve these at 100 tasks") and "95% CI [-13.7, +5.8]" in note


def test_the_run_scoreboard_measures_every_file_on_the_same_task_count(isolated_env):
    store.record([{"model_sha256": "a" * 64, "metric": "hellaswag", "value_pct": 40.0, "n_tasks": 400}])
    assert not has_hellaswag("a" * 64, 200)  # 400 tasks are another subset than the 200 asked
    assert not has_hellaswag("a" * 64, 800)
    assert has_hellaswag("a" * 64, 400)


# --------------------------------------------------------------------------- issue #19.8: like with like


def _shape_row(name, n_gen, decode, j=None, depth=0, n_prompt=0, attribution="process-share", **extra):
    return _row(name, n_gen=n_gen, n_prompt=n_prompt, decode=decode, j=j, n_depth=depth,
                **({"energy_attribution": attribution} if j is not None else {}), **extra)


def test_decode_figures_come_from_one_reference_test_not_an_average_over_depths():
    """A depth test decodes slower: averaging it in would make the score depend on the sweep's shape."""
    flat = [_shape_row("a", 128, 50.0, j=0.02)]
    deep = flat + [_shape_row("a", 128, 30.0, j=0.04, depth=4096), _shape_row("a", 128, 40.0, j=0.03, n_prompt=512)]
    for rows in (flat, deep):
        c = scoring.configurations(rows)[0]
        assert (c.decode_tps, c.j_per_decode_token, c.reference_test) == (50.0, 0.02, "tg128")
    c = scoring.configurations(deep)[0]
    assert {t.test: t.decode_tps for t in c.decode_tests} == {"tg128": 50.0, "pp512+tg128": 40.0,
                                                              "tg128 @ d4096": 30.0}


def test_the_reference_is_the_shape_most_configurations_ran_and_the_others_say_why_not():
    rows = [_shape_row("a", 128, 50.0, j=0.02), _shape_row("a", 64, 55.0, j=0.021), _shape_row("b", 64, 45.0, j=0.02),
            _shape_row("c", 64, 60.0, j=0.01), _shape_row("d", 128, 40.0, j=0.03)]
    by_key = {c.key: c for c in scoring.configurations(rows)}
    assert {c.reference_test for c in by_key.values()} == {"tg64"}  # 3 configurations ran tg64, 2 tg128
    assert by_key["a t4"].decode_tps == 55.0 and by_key["c t4"].j_per_decode_token == 0.01
    d = by_key["d t4"]
    assert d.decode_tps is None and d.j_per_decode_token is None
    assert d.decode_note == "decode t/s and J/token unavailable, because this configuration has no tg64 test (it ran tg128)"
    assert d.energy_note.startswith("energy unavailable, because")


def test_a_tie_goes_to_tg_at_depth_zero_then_the_longer_n_gen():
    rows = [_shape_row("a", 128, 50.0), _shape_row("a", 128, 30.0, depth=512), _shape_row("a", 256, 45.0)]
    assert scoring.configurations(rows)[0].reference_test == "tg256"
    sustained = [_shape_row("a", 128, 50.0), _shape_row("a", 256, 20.0, sustained_s=120.0)]
    assert scoring.configurations(sustained)[0].reference_test == "tg128"


def test_the_scoreboard_states_its_reference_across_runs(tmp_path):
    run_a = scoring.configurations([_shape_row("a", 128, 50.0, j=0.02), _shape_row("a", 64, 52.0, j=0.02)], "r1")
    run_b = scoring.configurations([_shape_row("b", 64, 40.0, j=0.03)], "r2")
    board = scoring_io.board(run_a + run_b, "hellaswag")
    assert board.reference_test == "tg64"  # run a alone would have picked tg128 (the longer one)
    assert [s.config.decode_tps for s in board.scores] == [52.0, 40.0]
    assert board.reference_note.startswith("reference test tg64: ") and "(2 of 2)" in board.reference_note
    data = scoring.to_dict(board)
    assert data["reference_test"] == "tg64" and data["scores"][0]["configuration"]["reference_test"] == "tg64"
    assert run_a[0].decode_tps == 50.0  # build() changes no argument


def test_energy_is_not_averaged_across_attributions():
    rows = [_shape_row("a", 128, 50.0, j=0.02, attribution="process-share"),
            _shape_row("a", 128, 50.0, j=0.20, attribution="system-wide")]
    c = scoring.configurations(rows)[0]
    assert c.j_per_decode_token is None and "mix attributions (process-share, system-wide)" in c.energy_note
    one = scoring.configurations(rows[:1])[0]
    assert one.energy_attribution == "process-share" and one.energy_note.endswith(", process-share")


def test_the_scoreboard_says_when_attributions_differ_between_configurations():
    rows = [_shape_row("a", 128, 50.0, j=0.02, attribution="process-share"),
            _shape_row("b", 128, 50.0, j=0.20, attribution="system-wide")]
    board = scoring_io.board(scoring.configurations(rows), "hellaswag")
    assert "J/token attribution differs (process-share for a t4; system-wide for b t4)" in board.reference_note
    same = scoring_io.board(scoring.configurations(rows[:1]), "hellaswag")
    assert same.reference_note.endswith("; J/token attribution: process-share")


# --------------------------------------------------------------------------- not measured, not resolved, equivalent (#19.6)


def _measured(value_pct, bits=None, n_tasks=200):
    return acc.AccuracyScore(metric="hellaswag", value_pct=value_pct, provenance="measured", n_shot=0, source="profiler eval",
                             n_tasks=n_tasks, subset=f"{n_tasks} of 10042", task_correct=bits)


def test_inherited_numbers_are_not_measured_and_never_rank():
    q4 = _config("q4", decode=40.0, peak=300_000_000, j=0.02)
    q2 = _config("q2", decode=50.0, peak=200_000_000, j=0.01)
    same = _published("hellaswag", 42.99, on="HF instruct (unquantized)")
    board = _board([(q4, same), (q2, same)])
    v = board.quality_order.verdict("q4 t4", "q2 t4")
    assert v.case == "not measured" and v.accuracy.p_value is None and not v.accuracy.measured
    rec = scoring.recommend(board)
    assert rec.best.config.model_name == "q2"
    assert rec.why.startswith("on cost alone (lower J/token, then higher t/s, then lower memory) among 2 configuration(s)")
    assert "statistically tied" not in rec.why and "highest" not in rec.why
    assert any(n.startswith("hellaswag is not measured on both files") and "inherited from HF instruct" in n
               for n in board.notes)
    # different inherited numbers are no measured evidence either: they never rank the files
    lower = _published("hellaswag", 30.0, on="another base")
    board = _board([(q4, same), (q2, lower)])
    assert board.quality_order.cmp("q4 t4", "q2 t4") == 0 and scoring.recommend(board).why.startswith("on cost alone")


def test_an_equivalence_shown_by_tost_is_said_so():
    n = 4000  # two files that disagree on 1% of the tasks, equally often each way: within +-1 point
    bits_a = "1" * 1980 + "10" * 20 + "0" * 1980
    bits_b = "1" * 1980 + "01" * 20 + "0" * 1980
    a, b = _config("a", decode=40.0, peak=300_000_000, j=0.02), _config("b", decode=50.0, peak=200_000_000, j=0.01)
    board = _board([(a, _measured(50.0, bits_a, n)), (b, _measured(50.0, bits_b, n))])
    v = board.quality_order.verdict("a t4", "b t4")
    assert v.case == "equivalent" and v.accuracy.p_value == 1.0
    lo, hi = v.accuracy.ci90_pct
    assert -1 < lo < 0 < hi < 1
    rec = scoring.recommend(board)
    assert rec.best.config.model_name == "b", rec.why
    assert "equivalent on hellaswag to a t4 (difference +0.0 points" in rec.why, rec.why
    assert "inside +-1 point" in rec.why
    # the same 50% vs 50% on 200 tasks and 20% disagreement is not resolved, and says what would resolve it
    short_a, short_b = "1" * 80 + "10" * 20 + "0" * 80, "1" * 80 + "01" * 20 + "0" * 80
    board = _board([(a, _measured(50.0, short_a)), (b, _measured(50.0, short_b))])
    v = board.quality_order.verdict("a t4", "b t4")
    assert v.case == "not resolved" and v.accuracy.n_needed is None
    assert "no difference observed; about 17128 tasks would show one within +-1 point, more than the benchmark has" \
        in scoring.recommend(board).why


# --------------------------------------------------------------------------- Pareto noise allowances (#19.4)


def _sampled(name, samples, peak=300_000_000, j=0.02):
    rows = [_row(name, n_gen=128, decode=sum(samples) / len(samples), peak=peak, j=j, samples_ts=samples, test="tg128")]
    return scoring.configurations(rows)[0]


def test_a_difference_inside_the_noise_dominates_nothing():
    acc_same = _published("hellaswag", 40.0)
    # 0.1% faster, 1% less energy, 1% less memory: all inside the noise, so both stay on the frontier
    slow = _sampled("slow", [49.0, 50.0, 51.0, 50.5, 49.5], peak=300_000_000, j=0.0200)
    fast = _sampled("fast", [49.05, 50.05, 51.05, 50.55, 49.55], peak=297_000_000, j=0.0198)
    board = _board([(slow, acc_same), (fast, acc_same)])
    assert [s.on_frontier for s in board.scores] == [True, True]
    # a significant speed difference (Welch on the repetitions) with the rest equal does dominate
    faster = _sampled("faster", [54.0, 55.0, 56.0, 55.5, 54.5], peak=300_000_000, j=0.0200)
    board = _board([(slow, acc_same), (faster, acc_same)])
    assert [(s.on_frontier, s.dominated_by) for s in board.scores] == [(False, ["faster t4"]), (True, [])]
    # ... unless the other is significantly better elsewhere (6% less energy)
    frugal = _sampled("frugal", [49.0, 50.0, 51.0, 50.5, 49.5], peak=300_000_000, j=0.0188)
    board = _board([(frugal, acc_same), (faster, acc_same)])
    assert [s.on_frontier for s in board.scores] == [True, True]


def test_speed_noise_comes_from_the_samples_when_there_are_some():
    a = _sampled("a", [40.0, 60.0, 45.0, 55.0])  # noisy: a 4% faster mean is not significant
    b = _sampled("b", [42.0, 62.0, 47.0, 57.0])
    assert a.decode_samples_tps == {"tg128": [40.0, 60.0, 45.0, 55.0]}  # the reference test's repetitions
    sa, sb = (scoring.score(c, "hellaswag", _published("hellaswag", 40.0), 0.3) for c in (a, b))
    order = scoring.quality_order([sa, sb], "hellaswag", [[], []])
    assert scoring.axis_cmp(sb, sa, "decode_tps", +1, order) == 0
    a.decode_samples_tps, b.decode_samples_tps = {}, {}  # no samples: the stated 5% tolerance decides
    assert scoring.axis_cmp(sb, sa, "decode_tps", +1, order) == 0
    b.decode_tps = a.decode_tps * 1.06
    assert scoring.axis_cmp(sb, sa, "decode_tps", +1, order) == 1 and scoring.axis_cmp(sa, sb, "decode_tps", +1, order) == -1


def test_pareto_changes_nothing_it_is_given():
    big = _config("big", decode=20.0, peak=900_000_000, j=0.05)
    worse = _config("worse", decode=10.0, peak=950_000_000, j=0.06)
    scores = [scoring.score(c, "hellaswag", _published("hellaswag", 40.0), 0.3) for c in (big, worse)]
    frontier = scoring.pareto(scores)
    assert [(s.on_frontier, s.dominated_by, s.quality_rank) for s in scores] == [(None, [], None)] * 2
    assert frontier.marks["worse t4"].dominated_by == ["big t4"]
    board = scoring.scoreboard(scores, 0.3)
    assert [s.on_frontier for s in board.scores] == [True, False] and scores[1].on_frontier is None


def test_the_json_says_each_pairs_case_and_the_pareto_allowances(isolated_env):
    data = scoring.to_dict(_ladder(kld=False, ppl=False))
    pair = next(p for p in data["quality_pairs"] if {p["a"], p["b"]} == {"q4_1 t4", "q2_k t4"})
    assert pair["case"] == "not resolved" and pair["better"] is None and pair["tasks_to_resolve"] == 1175
    lo, hi = pair["ci95_pct"]
    assert lo < pair["difference_pct"] < hi and lo < 0 < hi
    assert set(data["pareto_noise"]) == {"accuracy", "decode t/s", "J/token", "peak memory"}


# --------------------------------------------------------------------------- J/token's own interval (#19.4)

S = 1_000_000_000


def _phase(window_j: list[float], tokens: int = 128):
    """The decode phase the product computes from a counter that gains ``window_j`` over one-second
    windows (0.5 J in each half-second gap between them)."""
    from profiler.measure.energy import phase_energy
    from profiler.platform.energy import Reading

    readings, windows, total = [Reading(0, 0.0, None, None)], [], 0.0
    for i, j in enumerate(window_j):
        start = (3 * i + 1) * S // 2
        total += 0.5
        readings.append(Reading(start, total, None, None))
        total += j
        readings.append(Reading(start + S, total, None, None))
        windows.append(("decode", start, start + S))
    return phase_energy(readings, True, windows, tokens, None, None, resolution_s=0.01)


def _energy_row(name, window_j, decode=50.0, attribution="process-share", measured=True, **extra):
    phase = _phase(window_j)
    return _row(name, n_gen=128, decode=decode, peak=300_000_000, j=phase.j_per_token, measured=measured,
                energy_attribution=attribution, energy_detail={"phases": {"decode": phase.to_dict()}},
                samples_ts=[decode] * 3, **extra)


def test_the_reference_test_carries_its_rows_j_per_token_interval():
    one = _energy_row("a", [2.56, 2.60, 2.58, 2.62])
    phase = _phase([2.56, 2.60, 2.58, 2.62])
    c = scoring.configurations([one])[0]
    assert c.decode_tests[0].j_per_decode_token_ci95_j == pytest.approx(phase.j_per_token_ci95_j)
    assert c.j_per_decode_token_ci95_j == pytest.approx(phase.j_per_token_ci95_j) and c.energy_interval_note == ""
    # two runs of the same shape: the mean's half-width, sqrt(h1^2 + h2^2) / 2
    other = _phase([2.50, 2.70, 2.40, 2.65])
    c = scoring.configurations([one, _energy_row("a", [2.50, 2.70, 2.40, 2.65])])[0]
    assert c.j_per_decode_token == pytest.approx((phase.j_per_token + other.j_per_token) / 2)
    assert c.j_per_decode_token_ci95_j == pytest.approx(math.hypot(phase.j_per_token_ci95_j, other.j_per_token_ci95_j) / 2)
    # an estimate, or a row from before intervals, has none, and says why
    est = scoring.configurations([_energy_row("a", [2.56, 2.60, 2.58], measured=False)])[0]
    assert est.j_per_decode_token_ci95_j is None and est.energy_interval_note.endswith("estimated, not measured")
    old = scoring.configurations([_row("a", n_gen=128, decode=50.0, j=0.02)])[0]
    assert old.j_per_decode_token_ci95_j is None and "no interval stored" in old.energy_interval_note


def _scored(*configs):
    scores = [scoring.score(c, "hellaswag", _published("hellaswag", 40.0), 0.3) for c in configs]
    return scores, scoring.quality_order(scores, "hellaswag", [[] for _ in configs])


def test_energy_is_better_only_when_the_interval_of_the_difference_excludes_zero():
    tight = [2.56, 2.561, 2.559, 2.56]  # 0.02 J/token, +-0.1%
    a = scoring.configurations([_energy_row("a", tight)])[0]
    b = scoring.configurations([_energy_row("b", [x * 1.03 for x in tight])])[0]  # 3% more: inside the old 5%
    (sa, sb), order = _scored(a, b)
    assert scoring.axis_cmp(sa, sb, "j_per_decode_token", -1, order) == 1
    assert scoring.axis_cmp(sb, sa, "j_per_decode_token", -1, order) == -1
    board = scoring.scoreboard([sa, sb], 0.3, order)
    assert [(s.on_frontier, s.dominated_by) for s in board.scores] == [(True, []), (False, ["a t4"])]
    # 8% apart (outside the old 5%) but noisy repetitions: the difference's interval holds 0
    noisy = scoring.configurations([_energy_row("n", [2.2, 3.4, 2.4, 3.1])])[0]
    c = scoring.configurations([_energy_row("c", [x * 1.08 for x in [2.2, 3.4, 2.4, 3.1]])])[0]
    (sn, sc), order = _scored(noisy, c)
    assert scoring.axis_cmp(sn, sc, "j_per_decode_token", -1, order) == 0
    # without an interval on one side the stated 5% decides, as before
    b.j_per_decode_token_ci95_j = None
    (sa, sb), order = _scored(a, b)
    assert scoring.axis_cmp(sa, sb, "j_per_decode_token", -1, order) == 0


def test_energy_of_different_attributions_decides_no_dominance_and_the_frontier_says_so():
    share = scoring.configurations([_energy_row("a", [2.56, 2.56, 2.57, 2.55])])[0]
    whole = scoring.configurations([_energy_row("b", [12.8, 12.9, 12.7, 12.8], attribution="system-wide")])[0]
    third = scoring.configurations([_energy_row("c", [12.8, 12.9, 12.7, 12.8], attribution="system-wide")])[0]
    (sa, sb, sc), order = _scored(share, whole, third)
    assert scoring.axis_cmp(sa, sb, "j_per_decode_token", -1, order) == 0
    board = scoring.scoreboard([sa, sb, sc], 0.3, order)
    assert [s.on_frontier for s in board.scores] == [True, True, True]
    notes = [n for n in board.notes if "not compared in the Pareto frontier" in n]
    assert notes == ["J/token not compared in the Pareto frontier between a t4 (process-share) and b t4 (system-wide); "
                     "a t4 (process-share) and c t4 (system-wide): their attributions differ (a process's share against "
                     "the whole machine's), so energy decides no dominance between them"]


def test_the_json_states_the_energy_allowance_from_its_interval():
    text = scoring.PARETO_NOISE["J/token"]
    assert text.startswith("the 95% interval of the difference excludes 0") and "never across attributions" in text
    assert "no interval is stored" not in text


def test_a_budget_exclusion_marks_an_estimated_j_per_token():
    est = _config("est", decode=50.0, peak=300_000_000, j=0.121, measured=False)
    meas = _config("meas", decode=50.0, peak=300_000_000, j=0.131)
    board = _board([(est, _published("hellaswag", 40.0)), (meas, _published("hellaswag", 40.0))])
    reasons = dict(scoring.recommend(board, max_j_per_token=0.1).excluded)
    assert reasons == {"est t4": "0.121 J/token (est.) > 0.1", "meas t4": "0.131 J/token > 0.1"}


def test_placement_is_a_configuration_and_the_recommendation_names_threads_and_cores():
    """Each placement of a model is its own configuration; the recommendation says what to run:
    the quant, the threads and the cores they ran on (issue #20.1)."""
    big = dict(cpu_mask="0xf0", cpu_affinity=[4, 5, 6, 7], cpu_cores="4× Cortex-A76")
    wide = dict(cpu_mask="0xff", cpu_affinity=list(range(8)), cpu_cores="4× Cortex-A76 + 4× Cortex-A55")
    rows = [_row("q", n_gen=128, decode=25.0, peak=10**8, j=0.01, quant_type="Q4_K_M", **big),
            _row("q", n_gen=128, decode=19.0, peak=10**8, j=0.02, threads=8, quant_type="Q4_K_M", **wide),
            _row("q", n_gen=128, decode=18.0, peak=10**8, j=0.02, threads=4, quant_type="Q4_K_M")]
    configs = {c.key: c for c in scoring.configurations(rows)}
    assert set(configs) == {"q t4 on CPUs 4-7 (4× Cortex-A76)", "q t8 on CPUs 0-7 (4× Cortex-A76 + 4× Cortex-A55)",
                            "q t4"}
    board = _board([(c, _published("hellaswag", 40.0)) for c in configs.values()])
    rec = scoring.recommend(board)
    assert rec.best.config.key == "q t4 on CPUs 4-7 (4× Cortex-A76)"  # same accuracy: least energy
    assert scoring.setting_text(rec.best.config) == "Q4_K_M, 4 threads on CPUs 4-7 (4× Cortex-A76)"
    assert scoring.to_dict(board, rec)["recommendation"]["setting"] == "Q4_K_M, 4 threads on CPUs 4-7 (4× Cortex-A76)"
    assert scoring.setting_text(configs["q t4"]) == "Q4_K_M, 4 threads"


def test_the_printed_recommendation_names_quant_threads_and_cores():
    from rich.console import Console

    from profiler.report.quality_text import print_recommendation

    rows = [_row("q", n_gen=128, decode=25.0, peak=10**8, j=0.01, quant_type="Q4_K_M", cpu_mask="0xf0",
                 cpu_affinity=[4, 5, 6, 7], cpu_cores="4× Cortex-A76")]
    board = _board([(c, _published("hellaswag", 40.0)) for c in scoring.configurations(rows)])
    console = Console(record=True, width=300)
    print_recommendation(scoring.recommend(board), console)
    assert ("recommended: q t4 on CPUs 4-7 (4× Cortex-A76) (Q4_K_M, 4 threads on CPUs 4-7 (4× Cortex-A76))"
            in console.export_text())


def test_without_quality_data_the_board_says_so_once_and_the_choice_is_on_cost(capsys):
    """No configuration has a score (issue #21.2): not "best none - no configuration meets the budget
    (no limits)" and "excluded: no hellaswag score" for each, but one note saying no quality data
    exists and how to get it, and the choice on cost alone, under a budget or without one."""
    from rich.console import Console

    from profiler.report.quality_text import print_recommendation

    big = _config("big", decode=8.0, peak=1_500_000_000, j=0.05)
    small = _config("small", decode=40.0, peak=300_000_000, j=0.01)
    mid = _config("mid", decode=15.0, peak=800_000_000, j=0.02)
    board = _board([(big, None), (small, None), (mid, None)])
    said = [n for n in board.notes if "no quality data" in n]
    assert said == ["no quality data: no hellaswag score exists for these models (big, small, mid), neither measured "
                    "on these files nor published; measure it with: profiler eval MODEL --hellaswag; until then the "
                    "scoreboard compares cost only"]
    assert not any("so it is not compared" in n for n in board.notes)
    rec = scoring.recommend(board)
    assert rec.best.config.model_name == "small" and rec.excluded == []
    assert rec.why.startswith("on cost alone (lower J/token, then higher t/s, then lower memory) among 3 "
                              "configuration(s) (no budget set): no quality data")
    assert [s.config.model_name for s in rec.runners_up] == ["mid", "big"]
    within = scoring.recommend(board, max_memory_bytes=scoring.parse_bytes("500MB"))
    assert within.best.config.model_name == "small"
    assert [key for key, _ in within.excluded] == ["big t4", "mid t4"]  # by the budget only
    print_recommendation(rec, Console(width=400))  # runners-up without a score print, not crash
    assert "2. mid t4: no hellaswag score" in capsys.readouterr().out
    one = _board([(small, None)])
    assert "for this model (small)" in scoring.recommend(one).why and "profiler eval small --hellaswag" in one.notes[-1]
