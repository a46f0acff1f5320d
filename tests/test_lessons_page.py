"""The lesson pages: every experiment at a reduced size, the figures' labels, and each lesson page rendered in
AppTest."""

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.analysis import lesson_ablations as ablations
from explorer.analysis import lessons as analysis
from explorer.analysis import rope as rope_analysis
from explorer.analysis.model_facts import kv_cache_bytes
from explorer.figures import lessons as figures
from explorer.prompt_trace import PromptTrace
from explorer.trace import trace
from model import ModelError, load_model
from training.train import init_decoder, model_config

from .apptest_helpers import APP, array, chart_specs, chart_titles, open_page

# page (pages/<name>.py, also its URL path) -> the lesson's short name, whose first word its title holds
LESSONS = {
    "lesson_rmsnorm": "RMSNorm vs LayerNorm",
    "lesson_kv_cache": "KV-cache memory",
    "lesson_swiglu": "SwiGLU",
    "lesson_rope": "RoPE",
    "lesson_gqa": "GQA",
    "lesson_qk_norm": "QK-norm",
    "lesson_residual": "The residual stream",
}


@pytest.fixture(scope="module")
def stories():
    return load_model("stories260K")


@pytest.fixture(scope="module")
def tiny_pair_model():
    """A small untrained llama of the pair's family: context 32, so that 'beyond training length' exists."""
    return init_decoder(model_config(qk_norm=False, hidden=32, layers=1, heads=4, kv_heads=2, context=32), seed=0)


# ---- RMSNorm vs LayerNorm ----

def test_norm_timing_returns_positive_times_and_a_saving():
    timing = analysis.time_norms(2, 8, 16, 3, repeats=2, warmup=1)
    times = (timing.rmsnorm_ms, timing.layernorm_ms, timing.builtin_rmsnorm_ms)
    assert all(isinstance(t, float) and t > 0 for t in times)
    assert timing.fused_saving == pytest.approx(1 - timing.builtin_rmsnorm_ms / timing.layernorm_ms)
    assert timing.fused_saving < 1


