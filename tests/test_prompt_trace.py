"""The shared, lazily computed trace: the same numbers as a full trace, one forward per prompt, bounded memory."""

import threading

import numpy as np
import pytest
import torch

from explorer import Edits, capture_names, trace
from explorer.analysis.attention import SUMMARIES, head_summaries
from explorer.analysis.logit_lens import lens_at, lens_logits
from explorer.analysis.swiglu import THRESHOLDS, gate_sparsity
from explorer.compute import ComputeQueue
from explorer.prompt_trace import PromptTrace, TooLarge, TraceCache, group_bytes
from explorer.server_config import ServerConfig
from explorer.serving import SUMMARIES as SERVER_SUMMARIES
from model import load_model

from .conftest import random_ids

VARIANTS = ["llama-gqa-llama3", "mistral-window", "qwen3-qknorm", "qwen2-bias"]


@pytest.fixture
def tiny(tiny_checkpoint):
    def get(variant):
        return load_model(tiny_checkpoint(variant)[0], device="cpu")

    return get


def ids_of(model, tokens=24, seed=0) -> list[int]:
    return random_ids(model.config.vocab_size, batch=1, tokens=tokens, seed=seed)[0].tolist()


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_name_equals_a_full_trace_to_the_bit(tiny, variant):
    """Base names come from the base forward; every other layer name from re-running that one block."""
    model = tiny(variant)
    ids = ids_of(model)
    full = trace(model, torch.tensor([ids]))
    lazy = PromptTrace(model, ids, summaries=SERVER_SUMMARIES)
    for name in capture_names(model.config):
        if name == "logits":
            torch.testing.assert_close(lazy[name], full[name], atol=1e-6, rtol=1e-6)  # LM head on rows: last bits
        else:
            assert torch.equal(lazy[name], full[name]), name
    torch.testing.assert_close(lazy.last_logits, full["logits"][0, -1], atol=1e-6, rtol=1e-6)


def test_an_edited_trace_re_runs_its_layers_with_the_edits(tiny):
    model = tiny("qwen3-qknorm")
    ids = ids_of(model)
    edits = Edits(ablate_heads={0: (1,)}, qk_norm_off=frozenset({1}), rope_theta=100.0)
    full = trace(model, torch.tensor([ids]), edits=edits)
    lazy = PromptTrace(model, ids, edits=edits)
    for name in ("layers.0.self_attn.z", "layers.1.self_attn.pattern", "layers.1.mlp.out", "layers.1.resid_post"):
        assert torch.equal(lazy[name], full[name]), name
    assert "layers.1.self_attn.q_normed" not in lazy and "layers.0.self_attn.q_normed" in lazy


def test_reading_a_layer_runs_that_layer_once(tiny):
    model = tiny("llama-gqa-llama3")
    lazy = PromptTrace(model, ids_of(model))
    lazy["layers.0.resid_pre"]
    assert lazy.forwards == 1  # the base forward
    lazy["layers.1.mlp.act"], lazy["layers.1.self_attn.q_rot"]
    assert lazy.forwards == 2  # one block for all of layer 1's vectors
    lazy["layers.1.self_attn.pattern"], lazy["layers.1.self_attn.scores"], lazy["layers.0.resid_post"]
    assert lazy.forwards == 3  # its matrices; resid_post of layer 0 is layer 1's resid_pre, from the base


def test_summaries_equal_the_full_patterns_and_activations(tiny):
    model = tiny("mistral-window")
    ids = ids_of(model, tokens=20)
    full = trace(model, torch.tensor([ids]))
    lazy = PromptTrace(model, ids, summaries=SERVER_SUMMARIES)
    summaries = head_summaries(lazy)
    for layer in range(model.config.num_hidden_layers):
        pattern = full[f"layers.{layer}.self_attn.pattern"][0].numpy()
        for name, summary in SUMMARIES.items():
            np.testing.assert_allclose(summaries[name][layer], summary(pattern), rtol=1e-6)
    for threshold in THRESHOLDS:
        expected = [float((full[f"layers.{i}.mlp.act"][0].abs() < threshold).float().mean())
                    for i in range(model.config.num_hidden_layers)]
        np.testing.assert_allclose(gate_sparsity(lazy, threshold), expected, rtol=1e-6)
    assert lazy.forwards == 1  # all of that from the base forward alone


