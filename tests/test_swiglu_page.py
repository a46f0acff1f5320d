"""SwiGLU page: analysis on hand-made traces, figure labels and orientation, and the page in AppTest."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from explorer.analysis import swiglu as analysis
from explorer.figures import swiglu as figures

from .apptest_helpers import array, chart_specs, open_page
from .test_norms_page import TOKENS, synthetic_trace

PAGE = "pages/swiglu.py"


def mlp_trace(F: int = 4) -> tuple:
    """A synthetic 5-layer trace whose layer l has act = l/10 everywhere except one near-zero entry per token."""
    T, tensors = len(TOKENS), {}
    for layer in range(5):
        act = torch.full((1, T, F), layer / 10 + 0.5)
        act[..., 0] = 0.001 * layer  # one of F neurons nearly shut at every token
        tensors[f"layers.{layer}.mlp.act"] = act
        tensors[f"layers.{layer}.mlp.gate"] = torch.randn(1, T, F)
        tensors[f"layers.{layer}.mlp.up"] = torch.full((1, T, F), 2.0)
        tensors[f"layers.{layer}.mlp.hidden"] = act * 2.0
    tensors["layers.4.resid_post"] = torch.zeros(1, T, 2)
    return synthetic_trace(tensors), tensors


def test_histogram_counts_by_hand():
    centres, counts = analysis.histogram(np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])[:, 1:], bins=2)
    np.testing.assert_allclose(centres, [0.25, 0.75])
    assert counts.tolist() == [1, 3]  # all (T, F) values counted together


def test_gate_sparsity_per_layer():
    t, _ = mlp_trace(F=4)
    kept = {i: analysis.summarize_act(t[f"layers.{i}.mlp.act"]) for i in range(5)}
    t.summary = lambda layer, part: kept[layer] if part == "mlp.act" else None
    np.testing.assert_allclose(analysis.gate_sparsity(t, 0.01), [0.25] * 5)  # 0.001 * layer < 0.01 for every layer
    np.testing.assert_allclose(analysis.gate_sparsity(t, 0.003), [0.25, 0.25, 0.25, 0, 0])


def test_top_neurons_contributions_by_hand():
    t, tensors = mlp_trace(F=4)
    hidden = torch.tensor([1.5, -3.0, 1.0, 0.0])
    tensors["layers.2.mlp.hidden"][0, 1] = hidden
    tensors["layers.4.resid_post"][0, 1] = torch.tensor([0.0, 5.0])  # final direction: the second axis
    down = torch.tensor([[1.0, 3.0, 0.0, 9.0],
                         [0.0, 4.0, -2.0, 9.0]])  # (D = 2, F = 4): column n is what neuron n writes per unit
    model = SimpleNamespace(layers={2: SimpleNamespace(mlp=SimpleNamespace(down_proj=SimpleNamespace(weight=down)))})
    table = analysis.top_neurons(model, t, layer=2, token=1, k=2)
    # Ranked by the length written, |hidden| · ‖column‖: 15, 2, 1.5, 0. Neuron 0 has the larger |hidden| (1.5 > 1)
    # but a shorter column; neuron 3 has the longest column but hidden 0.
    assert table.neuron.tolist() == [1, 2]
    np.testing.assert_allclose(table["hidden = act·up"], [-3.0, 1.0])
    np.testing.assert_allclose(table["contribution norm"], [15.0, 2.0])  # |-3| * ‖(3, 4)‖, |1| * ‖(0, -2)‖
    np.testing.assert_allclose(table["toward final"], [-12.0, -2.0])  # second component of each contribution
    np.testing.assert_allclose(table["up"], [2.0, 2.0])


def test_neuron_point_cloud_is_one_point_per_neuron():
    t, tensors = mlp_trace(F=4)
    gate, up, hidden = analysis.neuron_point_cloud(t, 3, 2)
    assert gate.shape == up.shape == hidden.shape == (4,)
    np.testing.assert_allclose(gate, tensors["layers.3.mlp.gate"][0, 2].numpy())


def test_distributions_figure_three_panels():
    hist = {name: (np.array([-1.0, 0.0, 1.0]), np.array([1, 10, 100])) for name, _ in figures.DISTRIBUTIONS}
    fig = figures.distributions_figure(hist, layer=3, log=True)
    assert len(fig.data) == 3
    assert [a.text for a in fig.layout.annotations] == ["silu(gate)", "up", "hidden = silu(gate) · up"]
    assert fig.layout.title.text.startswith("Layer 3")
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.title.text == "count (token × neuron)"


def test_sparsity_figure_highlights_chosen_layer_and_shows_threshold():
    fig = figures.sparsity_figure(np.array([0.1, 0.2, 0.3]), 0.01, highlight=1)
    assert list(fig.data[0].marker.color) == ["#4c72b0", "#d62728", "#4c72b0"]
    assert "0.01" in fig.layout.yaxis.title.text and "0.01" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "layer"


def test_top_neurons_figure_strongest_on_top():
    fig = figures.top_neurons_figure(np.array([7, 2]), np.array([-3.0, 1.0]), np.array([15.0, 2.0]),
                                     np.array([-12.0, -2.0]), "1: ␣the")
    assert list(fig.data[0].y) == ["neuron 7", "neuron 2"] and fig.layout.yaxis.autorange == "reversed"
    assert fig.data[0].marker.cmin == -12.0 and fig.data[0].marker.cmax == 12.0
    assert "1: ␣the" in fig.layout.title.text


def test_gate_up_scatter_colours_by_product():
    hidden = np.array([0.5, -2.0, 0.0])
    fig = figures.gate_up_scatter(np.array([1.0, -1.0, 0.0]), np.array([1.0, 2.0, 3.0]), hidden, "0: <s>")
    assert "0: &lt;s&gt;" in fig.layout.title.text
    np.testing.assert_allclose(fig.data[0].marker.color, hidden)
    assert (fig.data[0].marker.cmin, fig.data[0].marker.cmax) == (-2.0, 2.0)
    assert "before silu" in fig.layout.xaxis.title.text and fig.layout.yaxis.title.text == "up (up_proj output)"
    assert not fig.layout.annotations  # every neuron drawn: no note


def test_gate_up_scatter_of_a_wide_mlp_keeps_the_strongest_neurons_and_says_so():
    rng = np.random.default_rng(1)
    gate, up = rng.normal(size=(2, 3072))
    hidden = gate / (1 + np.exp(-gate)) * up
    fig = figures.gate_up_scatter(gate, up, hidden, "5: x")
    neurons = np.asarray(fig.data[0].customdata)[:, 0].astype(int)
    assert len(neurons) == figures.MAX_POINTS == len(set(neurons))
    assert set(np.argsort(-np.abs(hidden))[:figures.STRONGEST]) <= set(neurons)
    np.testing.assert_allclose(fig.data[0].x, gate[neurons])  # each point is its own neuron's gate and up
    np.testing.assert_allclose(fig.data[0].y, up[neurons])
    assert "1,000 of 3,072 neurons" in fig.layout.annotations[-1].text


def test_page_renders_and_layer_and_token_change_the_view():
    at = open_page(PAGE)
    assert not at.exception and not at.error
    specs = chart_specs(at)
    assert len(specs) == 4
    assert specs[0]["layout"]["title"]["text"].startswith("Layer 0")
    assert len(array(specs[1]["data"][0]["y"])) == 5  # sparsity: one bar per layer
    assert "&lt;s&gt;" not in specs[2]["layout"]["title"]["text"]  # last token chosen by default

    at.selectbox(key="view.swiglu.layer").set_value(2).run()
    assert not at.exception
    specs = chart_specs(at)
    assert specs[0]["layout"]["title"]["text"].startswith("Layer 2")
    assert specs[1]["data"][0]["marker"]["color"][2] == "#d62728"

    before = specs[3]["data"][0]
    at.selectbox(key="view.swiglu.token").set_value(0).run()
    assert not at.exception
    specs = chart_specs(at)
    assert "0: &lt;s&gt;" in specs[2]["layout"]["title"]["text"]
    assert not np.array_equal(array(specs[3]["data"][0]["x"]), array(before["x"]))

    at.select_slider(key="view.swiglu.threshold").set_value(0.3).run()
    assert "0.3" in chart_specs(at)[1]["layout"]["title"]["text"]


@pytest.mark.parametrize("variant", ["qwen3-qknorm", "llama-gqa-llama3"])
def test_page_works_for_other_families(tiny_folder, variant):
    at = open_page(PAGE, tiny_folder(variant))
    assert not at.exception and not at.error
    specs = chart_specs(at)
    assert len(array(specs[1]["data"][0]["y"])) == 2  # the tiny checkpoints have 2 layers
    assert len(array(specs[3]["data"][0]["x"])) == 96  # one point per neuron, F = 96


def test_the_gate_caption_tells_the_distribution_with_its_own_numbers():
    act = np.array([-0.27, -0.25, -0.21, -0.1, 0.0, 0.005, 0.5, 1.5])  # 3 near the floor, 2 shut, 1 above 1
    story = analysis.gate_story(act)
    assert "38% of the values lie between −0.28 and −0.2" in story
    assert "Only 25.0% are within 0.01 of 0" in story and "12.5% are above 1" in story