def test_mean_over_rms_by_hand():
    stream = np.array([[[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0]], [[3.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]])
    values = analysis.mean_over_rms(stream)
    assert values.shape == (2, 2)
    assert values[0, 0] == pytest.approx(1.0)  # all mean, nothing else: LayerNorm would remove everything
    assert values[0, 1] == pytest.approx(0.0)  # zero mean: LayerNorm = RMSNorm
    assert values[1, 0] == pytest.approx(1.0 / math.sqrt(10 / 4))
    assert values[1, 1] == 0.0  # a zero vector divides by the floor, not by zero


def test_norm_timing_bar_labels():
    fig = figures.norm_timing_bar(["LayerNorm", "RMSNorm"], [2.0, 1.5], shape="B=1, T=2, D=3", device="cpu")
    assert list(fig.data[0].y) == ["LayerNorm", "RMSNorm"]
    assert fig.layout.yaxis.autorange == "reversed"
    assert "ms" in fig.layout.xaxis.title.text and "cpu" in fig.layout.title.text


# ---- KV cache ----

def test_book_kv_numbers_equal_the_formula_exactly():
    book = analysis.book_kv_table()
    assert list(book["variant"]) == ["MHA", "GQA-8", "MQA"]
    for row in book.itertuples():
        assert row[4] == 2 * 32 * row[2] * 128 * 4096 * 2  # formula (bytes)
        assert row[4] == kv_cache_bytes(32, row[2], 128, 4096, 2)
    assert list(book["formula (bytes)"]) == [2 * 2**30, 2**29, 64 * 2**20]
    assert list(book["formula"]) == ["2 GiB", "512 MiB", "64 MiB"]
    assert list(book["claim ÷ formula"]) == [2.0, 2.0, 2.0]  # the book counts twice what one fp16 sequence needs


def test_kv_claim_bar_is_log_scaled_and_grouped():
    book = analysis.book_kv_table()
    fig = figures.kv_claim_bar(list(book["variant"]), list(book["claimed (GB)"]), list(book["formula (bytes)"] / 2**30),
                               list(book["formula"]))
    assert fig.layout.yaxis.type == "log" and fig.layout.barmode == "group"
    assert [d.name for d in fig.data] == ["book's claim", "formula, 1 sequence"]
    assert list(fig.data[1].y) == [2.0, 0.5, 0.0625] and list(fig.data[1].text) == ["2 GiB", "512 MiB", "64 MiB"]
    assert list(fig.layout.yaxis.tickvals) == [0.0625, 0.125, 0.25, 0.5, 1, 2, 4]


def test_kv_saving_against_mha(stories):
    mine, mha = analysis.kv_saving_against_mha(stories, 512, 4)
    assert mine["bytes"] == kv_cache_bytes(5, 4, 8, 512, 4) and mha["bytes"] == kv_cache_bytes(5, 8, 8, 512, 4)
    assert mha["bytes"] == 2 * mine["bytes"]  # 8 query heads over 4 KV heads


# ---- SwiGLU ----

def test_swiglu_counts_are_exact():
    counts = analysis.MlpCounts(dim=64, intermediate=172)
    assert counts.gelu_4d == 2 * 64 * 256 == 32768
    assert counts.swiglu_8_3 == Fraction(32768) == counts.gelu_4d  # 3 · D · 8D/3 = 8 D², even though 3 ∤ 64
    assert counts.swiglu_actual == 3 * 64 * 172 == 33024
    assert counts.ratio == pytest.approx(33024 / 32768)


def test_mlp_counts_of_the_loaded_model(stories):
    counts = analysis.mlp_counts(stories)
    assert (counts.dim, counts.intermediate) == (64, 172)
    assert analysis.mlp_weights_per_layer(stories) == counts.swiglu_actual  # no MLP biases in stories260K


def test_mlp_parameter_bar_ratios():
    fig = figures.mlp_parameter_bar(["GELU", "SwiGLU 8/3", "SwiGLU F"], [32768, 32768.0, 33024])
    assert list(fig.data[0].text) == ["32,768 (×1.0000)", "32,768 (×1.0000)", "33,024 (×1.0078)"]
    assert fig.layout.yaxis.autorange == "reversed"


# ---- RoPE ----

def test_rope_shift_scores_are_equal(stories):
    ids = torch.tensor([[1, 403, 407, 261, 378, 403, 407, 30]])
    t = trace(stories, ids)
    table = analysis.shift_check(t, layer=2, head=3, m=7, n=1)
    both = table["both shifted"].to_numpy()
    assert table["s"].iloc[-1] <= 511 - 7 and len(table) > 5
    assert np.abs(both - both[0]).max() < 1e-4
    assert both[0] == pytest.approx(rope_analysis.rotated_score(t, 2, 3, 7, 1), abs=1e-4)
    assert np.abs(table["query only shifted"].to_numpy() - both[0]).max() > 1e-3  # position does matter


def test_context_refusal_names_the_limit(stories):
    message = analysis.context_refusal(stories)
    assert "513 tokens exceed" in message and "512" in message
    with pytest.raises(ModelError):
        stories.check_input(torch.zeros(1, 513, dtype=torch.long))


def test_held_out_windows_are_consecutive():
    tokens = torch.arange(50)
    windows = analysis.held_out_windows(tokens, 8, 4)
    assert windows.shape == (4, 9)
    assert windows[1, 0] == 8 and windows[1, -1] == 16  # a window's last target is the next window's first input
    assert analysis.held_out_windows(tokens, 8, 100).shape == (6, 9)
    with pytest.raises(ValueError):
        analysis.held_out_windows(tokens, 64, 1)


def test_loss_by_position_has_one_loss_per_position(tiny_pair_model):
    windows = torch.randint(3, 512, (3, 33), generator=torch.Generator().manual_seed(0))
    own = analysis.loss_by_position(tiny_pair_model, windows)
    larger = analysis.loss_by_position(tiny_pair_model, windows, rope_theta=40000.0)
    assert own.shape == larger.shape == (32,)
    assert np.isfinite(own).all() and (own > 0).all()
    # position 0 attends to itself only, so RoPE cannot change it; later positions do change with θ
    assert own[0] == pytest.approx(larger[0], abs=1e-5) and np.abs(own[1:] - larger[1:]).max() > 0
    # checked against a plain forward and cross-entropy, per position
    logits = tiny_pair_model(windows[:, :-1])
    by_hand = torch.nn.functional.cross_entropy(logits.transpose(1, 2), windows[:, 1:], reduction="none").mean(0)
    np.testing.assert_allclose(own, by_hand.detach().numpy(), rtol=1e-5)


def test_extrapolation_table_compares_late_trained_positions_with_beyond():
    losses = np.concatenate([np.full(12, 5.0), np.full(4, 2.0), np.full(16, 3.0)])  # training length 16
    table = analysis.extrapolation_table({("m", 10000.0): losses}, training_length=16)
    row = table.iloc[0]
    assert (row["inside"], row["beyond"], row["change"]) == (2.0, 3.0, 1.0)


def test_moving_average_keeps_the_length():
    smoothed = analysis.moving_average(np.array([0.0, 3.0, 6.0, 9.0]), 3)
    np.testing.assert_allclose(smoothed, [1.5, 3.0, 6.0, 7.5])


def test_loss_by_position_chart_marks_the_training_length():
    fig = figures.loss_by_position_chart({"a": np.ones(8), "b": np.zeros(8)}, training_length=4, smoothing=3)
    assert [d.name for d in fig.data] == ["a", "b"]
    assert fig.layout.shapes[-1].x0 == 3.5  # the dashed line between the last trained position and the first new one
    assert [a.text for a in fig.layout.annotations] == ["positions never seen in training", "training length 4"]
    assert "position" in fig.layout.xaxis.title.text and "nats, 3-position" in fig.layout.yaxis.title.text


def test_extrapolation_verdict_is_worded_from_the_numbers():
    own, larger = analysis.EXTRAPOLATION_THETAS
    table = pd.DataFrame([
        {"model": "a", "RoPE θ": own, "inside": 2.0, "beyond": 2.5, "change": 0.5},
        {"model": "a", "RoPE θ": larger, "inside": 2.25, "beyond": 2.5, "change": 0.25},
    ])
    verdict = analysis.extrapolation_verdict(table)
    assert "+0.500 nats (a)" in verdict and "RoPE does not extrapolate here" in verdict
    assert "+0.250 nats (a)" in verdict and "a cost of up to +0.250 nats" in verdict
    table["change"] = [-0.1, 0.0]
    assert "RoPE extrapolates here" in analysis.extrapolation_verdict(table)


# ---- the pages ----

def checked(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def visit(at: AppTest, name: str) -> AppTest:
    """The same app (and sidebar state) on another lesson page."""
    at.switch_page(f"pages/{name}.py")
    return checked(at.run())


def test_norm_lesson_opens_with_its_heatmap():
    page = checked(open_page("pages/lesson_rmsnorm.py"))
    assert page.title[0].value == "RMSNorm vs LayerNorm"
    assert any("LayerNorm would subtract" in h.value for h in page.subheader)
    assert any(t.startswith("Mean of each residual vector") for t in chart_titles(page))


def test_norm_lesson_times_on_a_button(monkeypatch):
    page = checked(open_page("pages/lesson_rmsnorm.py"))
    fake = analysis.NormTiming(rmsnorm_ms=3.0, layernorm_ms=2.0, builtin_rmsnorm_ms=1.8)
    calls = []
    monkeypatch.setattr(analysis, "time_norms", lambda *a, **k: calls.append(k) or fake)
    next(b for b in page.button if b.label.startswith("Time both")).click().run()
    assert not page.exception and calls and calls[0]["batch"] == 8 and calls[0]["dim"] == 512
    assert [m.value for m in page.metric] == ["2 ms", "1.8 ms", "3 ms"]
    verdict = next(m.value for m in page.markdown if m.value.startswith("**Measured:**"))
    assert "**1.11× faster** than LayerNorm here (saves 10.0% of its time: within the claimed 7–10%)" in verdict
    assert "readable RMSNorm, five separate operations, is 1.5× slower than LayerNorm" in verdict


@pytest.mark.parametrize("builtin_ms, words", [(1.84, "within the claimed"), (1.0, "more than the claimed"),
                                               (1.95, "less than the claimed"), (2.4, "no saving at all")])
def test_norm_verdict_follows_the_timing(builtin_ms, words):
    verdict = analysis.norm_timing_verdict(analysis.NormTiming(rmsnorm_ms=3.0, layernorm_ms=2.0,
                                                               builtin_rmsnorm_ms=builtin_ms))
    assert words in verdict and ("slower" in verdict.split("LayerNorm here")[0]) == (builtin_ms > 2.0)


def test_rope_verdict_flips_when_the_numbers_disagree():
    query_only = np.array([1.0, 1.7, 0.2])
    assert "**The claim holds.**" in analysis.shift_verdict(np.array([1.0, 1.0 + 1e-6, 1.0]), query_only)
    # bfloat16-sized rounding (the 0.0307 against 0.0428): not within a thousandth of the score
    assert "does not hold" in analysis.shift_verdict(np.array([0.0307, 0.0428, 0.035]), query_only)
    assert "No verdict" in analysis.shift_verdict(np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.0, 1.0]))