def test_a_long_prompt_reads_attention_a_window_of_queries_at_a_time(tiny):
    """A budget too small for one layer's matrices: the forward takes the fused path, the whole matrices are refused
    with the alternative named, and windows of queries equal the rows of the full matrices."""
    model = tiny("mistral-window")  # the sliding window must hold inside a window of queries too
    ids = ids_of(model, tokens=40)
    full = trace(model, torch.tensor([ids]))
    budget = 4 * group_bytes(model.config, 40, matrices=True) - 1
    lazy = PromptTrace(model, ids, summaries=SERVER_SUMMARIES, budget_bytes=budget)
    assert not lazy.explicit and head_summaries(lazy) is None
    with pytest.raises(TooLarge, match="window"):
        lazy["layers.1.self_attn.pattern"]
    assert 1 <= lazy.max_query_window() < 40
    for start, stop in ((0, 10), (25, 40)):
        window = lazy.attention_window(1, start, stop)
        for part in ("scores", "pattern"):
            expected = full[f"layers.1.self_attn.{part}"][:, :, start:stop, :stop]
            torch.testing.assert_close(window[part], expected, atol=1e-5, rtol=1e-5)
    # The fused path's residual stream agrees with the explicit path's to float32 rounding.
    torch.testing.assert_close(lazy["norm.out"], full["norm.out"], atol=1e-5, rtol=1e-5)


def test_layers_beyond_the_budget_go_least_recently_used_first(tiny):
    model = tiny("llama-gqa-llama3")
    ids = ids_of(model)
    per_layer = group_bytes(model.config, len(ids), matrices=False)
    lazy = PromptTrace(model, ids, budget_bytes=2 * (2 * per_layer + 1))  # room for two layers' vectors
    lazy["layers.0.mlp.act"], lazy["layers.1.mlp.act"], lazy["layers.0.mlp.up"]  # layer 0 used last
    lazy["layers.1.self_attn.q"]
    assert lazy.forwards == 3
    held = lazy.nbytes() - lazy.base().nbytes()
    assert held <= 2 * per_layer + 1


def test_the_cache_drops_the_least_recently_used_trace(tiny):
    model = tiny("llama-gqa-llama3")
    traces = [PromptTrace(model, ids_of(model, seed=s)) for s in range(3)]
    for t in traces:
        t.base()
    cache = TraceCache(budget_bytes=2 * traces[0].nbytes())
    cache.get("a", lambda: traces[0]), cache.get("b", lambda: traces[1]), cache.get("a", lambda: traces[0])
    cache.get("c", lambda: traces[2])
    assert len(cache) == 2 and cache.get("a", lambda: None) is traces[0]  # "b" went: least recently used


def test_a_trace_too_large_for_the_budget_is_refused_with_a_message(tiny):
    model = tiny("llama-gqa-llama3")
    ids = ids_of(model)
    lazy = PromptTrace(model, ids, budget_bytes=group_bytes(model.config, len(ids), matrices=False))
    with pytest.raises(TooLarge, match="shorter prompt"):
        lazy["layers.0.mlp.act"]


def test_the_logit_lens_at_a_window_equals_the_lens_over_the_whole_prompt(tiny):
    model = tiny("qwen2-bias")
    ids = ids_of(model)
    full = trace(model, torch.tensor([ids]))
    lazy = PromptTrace(model, ids)
    lens = lens_at(lazy, [5, 6, 23])
    for layer in range(model.config.num_hidden_layers):
        logits = lens_logits(model, full[f"layers.{layer}.resid_post"][0])  # (T, V)
        expected = logits.softmax(-1).topk(3).indices[[5, 6, 23]].numpy()
        np.testing.assert_array_equal(lens.top_ids[layer], expected)
    np.testing.assert_array_equal(lens.final_ids, full["logits"][0, [5, 6, 23]].argmax(-1).numpy())
    assert (lens.final_rank[-1] == 1).all()
    again = lens_at(lazy, [6, 7])  # position 6 is remembered, 7 is new
    np.testing.assert_array_equal(again.top_ids[:, 0], lens.top_ids[:, 1])


def test_logits_to_keep_is_the_last_rows_of_the_full_logits(tiny):
    model = tiny("llama-gqa-llama3")
    ids = torch.tensor([ids_of(model)])
    with torch.inference_mode():
        torch.testing.assert_close(model(ids, logits_to_keep=3), model(ids)[:, -3:], atol=1e-6, rtol=1e-6)


