"""llama-bench's tg loop in the fewest Python lines: the ``minimal`` side of llama_bench_ratio.py.

No profiler code at all: llama-cpp-python's low-level binding, the context llama-bench makes
(n_ctx = n_gen, the given batch sizes, f16 cache, swa_full off), a one-token warm-up, then per
repetition a cleared cache and ``n_gen`` single-token decodes of random ids, timed as llama-bench
times them (the whole loop). It tells what calling llama.cpp from Python per token costs by
itself, apart from anything the profiler adds.

    python benchmarks/minimal_decode.py MODEL N_GEN THREADS REPS N_BATCH N_UBATCH FLASH_ATTN
prints ``{"samples_ts": [...]}``.
"""

from __future__ import annotations

import json
import random
import sys
import time

import llama_cpp as lc

FLASH_ATTN = {"auto": -1, "0": 0, "off": 0, "1": 1, "on": 1}


def main(argv: list[str]) -> int:
    model_path, n_gen, threads, reps, n_batch, n_ubatch, flash_attn = argv
    n_gen, threads, reps = int(n_gen), int(threads), int(reps)
    quiet = lc.llama_log_callback(lambda *_: None)  # kept referenced: llama.cpp calls it later
    lc.llama_log_set(quiet, None)
    lc.llama_backend_init()
    mparams = lc.llama_model_default_params()
    mparams.n_gpu_layers = 0
    model = lc.llama_model_load_from_file(model_path.encode(), mparams)
    vocab = lc.llama_model_get_vocab(model)
    n_vocab = lc.llama_vocab_n_tokens(vocab)
    cparams = lc.llama_context_default_params()
    cparams.n_ctx, cparams.n_batch, cparams.n_ubatch = n_gen, int(n_batch), int(n_ubatch)
    cparams.flash_attn_type = FLASH_ATTN[flash_attn]
    cparams.swa_full = False
    cparams.no_perf = True
    ctx = lc.llama_init_from_model(model, cparams)
    lc.llama_set_n_threads(ctx, threads, threads)
    token = (lc.llama_token * 1)()
    bos = lc.llama_vocab_bos(vocab) if lc.llama_vocab_get_add_bos(vocab) else None

    def generate(count: int) -> None:
        token[0] = bos if bos is not None else random.randrange(n_vocab)
        for _ in range(count):
            lc.llama_decode(ctx, lc.llama_batch_get_one(token, 1))
            lc.llama_synchronize(ctx)
            token[0] = random.randrange(n_vocab)

    memory = lc.llama_get_memory(ctx)
    lc.llama_memory_clear(memory, False)
    generate(1)  # llama-bench's warm-up
    samples = []
    for _ in range(reps):
        lc.llama_memory_clear(memory, False)
        start = time.perf_counter_ns()
        generate(n_gen)
        samples.append(n_gen * 1e9 / (time.perf_counter_ns() - start))
    lc.llama_free(ctx)
    lc.llama_model_free(model)
    print(json.dumps({"samples_ts": samples}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
