"""Logit lens: the lens on a hand-made model, its last layer against the real logits, figures, and the page."""

from types import SimpleNamespace

import numpy as np
import torch

from explorer import trace
from explorer.analysis.logit_lens import lens_logits, logit_lens, settling_layer
from explorer.analysis.logit_lens import MAX_POSITIONS_PER_VIEW
from explorer.figures.logit_lens import lens_heatmap, rank_chart
from model import load_model

from .apptest_helpers import array, chart_specs, open_page


def identity_model() -> SimpleNamespace:
    """A stand-in decoder whose final norm and LM head do nothing: the lens then reads the residual as logits."""
    return SimpleNamespace(device=torch.device("cpu"), dtype=torch.float32, norm=lambda x: x,
                           lm_head=torch.nn.Identity(), config=SimpleNamespace(vocab_size=4))


def test_lens_by_hand():
    # 2 layers, 2 positions, vocabulary of 4: the residual streams are the logits themselves.
    layer0 = torch.tensor([[0.0, 3.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    layer1 = torch.tensor([[5.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 4.0]])
    lens = logit_lens(identity_model(), torch.stack([layer0, layer1]))
    assert lens.final_ids.tolist() == [0, 3]
    assert lens.top_ids[0, 0].tolist() == [1, 2, 3] and lens.top_ids[1, 1, 0] == 3
    assert lens.final_rank.tolist() == [[4, 1], [1, 1]]  # token 0 is the worst of four at layer 0; ties count as 1
    np.testing.assert_allclose(lens.final_prob[:, 1], [0.25, np.exp(4) / (np.exp(4) + 3)], rtol=1e-6)
    np.testing.assert_allclose(lens.top_probs[0, 0], torch.softmax(layer0[0], -1).sort(descending=True)[0][:3],
                               rtol=1e-6)


def test_last_layer_of_the_lens_is_the_real_output():
    model = load_model("stories260K")
    t = trace(model, torch.tensor([[1, 403, 407, 261, 378, 500]]), capture=["layers.*.resid_post", "logits"])
    layers = model.config.num_hidden_layers
    resid = [t[f"layers.{i}.resid_post"][0] for i in range(layers)]
    torch.testing.assert_close(lens_logits(model, resid[-1]), t["logits"][0], rtol=0, atol=1e-5)
    lens = logit_lens(model, torch.stack(resid))
    assert lens.top_ids.shape == (layers, 6, 3) and lens.final_rank.shape == (layers, 6)
    assert (lens.final_rank[-1] == 1).all()
    assert (lens.top_ids[-1, :, 0] == t["logits"][0].argmax(-1).numpy()).all()


def test_settling_layer():
    assert settling_layer(np.array([5, 1, 3, 1, 1])) == 3
    assert settling_layer(np.array([1, 1, 1])) == 0
    assert settling_layer(np.array([2, 7, 1])) == 2


def test_heatmap_reads_top_down_with_tokens_and_top3_hover():
    tokens = [[["<s>", "a", "b"], ["c", "d", "e"], ["f", "g", "h"]],
              [["x", "y", "z"], ["c", "d", "e"], ["f", "g", "h"]]]  # 2 layers × 3 positions × top 3
    probs = np.tile(np.array([0.5, 0.3, 0.1]), (2, 3, 1))
    probs[1, 0, 0] = 0.9
    fig = lens_heatmap(tokens, probs, ["<s>", "␣the", "␣the"])
    heat = fig.data[0]
    assert fig.layout.yaxis.autorange == "reversed"  # layer 0 on top
    assert list(fig.layout.yaxis.ticktext) == ["layer 0", "layer 1"]
    assert list(fig.layout.xaxis.ticktext) == ["0: &lt;s&gt;", "1: ␣the", "2: ␣the"]  # repeats kept apart
    assert np.asarray(heat.z)[1, 0] == np.float32(0.9) and heat.zmin == 0 and heat.zmax == 1
    assert heat.text[0][0] == "&lt;s&gt;" and heat.text[1][0] == "x"  # escaped so plotly prints "<s>" literally
    assert heat.texttemplate == "%{text}"
    guesses, hover = heat.customdata[1][0][:3], heat.customdata[1][0][3]  # the top 3 whole, then the hover text
    assert list(guesses) == ["x", "y", "z"] and heat.meta["customdata"] == ["guess 1", "guess 2", "guess 3"]
    assert "1. x  90.0%" in hover and "3. z  10.0%" in hover and heat.hovertemplate.startswith("%{customdata[3]}")
    window = lens_heatmap(tokens, probs, ["a", "b", "c"], first_position=30)
    assert window.data[0].customdata[0][2][3].startswith("after layer 0, position 32 (c)")  # real positions
    assert list(window.layout.xaxis.ticktext) == ["30: a", "31: b", "32: c"]
    assert "residual stream" in fig.layout.yaxis.title.text and "position" in fig.layout.xaxis.title.text


def test_rank_chart_log_scale_best_on_top():
    fig = rank_chart(np.array([300, 12, 1]), np.array([0.001, 0.05, 0.8]), target_token="␣cat",
                     position_label="2 (␣the)")
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.autorange == "reversed"
    assert list(fig.data[0].y) == [300, 12, 1] and list(fig.data[0].x) == [0, 1, 2]
    assert list(fig.layout.yaxis.tickvals) == [1, 2, 5, 10, 20, 50, 100, 200, 500]  # 1-2-5 steps past the worst
    assert "␣cat" in fig.layout.title.text and "rank" in fig.layout.yaxis.title.text


def test_page_renders_and_position_changes_the_rank_chart():
    at = open_page("pages/logit_lens.py")
    assert not at.exception and not at.error
    specs = chart_specs(at)
    assert len(specs) == 2
    positions = len(at.selectbox(key="view.logit_lens.position").options)
    assert array(specs[0]["data"][0]["z"]).shape == (5, min(positions, MAX_POSITIONS_PER_VIEW))  # 5 layers
    assert at.selectbox(key="view.logit_lens.position").value == positions - 1  # default: the last token
    last_title = specs[1]["layout"]["title"]["text"]

    at.selectbox(key="view.logit_lens.position").set_value(1)
    at.run()
    assert not at.exception
    title = chart_specs(at)[1]["layout"]["title"]["text"]
    assert title != last_title and "at position 1 (" in title


def test_page_for_qwen3(tiny_folder):
    at = open_page("pages/logit_lens.py", tiny_folder("qwen3-qknorm"))
    assert not at.exception and not at.error
    assert array(chart_specs(at)[0]["data"][0]["z"]).shape[0] == 2  # the tiny model's 2 layers