def test_sessions_tracing_at_once_get_what_they_get_one_after_another(tiny):
    model = tiny("qwen3-qknorm")
    prompts = [ids_of(model, seed=s) for s in range(6)]
    serial = [trace(model, torch.tensor([ids]))["layers.1.self_attn.pattern"] for ids in prompts]
    results = [None] * len(prompts)

    def session(i):
        results[i] = PromptTrace(model, prompts[i])["layers.1.self_attn.pattern"]

    threads = [threading.Thread(target=session, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, expected in zip(results, serial, strict=True):
        assert torch.equal(got, expected)


def test_the_compute_queue_runs_one_job_at_a_time_in_arrival_order():
    queue = ComputeQueue()
    order, running, most, told = [], [0], [0], {}
    first_holds, release = threading.Event(), threading.Event()

    def job(i):
        with queue.slot(on_wait=told.setdefault(i, []).append):
            running[0] += 1
            most[0] = max(most[0], running[0])
            order.append(i)
            if i == 0:
                first_holds.set()
                release.wait(5)
            with queue.slot():  # re-entrant within its own thread
                pass
            running[0] -= 1

    threads = [threading.Thread(target=job, args=(i,)) for i in range(4)]
    threads[0].start()
    first_holds.wait(5)
    for i, t in enumerate(threads[1:], start=1):
        t.start()
        while queue.jobs() < i + 1:  # each one queued before the next arrives
            threading.Event().wait(0.01)
    release.set()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3] and most[0] == 1 and queue.jobs() == 0
    assert told[0] == [] and told[3][0] == 3 and told[3][-1] == 0  # third in line, then its turn


def test_a_wait_given_up_leaves_the_queue_moving():
    queue = ComputeQueue()
    holder_in, release = threading.Event(), threading.Event()

    def holder():
        with queue.slot():
            holder_in.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    holder_in.wait(5)

    class Stop(Exception):
        pass

    def give_up(ahead):
        raise Stop  # what a rerun does to a waiting Streamlit script

    with pytest.raises(Stop):
        with queue.slot(on_wait=give_up):
            pass
    release.set()
    t.join(5)
    with queue.slot():  # not stuck behind the abandoned place
        assert queue.jobs() == 1


def test_pages_on_one_prompt_share_one_forward(monkeypatch):
    """Model, Norms, SwiGLU, Logit lens and Attention on the same prompt: one whole forward, then single layers."""
    from explorer import serving
    from model import Decoder

    from .apptest_helpers import open_page

    calls = {"forward": 0, "layers": 0}
    forward, run_layers = Decoder.forward, Decoder.run_layers

    def counted_forward(self, *args, **kwargs):
        calls["forward"] += 1
        return forward(self, *args, **kwargs)

    def counted_layers(self, x, layers, **kwargs):
        calls["layers"] += len(layers)
        return run_layers(self, x, layers, **kwargs)

    monkeypatch.setattr(serving, "TRACES", TraceCache(serving.TRACE_BUDGET_BYTES))  # nothing cached from before
    monkeypatch.setattr(Decoder, "forward", counted_forward)
    monkeypatch.setattr(Decoder, "run_layers", counted_layers)
    at = open_page("pages/model.py")
    for page in ("norms", "swiglu", "logit_lens", "attention"):
        at.switch_page(f"pages/{page}.py")
        at.run()
        assert not at.exception, page
    assert calls["forward"] == 1
    blocks = calls["layers"] - 5  # the whole forward ran the bundled model's 5 blocks through run_layers
    assert blocks == 2  # layer 0 again: its vectors for SwiGLU's layer, its matrices for Attention's


def test_a_download_holds_no_compute_slot_and_a_failed_load_leaves_nothing_behind(monkeypatch):
    from explorer import serving
    from explorer.compute import COMPUTE
    from model import ModelError, resolve_source

    jobs_while_resolving = []

    class Config(ServerConfig):
        def resolve(self, source, token=None, progress=None):
            jobs_while_resolving.append(COMPUTE.jobs())  # a Hub download would run here
            return resolve_source(source)

    cache = serving.ModelCache(Config(model_budget_bytes=2**30))
    model, tokenizer = cache.get(serving.ModelChoice("stories260K", "cpu", "auto"))
    assert jobs_while_resolving == [0] and model.config.vocab_size == 512
    with pytest.raises(ModelError):
        cache.get(serving.ModelChoice("/no/such/folder", "cpu", "auto"))
    assert not cache._loading


def test_models_are_kept_within_a_byte_budget_least_recently_used_first():
    from explorer import serving
    from model import ModelError

    f32, bf16 = (serving.ModelChoice("stories260K", "cpu", dtype) for dtype in ("float32", "bfloat16"))
    size = 260_032 * 4  # stories260K's parameters in float32
    cache = serving.ModelCache(ServerConfig(model_budget_bytes=int(size * 1.2)))
    first, _ = cache.get(f32)
    assert serving.model_bytes(first) == size == cache.nbytes()
    assert cache.get(f32)[0] is first  # kept: loaded once
    cache.get(bf16)  # half the size: both would exceed the budget, so the least recently used goes
    assert cache.nbytes() == size // 2 and cache.get(f32)[0] is not first
    import model.loading

    def read_weights(*args):
        raise AssertionError("the budget is checked before any weight is read")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model.loading, "read_weights", read_weights)
        with pytest.raises(ModelError, match="need 1.0 MiB in float32, more than the 0.2 MiB this server allows"):
            serving.ModelCache(ServerConfig(model_budget_bytes=size // 4)).get(f32)


def test_first_nonfinite_names_where_nan_weights_begin(tiny):
    model, broken = tiny("llama-gqa-llama3"), tiny("llama-gqa-llama3")  # two separate loads
    ids = ids_of(model)
    assert PromptTrace(model, ids).first_nonfinite() is None
    broken.layers[0].mlp.down_proj.weight[0, 0] = float("nan")
    assert PromptTrace(broken, ids).first_nonfinite() == "layers.1.resid_pre"  # layer 0's output
