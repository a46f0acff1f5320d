"""Norms page: analysis on hand-made traces, figure orientation and labels, and the page in AppTest.

The synthetic trace here is shared with tests/test_swiglu_page.py."""

import numpy as np
import pytest
import torch

from explorer.analysis import norms as analysis
from explorer.figures import norms as figures
from explorer.trace import Trace
from model import ModelConfig, load_model

from .apptest_helpers import array, chart_specs, open_page
from .conftest import BUNDLED

TOKENS = ["<s>", "␣the", "␣cat", "␣the"]  # a repeated token: labels must not merge


def synthetic_trace(tensors: dict[str, torch.Tensor]) -> Trace:
    """A Trace of the bundled model's config (5 layers, D = 64) holding the given tensors."""
    config = ModelConfig.from_file(BUNDLED / "config.json")
    return Trace(tensors, torch.zeros(1, len(TOKENS), dtype=torch.long), TOKENS, config)


def test_residual_stream_rows_are_block_inputs_then_last_output():
    T, D = len(TOKENS), 64
    tensors = {f"layers.{i}.resid_pre": torch.full((1, T, D), float(i)) for i in range(5)}
    tensors["layers.4.resid_post"] = torch.full((1, T, D), 9.0)
    stream, labels = analysis.residual_stream(synthetic_trace(tensors))
    assert stream.shape == (6, T, D)
    assert labels == ["block 0 in", "block 1 in", "block 2 in", "block 3 in", "block 4 in", "block 4 out"]
    assert stream[3, 0, 0] == 3.0 and stream[5, 2, 7] == 9.0


def test_l2_norms_by_hand():
    stream = np.zeros((1, 2, 3))
    stream[0, 0] = [3.0, 4.0, 0.0]
    stream[0, 1] = [1.0, 2.0, 2.0]
    np.testing.assert_allclose(analysis.l2_norms(stream), [[5.0, 3.0]])


def test_inverse_rms_follows_forward_order():
    T = len(TOKENS)
    tensors = {"norm.rms": torch.full((1, T), 8.0)}
    for i in range(5):
        tensors[f"layers.{i}.input_layernorm.rms"] = torch.full((1, T), 1.0 + i)
        tensors[f"layers.{i}.post_attention_layernorm.rms"] = torch.full((1, T), 0.5)
    inv = analysis.inverse_rms(synthetic_trace(tensors))
    labels = [site.label for site in analysis.norm_sites(5)]
    assert inv.shape == (11, T)
    assert labels[:3] == ["L0 before attention", "L0 before MLP", "L1 before attention"]
    assert labels[-1] == "final norm"
    np.testing.assert_allclose(inv[:, 0], [1.0, 2.0, 1 / 2, 2.0, 1 / 3, 2.0, 1 / 4, 2.0, 1 / 5, 2.0, 1 / 8])


def test_gains_read_every_norm_weight():
    model = load_model("stories260K", device="cpu")
    g = analysis.gains(model)
    assert g.shape == (11, 64)
    np.testing.assert_array_equal(g[1], model.layers[0].post_attention_layernorm.weight.detach().numpy())
    np.testing.assert_array_equal(g[6], model.layers[3].input_layernorm.weight.detach().numpy())
    np.testing.assert_array_equal(g[-1], model.norm.weight.detach().numpy())


def test_gain_outliers_robust_z_by_hand():
    row = np.array([0.9, 1.0, 1.1, 0.95, 1.05, 1.0, 5.0])
    sites = analysis.norm_sites(1)  # L0 before attention, L0 before MLP, final norm
    gains = np.stack([np.ones(7), row, np.ones(7)])
    table = analysis.gain_outliers(gains, sites, k=4.0)
    # median 1.0, MAD 0.05, robust std 1.4826 * 0.05: only 5.0 is far; 0.9 is 1.35 robust stds away.
    assert len(table) == 1
    hit = table.iloc[0]
    assert (hit.row, hit.layer, hit.norm, hit.dim, hit.gain) == (1, "0", "post_attention_layernorm", 6, 5.0)
    assert hit["robust z"] == pytest.approx(4.0 / (1.4826 * 0.05))
    assert len(analysis.gain_outliers(gains, sites, k=1.0)) == 3  # also 0.9 and 1.1 at |z| = 1.35


def test_massive_activations_finds_the_spike():
    stream = np.ones((2, len(TOKENS), 5)) * 0.5
    stream[1, 2, 3] = -100.0
    table = analysis.massive_activations(stream, ["block 0 in", "block 0 out"], TOKENS)
    spike = table.iloc[1]
    assert (spike.token, spike.dim, spike.value) == ("2: ␣cat", 3, -100.0)
    assert spike["ratio to median"] == pytest.approx(200.0)
    assert table.iloc[0]["ratio to median"] == pytest.approx(1.0)


