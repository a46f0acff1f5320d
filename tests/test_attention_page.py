"""Attention page: head summaries by hand, GQA grouping order, figure orientation and labels, the page in AppTest."""

import math

import numpy as np
import pytest
import torch

from explorer.analysis import attention as analysis
from explorer.figures import attention as figures
from explorer.trace import Trace
from model import ModelConfig

from .apptest_helpers import array, chart_specs, open_page
from .conftest import BUNDLED

TOKENS = ["<s>", "␣the", "␣cat", "␣the"]  # a repeated token: labels must not merge
LABELS = ["0: &lt;s&gt;", "1: ␣the", "2: ␣cat", "3: ␣the"]  # as Plotly gets them: "<s>" escaped, not read as a tag

# Three queries over three keys, causal: rows are what query 0, 1, 2 attend to.
HAND = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])


def causal_scores(heads: int, tokens: int, seed: int = 0) -> torch.Tensor:
    scores = torch.randn(1, heads, tokens, tokens, generator=torch.Generator().manual_seed(seed))
    return scores.masked_fill(torch.ones(tokens, tokens, dtype=torch.bool).triu(1), float("-inf"))


def synthetic_trace() -> Trace:
    """A Trace of the bundled model's config (5 layers, 8 query heads over 4 KV heads) with random causal attention."""
    config = ModelConfig.from_file(BUNDLED / "config.json")
    tensors = {}
    for layer in range(config.num_hidden_layers):
        scores = causal_scores(config.num_attention_heads, len(TOKENS), seed=layer)
        tensors[f"layers.{layer}.self_attn.scores"] = scores
        tensors[f"layers.{layer}.self_attn.pattern"] = scores.softmax(-1)
    return Trace(tensors, torch.zeros(1, len(TOKENS), dtype=torch.long), TOKENS, config)


# --- analysis ---


def test_summaries_by_hand_skip_the_first_query():
    assert analysis.entropy(HAND) == pytest.approx((math.log(2) - (0.2 * math.log(0.2) + 0.3 * math.log(0.3)
                                                                   + 0.5 * math.log(0.5))) / 2)
    assert analysis.first_token_attention(HAND) == pytest.approx((0.5 + 0.2) / 2)
    assert analysis.previous_token_attention(HAND) == pytest.approx((0.5 + 0.3) / 2)


def test_summaries_read_nan_masked_cells_as_zero_and_keep_leading_axes():
    masked = np.where(np.triu(np.ones((3, 3), bool), 1), np.nan, HAND)
    stacked = np.stack([HAND, masked])[None]  # (1 layer, 2 heads, 3, 3)
    for summary in analysis.SUMMARIES.values():
        values = summary(stacked)
        assert values.shape == (1, 2)
        assert values[0, 0] == pytest.approx(values[0, 1])


def test_masked_cells_become_nan_and_nothing_else():
    scores = causal_scores(2, 4)[0].numpy()
    hidden = analysis.masked_as_nan(np.ones_like(scores), scores)
    assert np.array_equal(np.isnan(hidden), np.isneginf(scores))
    assert np.isneginf(scores).sum() == 2 * 6  # 6 future cells per 4×4 head


