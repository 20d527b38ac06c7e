"""The ONNX Runtime backends on tiny random decoders in both layouts (no download, seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from profiler import api  # noqa: E402
from profiler.backends import backend_name_for, create_backend  # noqa: E402
from profiler.backends.base import ContextParams, LoadParams, SeqBatch  # noqa: E402
from profiler.errors import UserError  # noqa: E402
from profiler.measure import runner  # noqa: E402
from profiler.measure.plan import Sweep, TestConfig  # noqa: E402
from profiler.measure.runner import TokenSource, run_test  # noqa: E402
from profiler.measure.session import EnergyOptions  # noqa: E402
from profiler.run.options import RunOptions  # noqa: E402
from support.tinyonnx import TinyConfig, reference_logits, write_genai, write_plain  # noqa: E402

CFG = TinyConfig()
TOKENS = [5, 70, 100, 33, 200, 7, 9, 11, 12, 13, 260, 41, 42, 43]
# (backend, layout): plain ORT runs both layouts; genai runs its own folders
COMBOS = [("onnxruntime", "plain"), ("onnxruntime", "genai"), ("onnxruntime-genai", "genai")]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx-backend")
    return {"plain": write_plain(root / "plain"), "genai": write_genai(root / "genai"),
            "bare": write_plain(root / "bare", tokenizer=False)}


def _open(name, path, n_ctx=64, n_batch=4):
    if name == "onnxruntime-genai":
        pytest.importorskip("onnxruntime_genai")
    backend = create_backend(name)
    facts = backend.load(str(path), LoadParams())
    backend.configure(ContextParams(n_ctx=n_ctx, n_batch=n_batch))
    backend.set_threads(1)
    backend.facts = facts
    return backend


@pytest.fixture(params=COMBOS, ids=[f"{b}-{layout}" for b, layout in COMBOS])
def backend(request, folders):
    name, layout = request.param
    b = _open(name, folders[layout])
    yield b
    b.close()


def _close(a, b):
    # float32 graphs vs a float64 reference: logits of magnitude ~10 agree to ~1e-3
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-2)


def test_all_position_logits_equal_the_reference_model(backend):
    _close(backend.logits_all(TOKENS), reference_logits(CFG, TOKENS))
    assert backend.logits_all(TOKENS, first_output=10).shape == (len(TOKENS) - 10, backend.facts.n_vocab)


def test_chunked_prefill_then_decode_steps_walk_the_kv_cache(backend):
    ref = reference_logits(CFG, TOKENS)
    backend.reset()
    backend.prefill(TOKENS[:6])  # n_batch=4: two chunks
    assert backend.n_past() == 6
    _close(backend.logits(), ref[5])
    for i in range(6, len(TOKENS)):
        backend.decode_one(TOKENS[i])
        _close(backend.logits(), ref[i])
    assert backend.n_past() == len(TOKENS)
    backend.reset()  # an emptied cache gives the first-token logits again
    backend.decode_one(TOKENS[0])
    _close(backend.logits(), ref[0])


def test_batch_of_sequences_equals_each_sequence_alone(backend):
    batch = SeqBatch()
    for seq, tokens in enumerate((TOKENS[:5], TOKENS[3:9])):
        for pos, token in enumerate(tokens):
            batch.add(token, pos, (seq,), pos >= 2)
    out = backend.logits_batch(batch)
    assert out.shape == (3 + 4, backend.facts.n_vocab)
    _close(out[:3], reference_logits(CFG, TOKENS[:5])[2:])
    _close(out[3:], reference_logits(CFG, TOKENS[3:9])[2:])


def test_tokenizer_and_facts(backend):
    assert backend.facts.n_vocab == 263 and backend.facts.add_bos is False
    assert backend.facts.n_params > 0 and "fp32" in backend.facts.description
    ids = backend.tokenize("the the", add_special=False)
    assert ids == [262, 260]  # "the", "Ġthe": the merges apply
    assert backend.tokenize("the", add_special=True) == [262]


def test_context_and_cache_type_limits(backend):
    backend.reset()
    with pytest.raises(UserError, match="exceeds the context size 64"):
        backend.prefill(list(range(65)))
    with pytest.raises(UserError, match="fixed by its graph"):
        backend.configure(ContextParams(n_ctx=64, type_k="q8_0"))


def test_session_options_are_recorded_and_threads_reload_the_session(backend):
    options = backend.session_options
    assert options["execution_provider"] == "CPUExecutionProvider"
    assert options["intra_op_num_threads"] == 1 and options["graph_optimization_level"] == "all"
    backend.set_threads(2)
    assert backend.session_options["intra_op_num_threads"] == 2
    _close(backend.logits_all(TOKENS[:4]), reference_logits(CFG, TOKENS[:4]))
    assert "onnxruntime" in backend.build_info["build_commit"]


def test_layouts_agree_with_each_other(folders):
    plain, genai = _open("onnxruntime", folders["plain"]), _open("onnxruntime", folders["genai"])
    try:
        np.testing.assert_allclose(plain.logits_all(TOKENS), genai.logits_all(TOKENS), rtol=1e-4, atol=1e-3)
    finally:
        plain.close()
        genai.close()


def test_the_shared_runner_measures_onnx_backends(folders):
    b = _open("onnxruntime", folders["genai"], n_ctx=64, n_batch=64)
    try:
        tokens = TokenSource(b, b.facts, random_tokens=False)
        test = TestConfig(8, 4, 4, 1, 64, 64, "f16", "f16", "auto")
        timings = run_test(b, test, tokens, repetitions=2)
        assert len(timings.samples_ns) == 2 and all(len(rep) == 4 for rep in timings.token_ns)
        assert b.n_past() == 4 + 8 + 4
        # generation is greedy from the model's own logits
        assert tokens.next_token(b.n_past()) == int(np.argmax(b.logits()))
    finally:
        b.close()


def test_missing_tokenizer_needs_random_tokens(folders):
    b = _open("onnxruntime", folders["bare"])
    try:
        with pytest.raises(UserError, match="no tokenizer.json; use --random-tokens"):
            TokenSource(b, b.facts, random_tokens=False)
        source = TokenSource(b, b.facts, random_tokens=True)
        assert all(0 <= t < b.facts.n_vocab for t in source.sequence(0, 20))
    finally:
        b.close()


def test_backend_selection(folders):
    assert backend_name_for("auto", folders["genai"], "onnx") == "onnxruntime-genai"
    assert backend_name_for("onnx", folders["genai"] / "model.onnx", "onnx") == "onnxruntime"
    assert backend_name_for("auto", folders["plain"], "onnx") == "onnxruntime"
    assert backend_name_for("auto", "m.gguf", "gguf") == "llama.cpp"
    assert backend_name_for("onnxruntime", folders["genai"], "onnx") == "onnxruntime"
    with pytest.raises(UserError, match="cannot run"):
        backend_name_for("llama.cpp", folders["genai"], "onnx")
    with pytest.raises(UserError, match="needs an ONNX model"):
        backend_name_for("onnx", "m.gguf", "gguf")
    with pytest.raises(UserError, match="unknown backend"):
        backend_name_for("tensorrt", "m.gguf", "gguf")


def test_genai_backend_refuses_plain_folders_and_unknown_providers(folders):
    pytest.importorskip("onnxruntime_genai")
    with pytest.raises(UserError, match="not an onnxruntime-genai folder"):
        create_backend("onnxruntime-genai").load(str(folders["plain"]), LoadParams())
    with pytest.raises(UserError, match="--onnx-ep 'tpu' is unknown"):
        create_backend("onnxruntime", onnx_options={"execution_provider": "tpu"})
    with pytest.raises(UserError, match="not in this onnxruntime build"):
        create_backend("onnxruntime", onnx_options={"execution_provider": "coreml"})


def test_profile_gives_the_same_rows_for_onnx_models(folders, tmp_path):
    options = RunOptions(reports_dir=tmp_path, bandwidth_probe=False, energy=EnergyOptions(idle_s=0), isolate=False,
                             onnx_options={"graph_optimization": "basic"})
    sweep = Sweep(n_prompt=[8], n_gen=[4], n_threads=[1], repetitions=2)
    run = api.profile([str(folders["genai"]), str(folders["plain"])], sweep, options)
    assert not run.failures
    rows = {(r.model_name, r.test): r for r in run.rows}
    assert set(rows) == {("genai", "pp8"), ("genai", "tg4"), ("plain", "pp8"), ("plain", "tg4")}
    genai, plain = rows[("genai", "tg4")], rows[("plain", "tg4")]
    assert genai.backend == "onnxruntime-genai" and plain.backend == "onnxruntime"
    for row in (genai, plain):
        assert row.session_options["graph_optimization_level"] == "basic"
        assert row.session_options["intra_op_num_threads"] == 1
        assert row.type_k == row.type_v == "f32"  # what the graph holds, not the -ctk default
        assert row.decode_ts > 0 and len(row.itl_ms_samples) == 8 and row.itl_ms_p50 > 0
        assert row.kv_cache_bytes == row.n_ctx * CFG.n_layer * CFG.n_head_kv * 2 * CFG.head_dim * 4
        assert row.weight_bytes_per_token > 0 and row.bytes_per_token > row.weight_bytes_per_token
        assert row.build_commit.startswith("onnxruntime")
    assert rows[("genai", "pp8")].ttft_ms > 0 and rows[("genai", "pp8")].prefill_ts > 0
    # each row says what its timed decode step covers
    assert genai.session_options["decode_step"].startswith("Generator.append_tokens of one token")
    assert "run_with_iobinding" in plain.session_options["decode_step"]
    saved = json.loads((tmp_path / run.run_id / "results.json").read_text())
    assert saved["rows"][0]["session_options"]["execution_provider"] == "CPUExecutionProvider"


def test_catalogue_entries_may_be_onnx_folders(folders, tmp_path):
    from profiler.models.catalog import sha256_file

    catalog = tmp_path / "models.toml"
    catalog.write_text(
        "[[models]]\nname = 'tiny-genai'\nformat = 'onnx'\n"
        f"source = '{folders['genai']}'\nsha256 = '{sha256_file(folders['genai'])}'\nquant = 'fp32'\n"
        "[[models]]\nname = 'tiny-plain-file'\nformat = 'onnx'\n"
        f"source = '{folders['plain'] / 'onnx' / 'model.onnx'}'\n"
    )
    options = RunOptions(reports_dir=tmp_path / "reports", catalog_path=catalog, bandwidth_probe=False,
                             energy=EnergyOptions(idle_s=0), isolate=False)
    run = api.profile(["tiny-genai", "tiny-plain-file"], Sweep(n_prompt=[4], n_gen=[0], n_threads=[1], repetitions=1), options)
    assert [(r.model_name, r.backend) for r in run.rows] == [("tiny-genai", "onnxruntime-genai"), ("tiny-plain-file", "onnxruntime")]
    assert run.rows[0].quant_type == "fp32"


def test_genai_greedy_and_forced_tokens_mix(folders):
    b = _open("onnxruntime-genai", folders["genai"])
    try:
        b.reset()
        b.prefill(TOKENS[:4])
        seq = list(TOKENS[:4])
        for step in range(6):
            # greedy tokens, and every third step another token than greedy search would pick
            token = int(np.argmax(b.logits())) if step % 3 else (int(np.argmax(b.logits())) + 1) % b.facts.n_vocab
            b.decode_one(token)
            seq.append(token)
            _close(b.logits(), reference_logits(CFG, seq)[-1])
        assert b.n_past() == len(seq)
        b.reset()  # a fresh generator starts clean
        b.prefill(seq[:2])
        _close(b.logits(), reference_logits(CFG, seq[:2])[-1])
    finally:
        b.close()


# What each onnxruntime-genai call stands for on the fake clock below: running the model on a
# token, copying the logits out to numpy, and genai's own token choice (greedy search in C++).
RUN_NS, READ_NS, CHOOSE_NS = 1_000, 70_000, 300_000


def test_genai_timed_decode_step_is_the_model_run_alone(folders, monkeypatch):
    """As llama-bench's llama_decode + llama_synchronize: the timed step runs the model on the
    token it is given; reading the logits out and choosing the next token are the runner's
    (untimed, in the inter-token latency), whatever they cost."""
    og = pytest.importorskip("onnxruntime_genai")
    clock = {"now": 0}
    monkeypatch.setattr(runner, "now_ns", lambda: clock["now"])
    real_generator = og.Generator

    class Instrumented:
        """The real generator; each call advances the fake clock by what it stands for."""

        def __init__(self, model, params):
            self.inner = real_generator(model, params)

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def append_tokens(self, ids):
            self.inner.append_tokens(ids)
            clock["now"] += RUN_NS * len(ids)

        def generate_next_token(self):
            self.inner.generate_next_token()
            clock["now"] += CHOOSE_NS

        def get_next_tokens(self):
            clock["now"] += CHOOSE_NS
            return self.inner.get_next_tokens()

        def get_logits(self):
            clock["now"] += READ_NS
            return self.inner.get_logits()

    monkeypatch.setattr(og, "Generator", Instrumented)
    b = _open("onnxruntime-genai", folders["genai"], n_ctx=64, n_batch=64)
    try:
        test = TestConfig(6, 5, 0, 1, 64, 64, "f16", "f16", "auto")
        timings = run_test(b, test, TokenSource(b, b.facts, random_tokens=False), repetitions=2)
        assert timings.all_token_ns == [RUN_NS] * 10
        assert timings.samples_ns == [6 * RUN_NS + 5 * RUN_NS] * 2
        assert timings.all_itl_ns == [RUN_NS + READ_NS] * 10  # the next token is chosen from copied-out logits
        assert "append_tokens" in b.session_options["decode_step"]
    finally:
        b.close()