def test_residual_heatmap_reads_like_a_matrix_with_token_labels():
    norms = np.arange(12, dtype=float).reshape(3, 4) + 1
    fig = figures.residual_norm_heatmap(norms, ["block 0 in", "block 0 out", "x"], TOKENS)
    assert fig.layout.yaxis.autorange == "reversed"
    assert list(fig.layout.xaxis.ticktext) == ["0: &lt;s&gt;", "1: ␣the", "2: ␣cat", "3: ␣the"]  # escaped once
    assert list(fig.layout.yaxis.ticktext)[:2] == ["block 0 in", "block 0 out"]
    assert fig.layout.xaxis.title.text == "token" and "‖x‖₂" in fig.layout.title.text
    np.testing.assert_allclose(fig.data[0].z, norms)
    logged = figures.residual_norm_heatmap(norms, ["a", "b", "c"], TOKENS, log=True)
    np.testing.assert_allclose(logged.data[0].z, np.log10(norms))


def test_inverse_rms_heatmap_titles():
    fig = figures.inverse_rms_heatmap(np.ones((3, 4)), ["L0 input", "L0 post", "final norm"], TOKENS)
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.yaxis.title.text == "RMSNorm" and "1/rms" in fig.layout.title.text


def test_gain_heatmap_marks_outliers_and_centres_signed_gains():
    gains = np.array([[1.0, -2.0, 0.5], [0.3, 0.2, 4.0]])
    fig = figures.gain_heatmap(gains, ["L0 input", "final norm"], [(1, 2)])
    assert fig.layout.yaxis.autorange == "reversed"
    assert list(fig.layout.yaxis.ticktext) == ["L0 input", "final norm"]
    assert fig.layout.xaxis.title.text == "hidden dimension"
    assert fig.data[0].zmid == 0  # negative gains: white means zero
    assert list(fig.data[1].x) == [2] and list(fig.data[1].y) == ["final norm"]
    assert figures.gain_heatmap(np.abs(gains), ["a", "b"]).data[0].zmid is None


def test_massive_activation_chart_log_axis_and_ratio_labels():
    fig = figures.massive_activation_chart(["block 0 in", "block 0 out"], np.array([2.0, 500.0]),
                                           np.array([1.0, 0.5]), ["token 0: <s>, dimension 3"] * 2)
    assert fig.layout.yaxis.type == "log"
    assert list(fig.layout.yaxis.tickvals) == [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
    assert list(fig.data[0].text) == ["×2", "×1,000"]
    assert list(fig.data[1].y) == [1.0, 0.5]


def test_page_renders_and_threshold_changes_outliers():
    at = open_page("pages/norms.py")
    assert not at.exception and not at.error
    specs = chart_specs(at)
    assert len(specs) == 4
    residual = specs[0]["data"][0]
    assert array(residual["z"]).shape[0] == 6  # 5 block inputs + the last output
    assert "0: &lt;s&gt;" in specs[0]["layout"]["xaxis"]["ticktext"]

    def outliers_counted() -> int:  # from the caption under the gain heatmap: "N gain entries lie more than k ..."
        caption = next(c.value for c in at.caption if "gain entries lie more than" in c.value)
        return int(caption.split()[0])

    strict = outliers_counted()
    at.slider(key="view.norms.k").set_value(2.0).run()
    assert not at.exception
    assert outliers_counted() > strict
    assert len(chart_specs(at)[2]["data"]) == 2  # the circles marking them

    at.checkbox(key="view.norms.log").check().run()
    assert not at.exception
    assert "log₁₀" in chart_specs(at)[0]["layout"]["title"]["text"]


@pytest.mark.parametrize("variant", ["qwen3-qknorm", "llama-gqa-llama3"])
def test_page_works_for_other_families(tiny_folder, variant):
    at = open_page("pages/norms.py", tiny_folder(variant))
    assert not at.exception and not at.error
    specs = chart_specs(at)
    assert len(specs) == 4
    assert array(specs[2]["data"][0]["z"]).shape == (5, 64)  # 2 layers × 2 norms + final, D = 64


def test_the_massive_activation_verdict_follows_the_ratios():
    stream = np.ones((2, 3, 4))
    none = analysis.massive_activations(stream * [[[1, 1, 1, 12]]], ["block 0 in", "block 0 out"], ["a", "b", "c"])
    assert analysis.massive_verdict(none).startswith("This model has none: its largest value is 12 × the median")
    stream[1, 0, 2] = 5000.0  # one activation 5,000 × the median, on token 0, dimension 2
    found = analysis.massive_activations(stream, ["block 0 in", "block 0 out"], ["a", "b", "c"])
    verdict = analysis.massive_verdict(found)
    assert verdict.startswith("This model has them: at 1 of 2 depths") and "5,000 × the median (block 0 out, " \
        "token 0: a, dimension 2)" in verdict