def test_pattern_by_group_puts_head_h_under_kv_head_h_over_g():
    t = synthetic_trace()
    grouped = analysis.pattern_by_group(t, 2)
    pattern, scores = analysis.layer_heads(t, 2)
    assert grouped.shape == (4, 2, 4, 4)  # Hkv, G, T, T
    for head in range(8):
        np.testing.assert_array_equal(grouped[head // 2, head % 2], pattern[head])
    assert np.isnan(scores[:, 0, 1:]).all() and not np.isnan(scores[:, 1:, 0]).any()


def test_head_summaries_cover_every_layer_and_head():
    """head_summaries stacks what summarize_pattern kept for each layer (tests/test_prompt_trace.py checks that a
    PromptTrace keeps it from the real forward)."""
    t = synthetic_trace()
    kept = {i: analysis.summarize_pattern(t[f"layers.{i}.self_attn.pattern"]) for i in range(5)}
    t.summary = lambda layer, part: kept[layer] if part == "self_attn.pattern" else None
    summaries = analysis.head_summaries(t)
    assert set(summaries) == {"entropy", "first token", "previous token"}
    layer3 = t["layers.3.self_attn.pattern"][0].numpy()
    for name, summary in analysis.SUMMARIES.items():
        assert summaries[name].shape == (5, 8)
        np.testing.assert_allclose(summaries[name][3], summary(layer3), rtol=1e-6)


def test_head_label_names_the_shared_kv_head():
    assert analysis.head_label(3, 2) == "head 3 (KV 1)"
    assert analysis.head_label(3, 1) == "head 3 (KV 3)"  # MHA: every head has its own


# --- figures ---


def test_head_matrix_scores_diverge_at_zero_and_keep_the_mask_blank():
    raw = causal_scores(1, 4)[0, 0].numpy()
    scores = analysis.masked_as_nan(raw, raw)
    fig = figures.head_matrix(scores, TOKENS, scores=True, title="scores")
    heatmap = fig.data[0]
    assert heatmap.zmid == 0 and heatmap.colorscale[0][1] != heatmap.colorscale[-1][1]
    assert np.isnan(heatmap.z[0, 1]) and not np.isnan(heatmap.z[1, 0])
    assert fig.layout.yaxis.autorange == "reversed"
    assert list(fig.layout.xaxis.ticktext) == LABELS and list(fig.layout.yaxis.ticktext) == LABELS

    pattern = figures.head_matrix(HAND, TOKENS[:3], scores=False, title="pattern").data[0]
    assert (pattern.zmin, pattern.zmax) == (0, 1) and pattern.zmid is None


def test_head_summary_heatmap_groups_heads_under_their_kv_head():
    values = np.arange(12, dtype=float).reshape(3, 4)  # 3 layers, 4 query heads over 2 KV heads
    fig = figures.head_summary_heatmap(values, 2, title="Mean attention entropy", value_name="nats", zmin=0)
    heatmap = fig.data[0]
    assert [list(level) for level in heatmap.x] == [["KV 0", "KV 0", "KV 1", "KV 1"], ["h0", "h1", "h2", "h3"]]
    np.testing.assert_array_equal(heatmap.z, values)
    assert heatmap.customdata[2][3] == "head 3 (KV 1)"
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis.title.text == "layer"
    assert "KV head" in fig.layout.xaxis.title.text and fig.layout.title.text == "Mean attention entropy"


# --- the page ---


def test_page_renders_and_controls_change_the_views():
    at = open_page("pages/attention.py")
    assert not at.exception and not at.error
    grid, one, *summaries = chart_specs(at)
    assert len(grid["layout"]["annotations"]) == 8 and len(summaries) == 3  # 8 heads; entropy, first, previous
    assert "0: &lt;s&gt;" in one["layout"]["xaxis"]["ticktext"]
    assert array(summaries[0]["data"][0]["z"]).shape == (5, 8)
    layer0 = array(grid["data"][0]["z"])

    at.slider(key="view.attention.layer").set_value(3).run()
    assert not at.exception
    grid, one, *_ = chart_specs(at)
    assert "layer 3" in grid["layout"]["title"]["text"] and one["layout"]["title"]["text"].startswith("Layer 3")
    assert not np.allclose(np.nan_to_num(array(grid["data"][0]["z"])), np.nan_to_num(layer0))

    at.selectbox(key="view.attention.head").set_value(5).run()
    at.radio(key="view.attention.values").set_value("scores (before softmax)").run()
    assert not at.exception
    one = chart_specs(at)[1]
    assert one["layout"]["title"]["text"] == "Layer 3, head 5 (KV 2): scores before softmax"
    z = array(one["data"][0]["z"])
    assert np.isnan(z[0, 1:]).all() and (z[1:, 0] < 0).any()  # future blank; raw scores, not probabilities


def test_page_works_for_qwen3(tiny_folder):
    """A tiny random Qwen3: QK-norm, head_dim 32, 4 query heads over 2 KV heads."""
    at = open_page("pages/attention.py", tiny_folder("qwen3-qknorm"))
    assert not at.exception and not at.error
    grid, _, entropy, *_ = chart_specs(at)
    assert [a["text"] for a in grid["layout"]["annotations"]] == [
        "head 0 (KV 0)", "head 1 (KV 0)", "head 2 (KV 1)", "head 3 (KV 1)"]
    assert array(entropy["data"][0]["z"]).shape == (2, 4)  # 2 layers × 4 heads


def test_uniform_entropy_is_the_ceiling_of_a_heads_mean_entropy():
    T = 6
    even = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]  # every query spreads evenly over its keys
    assert analysis.entropy(even) == pytest.approx(analysis.uniform_entropy(T))
    assert analysis.uniform_entropy(2) == pytest.approx(np.log(2)) and analysis.uniform_entropy(1) == 0.0