CHARTS = {  # each lesson page's charts, by the start of their titles
    "lesson_rmsnorm": ["Mean of each residual vector"],
    "lesson_kv_cache": ["KV cache at 4,096 tokens", "KV-cache memory:"],
    "lesson_swiglu": ["Parameters of one MLP block", "Layer 0: distribution"],
    "lesson_rope": ["Same q and k moved"],
    "lesson_gqa": ["Attention patterns of layer 0"],
    "lesson_qk_norm": [],
    "lesson_residual": ["How logit("],
}


@pytest.mark.parametrize("name", list(LESSONS))
def test_each_lesson_page_renders(name):
    page = checked(open_page(f"pages/{name}.py"))
    assert LESSONS[name].split()[0] in page.title[0].value
    titles = chart_titles(page)
    for start in CHARTS[name]:
        assert any(t.startswith(start) for t in titles), (start, titles)
    if not CHARTS[name]:
        assert titles == []


def test_kv_lesson_says_the_book_is_twice_the_formula():
    page = checked(open_page("pages/lesson_kv_cache.py"))
    assert any("factor of 2" in w.value and "2 GiB, 512 MiB, 64 MiB" in w.value for w in page.warning)
    assert any("= **536,870,912 bytes (512 MiB)**" in m.value for m in page.markdown)  # the GQA-8 default
    page.number_input(key="view.lesson_kv_cache.batch").set_value(2).run()
    assert any("= **1,073,741,824 bytes (1 GiB)**" in m.value for m in page.markdown)
    page.number_input(key="view.lesson_kv_cache.kv_heads").set_value(5).run()
    assert not page.exception and any("cannot be shared evenly" in e.value for e in page.error)
    page.number_input(key="view.lesson_kv_cache.kv_heads").set_value(8).run()


