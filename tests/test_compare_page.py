"""Llama vs Qwen3 page: depth alignment, q/k lengths, per-layer statistics and KL by hand, figure layout, and the
page in AppTest with a tiny Llama and a tiny Qwen3 that share the bundled tokenizer."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.analysis import compare as analysis
from explorer.edits import Edits
from explorer.figures import compare as figures
from explorer.trace import Trace
from model import Decoder, ModelConfig

from .apptest_helpers import OTHER_SOURCE, chart_specs, chart_titles, open_page

TOKENS = ["<s>", "␣the", "␣cat", "␣the"]  # a repeated token: labels must not merge
LABELS = ["&lt;s&gt;", "␣the", "␣cat", "␣the"]  # as Plotly gets them: "<s>" escaped, not read as a tag
HAND = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])  # three causal attention rows


def config(qk_norm: bool, layers: int = 2) -> ModelConfig:
    """4 query heads over 2 KV heads, head_dim 4."""
    return ModelConfig.from_dict(dict(
        model_type="qwen3" if qk_norm else "llama", vocab_size=16, hidden_size=16, intermediate_size=32,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, head_dim=4,
        max_position_embeddings=32, rms_norm_eps=1e-6))


def hand_trace(qk_norm: bool) -> Trace:
    """Layer 0 of a 1-layer model: q, k of known lengths, the HAND pattern in every head, scores with a -inf mask."""
    q = torch.zeros(1, 4, 3, 4)
    q[..., 0] = 3.0
    q[..., 1] = 4.0  # every q has length 5
    k = torch.zeros(1, 2, 3, 4)
    k[..., 2] = 2.0  # every k has length 2
    scores = torch.tensor([[1.0, -math.inf, -math.inf], [-7.0, 2.0, -math.inf], [0.5, 0.0, 3.0]]).expand(1, 4, 3, 3)
    tensors = {"layers.0.self_attn.q": q, "layers.0.self_attn.k": k, "layers.0.self_attn.scores": scores,
               "layers.0.self_attn.pattern": torch.tensor(HAND).float().expand(1, 4, 3, 3)}
    if qk_norm:
        tensors["layers.0.self_attn.q_normed"] = q / 2.5  # length 2
        tensors["layers.0.self_attn.k_normed"] = k * 2  # length 4
    return Trace(tensors, torch.zeros(1, 3, dtype=torch.long), TOKENS[:3], config(qk_norm, layers=1))


# --- analysis ---


def test_aligned_layer_matches_relative_depth():
    assert [analysis.aligned_layer(i, 4, 28) for i in range(4)] == [0, 9, 18, 27]
    assert [analysis.aligned_layer(i, 5, 5) for i in range(5)] == [0, 1, 2, 3, 4]
    assert [analysis.aligned_layer(i, 3, 2) for i in range(3)] == [0, 1, 1]  # 0.5 rounds up
    assert [analysis.aligned_layer(i, 2, 3) for i in range(2)] == [0, 2]
    assert analysis.aligned_layer(0, 1, 12) == 0


def test_depth_axes_use_layer_numbers_only_when_counts_agree():
    xa, xb, title = analysis.depth_axes(3, 3)
    assert title == "layer" and list(xa) == list(xb) == [0, 1, 2]
    xa, xb, title = analysis.depth_axes(3, 5)
    assert "relative depth" in title
    np.testing.assert_allclose(xa, [0, 0.5, 1])
    np.testing.assert_allclose(xb, [0, 0.25, 0.5, 0.75, 1])


def test_qk_norm_stages_lengths_by_hand():
    stages = analysis.qk_norm_stages(hand_trace(qk_norm=True), 0)
    assert list(stages) == ["before QK-norm", "after QK-norm"]
    (q, k), (q_normed, k_normed) = stages.values()
    assert q.shape == (4, 3) and k.shape == (2, 3)
    np.testing.assert_allclose(q, 5.0)
    np.testing.assert_allclose(k, 2.0)
    np.testing.assert_allclose(q_normed, 2.0)
    np.testing.assert_allclose(k_normed, 4.0)
    assert list(analysis.qk_norm_stages(hand_trace(qk_norm=False), 0)) == ["raw q, k"]


def test_qk_norm_gains_read_the_model_and_are_absent_without_qk_norm():
    qwen = Decoder(config(qk_norm=True))
    with torch.no_grad():
        qwen.layers[1].self_attn.q_norm.weight.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    q_gain, k_gain = analysis.qk_norm_gains(qwen, 1)
    np.testing.assert_array_equal(q_gain, [1, 2, 3, 4])
    np.testing.assert_array_equal(k_gain, [1, 1, 1, 1])
    assert analysis.qk_norm_gains(Decoder(config(qk_norm=False)), 1) is None


def test_layer_metrics_by_hand_ignore_masked_scores():
    metrics = analysis.layer_metrics(hand_trace(qk_norm=False))
    assert metrics["largest |score|"] == pytest.approx([7.0])  # -inf cells do not count
    hand_entropy = (math.log(2) - (0.2 * math.log(0.2) + 0.3 * math.log(0.3) + 0.5 * math.log(0.5))) / 2
    assert metrics["entropy"] == pytest.approx([hand_entropy])
    assert metrics["first token"] == pytest.approx([(0.5 + 0.2) / 2])


def test_kl_by_position_by_hand():
    p = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1]]]))
    q = torch.log(torch.tensor([[[0.25, 0.75], [0.9, 0.1]]]))
    kl = analysis.kl_by_position(p, q + 3.0)  # a constant shift of the logits is no change
    assert kl == pytest.approx([0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75), 0.0])
    assert analysis.next_token_probabilities(q) == pytest.approx([0.9, 0.1])


def test_ablation_depends_on_the_model():
    name, edits = analysis.ablation(config(qk_norm=True), [1, 0])
    assert edits == Edits(qk_norm_off=frozenset({0, 1})) and name == "QK-norm off on layers 0, 1"
    name, edits = analysis.ablation(config(qk_norm=False), [1])
    assert edits == Edits(qk_norm_add=frozenset({1})) and name == "QK-norm added on layer 1"


def test_changed_candidates_join_both_top_k_most_likely_first():
    before = np.array([0.5, 0.3, 0.15, 0.05])
    after = np.array([0.1, 0.1, 0.1, 0.7])
    assert list(analysis.changed_candidates(before, after, 2)) == [0, 1, 3]


# --- figures ---


def test_qk_norm_boxes_group_heads_and_share_a_log_scale():
    stages = analysis.qk_norm_stages(hand_trace(qk_norm=True), 0)
    fig = figures.qk_norm_boxes(stages, group_size=2, title="layer 0", y_range=(-1.0, 1.0))
    assert [(t.name, t.xaxis) for t in fig.data] == [("before QK-norm", "x"), ("before QK-norm", "x2"),
                                                    ("after QK-norm", "x"), ("after QK-norm", "x2")]
    q_before = fig.data[0]
    assert list(dict.fromkeys(q_before.x)) == [0, 1, 2, 3]  # heads by number, named by the tick text
    assert list(fig.layout.xaxis.ticktext) == ["h0 (KV 0)", "h1 (KV 0)", "h2 (KV 1)", "h3 (KV 1)"]
    np.testing.assert_allclose(q_before.y, 5.0)
    assert len(q_before.y) == 4 * 3  # every head, every token
    assert list(fig.layout.xaxis2.ticktext) == ["KV 0", "KV 1"]
    assert fig.layout.yaxis.type == fig.layout.yaxis2.type == "log"
    assert tuple(fig.layout.yaxis.range) == tuple(fig.layout.yaxis2.range) == (-1.0, 1.0)
    assert "log scale" in fig.layout.yaxis.title.text and fig.layout.xaxis.title.text == "head"
    assert fig.layout.title.text == "layer 0"


def test_norm_range_holds_every_length():
    low, high = figures.norm_range([np.array([[0.1, 2.0]]), np.array([50.0])])
    assert 10 ** low < 0.1 and 10 ** high > 50


def test_gain_lines_one_line_per_norm():
    fig = figures.gain_lines(np.array([1.0, 2.0]), np.array([0.5, 0.5]), title="gains")
    assert [t.name for t in fig.data] == ["q_norm gain", "k_norm gain"]
    np.testing.assert_array_equal(fig.data[0].y, [1.0, 2.0])
    assert "dimension" in fig.layout.xaxis.title.text and "gain" in fig.layout.yaxis.title.text


def test_layer_lines_put_both_models_on_one_axis():
    fig = figures.layer_lines({"A": (np.array([0.0, 1.0]), np.array([3.0, 4.0])),
                               "B": (np.array([0.0, 0.5, 1.0]), np.array([1.0, 2.0, 3.0]))},
                              title="Largest score", x_title="relative depth", y_title="|score|")
    assert [t.name for t in fig.data] == ["A", "B"]
    np.testing.assert_array_equal(fig.data[1].x, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(fig.data[1].customdata, [0, 1, 2])  # hover names the layer
    assert fig.layout.xaxis.title.text == "relative depth" and fig.layout.yaxis.title.text == "|score|"
    assert fig.layout.xaxis.dtick is None  # fractions of depth: plotly picks the ticks
    by_layer = figures.layer_lines({"unedited": (np.arange(28.0), np.ones(28))}, title="t", x_title="layer",
                                   y_title="y")
    assert by_layer.layout.xaxis.dtick == 3  # whole layers, about ten ticks


def test_next_token_change_pairs_bars_by_rank():
    fig = figures.next_token_change(["<s>", "a", "a"], np.array([0.5, 0.3, 0.2]), np.array([0.1, 0.6, 0.3]),
                                    edit_name="QK-norm off on layer 0", position_token="<s>")
    assert [t.name for t in fig.data] == ["unedited", "QK-norm off on layer 0"]
    np.testing.assert_array_equal(fig.data[1].x, [0.1, 0.6, 0.3])
    assert list(fig.layout.yaxis.ticktext) == ["&lt;s&gt;", "a", "a"] and fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.barmode == "group" and fig.layout.xaxis.title.text == "probability"


def test_kl_by_position_bar_labels_tokens():
    fig = figures.kl_by_position_bar(np.array([0.0, 0.1, 0.2, 0.3]), TOKENS, title="KL")
    assert list(fig.layout.xaxis.ticktext) == LABELS
    np.testing.assert_array_equal(fig.data[0].y, [0.0, 0.1, 0.2, 0.3])
    assert fig.layout.yaxis.title.text == "KL divergence (nats)"


# --- the page ---


@pytest.fixture(scope="module")
def pair(tiny_folder):
    """A 2-layer Llama and a 3-layer Qwen3 (QK-norm), so that layers are matched by relative depth."""
    return tiny_folder("llama-gqa-llama3"), tiny_folder("qwen3-qknorm", num_hidden_layers=3)


def open_pair(llama: Path, qwen3: Path) -> AppTest:
    """The compare page with `llama` as model A and `qwen3` as model B."""
    at = open_page("pages/compare.py")
    for slot in "ab":
        at.selectbox(key=f"view.compare.{slot}").set_value(OTHER_SOURCE)
    at.run()
    at.text_input(key="view.compare.a_custom").set_value(str(llama))
    at.text_input(key="view.compare.b_custom").set_value(str(qwen3)).run()
    return at


def test_page_renders_both_models_and_their_ablations(pair):
    at = open_pair(*pair)
    assert not at.exception and not at.error
    shown = chart_titles(at)
    assert "A (" in shown[0] and ", layer 0: ‖q‖ and ‖k‖ over tokens" in shown[0]
    assert any(t.startswith("B (") and "learned QK-norm gains" in t for t in shown)  # only Qwen3 has gains
    assert not any(t.startswith("A (") and "gains" in t for t in shown)
    assert "Largest |attention score| per layer" in shown and "Mean attention to the first token" in shown
    qwen_boxes = next(spec for spec in chart_specs(at) if spec["layout"]["title"]["text"].startswith("B ("))
    assert {trace["name"] for trace in qwen_boxes["data"]} == {"before QK-norm", "after QK-norm"}
    labels = [m.label for m in at.metric]
    assert "QK-norm added on layers 0, 1" in labels[0] and "QK-norm off on layers 0, 1, 2" in labels[1]
    assert all(float(m.value.split()[0]) > 0 for m in at.metric)

    at.slider(key="view.compare.layer").set_value(1).run()  # the last of A's 2 layers faces the last of B's 3
    assert not at.exception
    assert any(t.startswith("B (") and ", layer 2: ‖q‖" in t for t in chart_titles(at))


def test_changing_an_ablation_changes_the_kl(pair):
    at = open_pair(*pair)
    llama_kl, qwen_kl = (m.value for m in at.metric)
    at.multiselect(key="view.compare.b.layers").set_value([2]).run()
    assert not at.exception and not at.error
    assert at.metric[0].value == llama_kl and at.metric[1].value != qwen_kl
    assert at.metric[1].label.endswith("QK-norm off on layer 2")
    at.multiselect(key="view.compare.a.layers").set_value([0]).run()
    assert not at.exception and at.metric[0].value != llama_kl
    at.selectbox(key="view.compare.a.head").set_value(3).run()
    assert not at.exception
    assert "Unedited: layer 0, head 3 (KV 1)" in chart_titles(at)
    at.radio(key="view.compare.a.pattern_view").set_value("difference").run()
    assert not at.exception
    difference = next(spec for spec in chart_specs(at) if spec["layout"]["title"]["text"].startswith("Edited − "))
    assert difference["data"][0]["zmid"] == 0 and difference["layout"]["yaxis"]["autorange"] == "reversed"


def test_page_opens_with_the_bundled_models():
    at = open_page("pages/compare.py")
    assert not at.exception and not at.error
    assert at.get("plotly_chart") and len(at.metric) == 2