def test_rope_lesson_controls_change_the_scores():
    page = checked(open_page("pages/lesson_rope.py"))
    first = next(m.value for m in page.markdown if m.value.startswith("**Measured:** this head"))
    page.selectbox(key="view.lesson_rope.head").set_value(5).run()
    second = next(m.value for m in page.markdown if m.value.startswith("**Measured:** this head"))
    assert not page.exception and first != second and "The claim holds" in second
    chart = next(spec for spec in chart_specs(page) if "Loss at each position" in spec["layout"]["title"]["text"])
    assert len(chart["data"]) == 4 and all(len(array(d["y"])) == 256 for d in chart["data"])
    assert any(m.value.startswith("**Measured:** with their own θ") for m in page.markdown)


def test_gqa_lesson_reports_the_group_saving():
    page = checked(open_page("pages/lesson_gqa.py"))
    assert any("**2× smaller**" in m.value for m in page.markdown)
    page.slider(key="view.lesson_gqa.layer").set_value(3).run()
    assert not page.exception and any(t.startswith("Attention patterns of layer 3") for t in chart_titles(page))
    assert page.query_params["layer"] in (["3"], "3")  # the address bar now holds a link to this view


def test_a_shared_link_opens_a_lesson_on_its_layer():
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.switch_page("pages/lesson_gqa.py")
    at.query_params["layer"] = "2"
    checked(at.run())
    assert at.slider(key="view.lesson_gqa.layer").value == 2
    assert any(t.startswith("Attention patterns of layer 2") for t in chart_titles(at))


@pytest.mark.parametrize("variant", ["qwen3-qknorm", "llama-linear-mha-tied"])
def test_every_lesson_renders_for_other_families(tiny_folder, variant):
    """A tiny random Qwen3 (QK-norm, head_dim 32) and a Llama with MHA and linear RoPE scaling, with the bundled
    tokenizer (vocab 512). Each with its experiment switched on."""
    at = open_page("pages/lesson_rmsnorm.py", tiny_folder(variant))
    for name in LESSONS:
        visit(at, name)
        if any(toggle.key == f"view.{name}.run" for toggle in at.toggle):
            at.toggle(key=f"view.{name}.run").set_value(True)
            checked(at.run())
        markdown = " ".join(m.value for m in at.markdown)
        if name == "lesson_gqa":
            assert ("is itself multi-head attention" in markdown) == (variant == "llama-linear-mha-tied")
        if name == "lesson_qk_norm":
            assert ("The loaded model uses QK-norm." in markdown) == (variant == "qwen3-qknorm")
            assert ("runs on the bundled **pair-qwen3**" in " ".join(c.value for c in at.caption)) == (
                variant != "qwen3-qknorm")
        if name in ("lesson_qk_norm", "lesson_gqa", "lesson_swiglu"):
            assert "**Measured" in markdown


# ---- the live experiments: QK-norm off, KV heads pooled, the gate made constant ----


def test_prompt_loss_is_the_cross_entropy_of_the_prompts_own_next_tokens(stories):
    ids = torch.randint(3, 512, (1, 40), generator=torch.Generator().manual_seed(0))
    t = PromptTrace(stories, ids[0].tolist())
    expected = torch.nn.functional.cross_entropy(stories(ids)[0, :-1], ids[0, 1:]).item()
    assert ablations.prompt_loss(t).loss == pytest.approx(expected, abs=1e-5)


def test_mean_pooled_kv_heads_equal_a_model_with_fewer_kv_heads_of_averaged_projections(stories):
    """The edit at k and v is Ainslie et al.'s conversion: a model with half the KV heads, each with the mean of
    two heads' k_proj and v_proj rows, computes the same logits."""
    ids = torch.randint(3, 512, (1, 24), generator=torch.Generator().manual_seed(1))
    config = stories.config
    dh, kv = config.head_dim, config.num_key_value_heads
    converted = init_decoder(dataclasses.replace(config, num_key_value_heads=kv // 2), seed=0)
    weights = {name: w.clone() for name, w in stories.state_dict().items()}
    for name in [n for n in weights if n.endswith(("k_proj.weight", "v_proj.weight"))]:
        weights[name] = weights[name].view(kv // 2, 2, dh, -1).mean(1).reshape(kv // 2 * dh, -1)
    converted.load_state_dict(weights)
    edited = trace(stories, ids, capture="logits", edits=ablations.kv_pooling_edit(config.num_hidden_layers, 2))
    torch.testing.assert_close(edited["logits"], converted(ids), rtol=1e-4, atol=1e-4)
    assert ablations.kv_head_options(kv) == [2, 1] and ablations.kv_head_options(8) == [4, 2, 1]


def test_qk_norm_keeps_every_score_within_the_bound_its_gains_set_and_the_verdict_flips():
    model = load_model("pair-qwen3")
    ids = torch.randint(3, 512, (30,), generator=torch.Generator().manual_seed(2)).tolist()
    unedited = PromptTrace(model, ids)
    edited = PromptTrace(model, ids, edits=ablations.qk_norm_edit(model.config.num_hidden_layers))
    result = ablations.qk_norm_ablation(model, unedited, edited)
    assert np.all(result.with_norm <= result.bound) and not np.allclose(result.with_norm, result.without_norm)
    assert "every score lies within the bound" in ablations.qk_norm_verdict(result)
    broken = dataclasses.replace(result, bound=result.with_norm / 2)
    assert "the claim does not hold here" in ablations.qk_norm_verdict(broken)


def test_the_constant_gate_is_a_running_mean_that_never_reads_later_tokens():
    x = torch.tensor([[[1.0, 4.0], [3.0, 0.0], [5.0, 2.0]]])
    assert ablations.CausalMeanOverTokens()(x).tolist() == [[[1.0, 4.0], [2.0, 2.0], [3.0, 2.0]]]
    assert "carries real work" in ablations.gate_verdict(2.0, 0.5, 0.1, 3)
    assert "leans little on its gates" in ablations.gate_verdict(2.0, 0.001, 0.0, 3)
    assert ablations.size_of(0.0001, 2.0) == "no measurable cost" and ablations.size_of(0.5, 2.0) == "a large cost"


@pytest.mark.parametrize("name, key, title", [
    ("lesson_qk_norm", "view.lesson_qk_norm.run", "pair-qwen3: largest |attention score| per layer"),
    ("lesson_gqa", "view.lesson_gqa.run", "The prompt's loss with the KV heads mean-pooled into fewer"),
    ("lesson_swiglu", "view.lesson_swiglu.run", "The prompt's loss without token-by-token gating"),
])
def test_each_lesson_runs_its_experiment_on_a_toggle(name, key, title):
    page = checked(open_page(f"pages/{name}.py"))
    assert title not in chart_titles(page)
    page.toggle(key=key).set_value(True)
    checked(page.run())
    assert title in chart_titles(page)
    assert any(m.value.startswith("**Measured") for m in page.markdown)


def test_a_slower_rmsnorm_is_said_to_take_more_time_not_to_save_a_negative_share():
    verdict = analysis.norm_timing_verdict(analysis.NormTiming(rmsnorm_ms=3.0, layernorm_ms=2.0, builtin_rmsnorm_ms=2.4))
    assert "takes 20% more time: no saving at all" in verdict and "saves -" not in verdict
