"""RoPE page: analysis on hand-made traces and the bundled model, figure orientation and labels, the page in AppTest."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.analysis import rope as analysis
from explorer.figures import rope as figures
from explorer.trace import Trace, trace
from model import ModelConfig, load_model
from model.rope import cos_sin, inv_freq_scaled, inv_freq_unscaled, llama3_bands

from .apptest_helpers import chart_specs, open_page
from .conftest import BUNDLED, LLAMA3_SCALING

TOKENS = ["<s>", "␣the", "␣cat", "␣the"]  # a repeated token: positions must stay apart


def bundled_config(**overrides) -> ModelConfig:
    d = json.loads((BUNDLED / "config.json").read_text())
    return ModelConfig.from_dict({**d, **overrides})


def synthetic_trace(tensors: dict[str, torch.Tensor], config: ModelConfig | None = None) -> Trace:
    return Trace(tensors, torch.zeros(1, len(TOKENS), dtype=torch.long), TOKENS, config or bundled_config())


def rope_tables(config: ModelConfig, T: int) -> dict[str, torch.Tensor]:
    inv = inv_freq_scaled(config.head_dim, config.rope_theta, config.rope_scaling)
    cos, sin = cos_sin(inv, torch.arange(T))
    return {"rope.inv_freq": inv, "rope.inv_freq_unscaled": inv_freq_unscaled(config.head_dim, config.rope_theta),
            "rope.cos": cos, "rope.sin": sin}


@pytest.fixture(scope="module")
def bundled_trace() -> Trace:
    model = load_model(str(BUNDLED))
    ids = torch.tensor([[1, 403, 407, 261, 378, 403, 407, 30]])
    return trace(model, ids)


def chart_titled(at: AppTest, start: str) -> dict:
    return next(s for s in chart_specs(at) if s["layout"].get("title", {}).get("text", "").startswith(start))


def pair_planes_chart(at: AppTest) -> dict:
    return next(s for s in chart_specs(at) if any("turned by" in a.get("text", "")
                                                  for a in s["layout"].get("annotations", [])))


# ---- analysis ----

def test_the_input_of_rope_is_after_qk_norm_where_there_is_one():
    assert analysis.rope_input(bundled_config()) == ("q", "k")
    assert analysis.rope_input(bundled_config(model_type="qwen3")) == ("q_normed", "k_normed")


def test_spectrum_llama3_bands_and_limits():
    config = bundled_config(head_dim=16, rope_theta=500000.0, rope_scaling=LLAMA3_SCALING)
    spec = analysis.spectrum(synthetic_trace(rope_tables(config, 4), config))
    unscaled = inv_freq_unscaled(16, 500000.0)
    np.testing.assert_array_equal(spec.bands, llama3_bands(unscaled, config.rope_scaling).numpy())
    assert spec.bands[0] == 0 and spec.bands[-1] == 2  # fastest kept, slowest divided
    np.testing.assert_allclose(spec.inv_freq[-1], unscaled[-1].item() / 8.0, rtol=1e-6)
    np.testing.assert_allclose(spec.wavelength, 2 * np.pi / spec.inv_freq)
    assert spec.llama3_wavelength_limits() == (32 / 4.0, 32 / 1.0)


def test_spectrum_without_scaling_has_no_bands():
    spec = analysis.spectrum(synthetic_trace(rope_tables(bundled_config(), 4)))
    assert spec.bands is None and spec.llama3_wavelength_limits() is None
    np.testing.assert_allclose(spec.inv_freq, [1.0, 0.1, 0.01, 0.001], rtol=1e-6)  # 10000^(-2i/8)


def test_rotation_angles_are_position_times_inv_freq_wrapped():
    angles = analysis.rotation_angles(synthetic_trace(rope_tables(bundled_config(), 8)))
    assert angles.shape == (8, 4)
    assert angles[3, 0] == pytest.approx(3.0, abs=1e-5)
    assert angles[7, 0] == pytest.approx(7.0 - 2 * np.pi, abs=1e-5)  # wrapped into [0, 2π)
    assert angles[5, 1] == pytest.approx(0.5, abs=1e-5)
    assert (angles >= 0).all() and (angles < 2 * np.pi).all()


def test_pair_coordinates_split_halves():
    x = np.arange(8.0)
    np.testing.assert_array_equal(analysis.pair_coordinates(x, [0, 3]), [[0.0, 4.0], [3.0, 7.0]])
    assert analysis.default_pairs(8) == [0, 2, 3]
    assert analysis.default_pairs(128) == [0, 32, 63]


def test_head_vectors_use_the_kv_head_of_the_query_head():
    T, dh = len(TOKENS), 8  # 8 query heads over 4 KV heads: G = 2
    q = torch.arange(8.0)[None, :, None, None].expand(1, 8, T, dh)
    k = torch.arange(4.0)[None, :, None, None].expand(1, 4, T, dh)
    tensors = {f"layers.1.self_attn.{n}": x for n, x in (("q", q), ("q_rot", -q), ("k", k), ("k_rot", -k))}
    v = analysis.head_vectors(synthetic_trace(tensors), 1, 5, 2)
    assert v["q"][0] == 5 and v["q_rot"][0] == -5
    assert v["k"][0] == 2 and v["k_rot"][0] == -2  # head 5 reads KV head 5 // 2


def test_captured_rotation_turns_each_pair_by_position_times_inv_freq(bundled_trace):
    inv = bundled_trace["rope.inv_freq"].numpy()
    for m in (0, 3, 7):
        v = analysis.head_vectors(bundled_trace, 2, 3, m)
        for i in range(4):
            a = m * inv[i]
            x, y = analysis.pair_coordinates(v["q"], [i])[0]
            expected = [x * math.cos(a) - y * math.sin(a), x * math.sin(a) + y * math.cos(a)]
            np.testing.assert_allclose(analysis.pair_coordinates(v["q_rot"], [i])[0], expected, atol=1e-5)


def test_scores_by_distance_by_hand():
    config = bundled_config()
    q = torch.zeros(1, 8, 3, 8)
    k = torch.zeros(1, 4, 3, 8)
    q[0, 2, 2, 0] = 2.0  # query head 2 at position 2
    k[0, 1, 0, 0] = 3.0  # KV head 1 (read by query heads 2 and 3) at position 0
    t = Trace({"layers.0.self_attn.q_rot": q, "layers.0.self_attn.k_rot": k}, torch.zeros(1, 3, dtype=torch.long),
              TOKENS[:3], config)
    d = analysis.scores_by_distance(t, 0, 2)
    assert len(d.score) == 6  # causal pairs of 3 positions
    np.testing.assert_array_equal(d.distance, d.query - d.key)
    assert (d.key <= d.query).all()
    hit = (d.query == 2) & (d.key == 0)
    assert d.distance[hit][0] == 2 and d.score[hit][0] == pytest.approx(6.0 / math.sqrt(8))
    assert np.count_nonzero(d.score) == 1


def test_shifting_both_positions_keeps_the_model_score(bundled_trace):
    m, n = 6, 2
    q, k = analysis.head_vectors(bundled_trace, 1, 4, m), analysis.head_vectors(bundled_trace, 1, 4, n)
    model_score = analysis.rotated_score(bundled_trace, 1, 4, m, n)
    assert model_score == pytest.approx(float(np.dot(q["q_rot"], k["k_rot"])) / math.sqrt(8))
    shifts = analysis.shifts_within(100)
    np.testing.assert_array_equal(shifts, [0, 1, 2, 4, 8, 16, 32, 64])
    table = analysis.shifted_scores(q["q"], k["k"], bundled_trace["rope.inv_freq"].numpy(), m, n, shifts)
    assert list(table["positions (m+s, n+s)"][:2]) == ["(6, 2)", "(7, 3)"]
    np.testing.assert_allclose(table["both shifted"], model_score, atol=1e-5)
    assert table["query only shifted"][0] == pytest.approx(model_score, abs=1e-5)
    assert np.ptp(table["query only shifted"]) > 1e-3  # moving one side changes the score


def test_shifts_within_small_limits():
    np.testing.assert_array_equal(analysis.shifts_within(0), [0])
    np.testing.assert_array_equal(analysis.shifts_within(1), [0, 1])


def test_top_tokens_and_causal_pattern():
    logits = torch.zeros(6)
    logits[4], logits[1] = 3.0, 2.0
    ids, probs = analysis.top_tokens(logits, k=2)
    assert ids == [4, 1]
    np.testing.assert_allclose(probs, torch.softmax(logits, -1)[[4, 1]].numpy(), rtol=1e-6)
    p = torch.full((1, 8, 3, 3), 0.25)
    pattern = analysis.causal_pattern(synthetic_trace({"layers.0.self_attn.pattern": p}), 0, 1)
    assert np.isnan(pattern[0, 1]) and np.isnan(pattern[1, 2]) and pattern[2, 0] == 0.25


def test_compare_top_tokens_side_by_side():
    class Letters:  # a stand-in tokenizer: id -> letter
        def tokens(self, ids):
            return ["abcdef"[i] for i in ids]

    a, b = torch.zeros(6), torch.zeros(6)
    a[4], b[2] = 5.0, 5.0
    table = analysis.compare_top_tokens({"own": SimpleNamespace(last_logits=a), "new": SimpleNamespace(last_logits=b)},
                                        Letters(), k=3)
    assert list(table.columns) == ["own: next token", "own: probability", "new: next token", "new: probability"]
    assert table.index.name == "rank" and list(table.index) == [1, 2, 3]
    assert table["own: next token"][1] == "e" and table["new: next token"][1] == "c"


# ---- figures ----

def test_spectrum_figure_log_axis_bands_and_reference_lines():
    config = bundled_config(head_dim=16, rope_theta=500000.0, rope_scaling=LLAMA3_SCALING)
    spec = analysis.spectrum(synthetic_trace(rope_tables(config, 4), config))
    fig = figures.spectrum_figure(spec.inv_freq, spec.inv_freq_unscaled, spec.bands, analysis.BAND_NAMES, 20,
                                  spec.llama3_wavelength_limits())
    assert fig.layout.yaxis.type == "log"
    assert "rad/token" in fig.layout.yaxis.title.text and "pair" in fig.layout.xaxis.title.text
    names = [tr.name for tr in fig.data]
    assert names[0].startswith("unscaled") and "scaled: kept" in names and "scaled: divided by factor" in names
    turn = next(tr for tr in fig.data if tr.name.startswith("one full turn"))
    assert turn.y[0] == pytest.approx(2 * np.pi / 20)
    assert "wavelength" in fig.data[1].hovertemplate
    kept = next(tr for tr in fig.data if tr.name == "scaled: kept")
    np.testing.assert_allclose(kept.customdata, 2 * np.pi / np.asarray(kept.y))  # wavelength in the hover


def test_spectrum_figure_single_spectrum():
    fig = figures.spectrum_figure(np.array([1.0, 0.1]))
    assert [tr.name for tr in fig.data] == ["used by the model"]


def test_angle_heatmap_pairs_down_positions_across_with_tokens():
    angles = np.mod(np.arange(4)[:, None] * np.array([1.0, 0.1]), 2 * np.pi)  # (T, pairs)
    fig = figures.angle_heatmap(angles, TOKENS, np.array([1.0, 0.1]))
    z = np.asarray(fig.data[0].z)
    assert z.shape == (2, 4) and z[0, 3] == pytest.approx(3.0)
    assert fig.layout.yaxis.autorange == "reversed"  # fastest pair on top
    assert list(fig.layout.xaxis.tickvals) == [0, 1, 2, 3]  # repeated "␣the" stays two positions
    assert list(fig.layout.xaxis.ticktext) == ["0: &lt;s&gt;", "1: ␣the", "2: ␣cat", "3: ␣the"]
    assert (fig.data[0].zmin, fig.data[0].zmax) == (0, pytest.approx(2 * np.pi))
    assert "mod 2π" in fig.data[0].colorbar.title.text and "position" in fig.layout.xaxis.title.text


def test_pair_planes_draw_before_and_after_arrows_per_pair():
    before = {"q": np.array([[1.0, 0.0], [0.0, 2.0]]), "k": np.array([[0.5, 0.5], [1.0, 1.0]])}
    after = {"q": np.array([[0.0, 1.0], [-2.0, 0.0]]), "k": np.array([[-0.5, 0.5], [-1.0, 1.0]])}
    fig = figures.pair_planes(before, after, [0, 3], np.array([1.0, 0.5, 0.25, 0.125]), 4)
    assert len(fig.data) == 8  # 2 pairs × (q, k) × (before, after)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0].startswith("pair 0: ω = 1") and titles[1].startswith("pair 3: ω = 0.125")
    assert "4·ω = 0.50 rad" in titles[1]
    q_after_pair3 = next(tr for tr in fig.data if tr.name == "q after RoPE" and tr.xaxis == "x2")
    assert list(q_after_pair3.x) == [0, -2.0] and list(q_after_pair3.y) == [0, 0.0]
    assert fig.layout.yaxis2.scaleanchor == "x2"  # equal aspect: a rotation looks like one


def test_distance_profile_by_hand():
    # distance 0: scores 3, 1, 2 (sorted 1, 2, 3); distance 1: 5, 4; distance 3: 7
    d = analysis.DistanceScores(query=np.array([0, 1, 2, 1, 2, 3]), key=np.array([0, 1, 2, 0, 1, 0]),
                                distance=np.array([0, 0, 0, 1, 1, 3]), score=np.array([3.0, 1, 2, 5, 4, 7]))
    p = analysis.distance_profile(d)
    assert list(p.distance) == [0, 1, 3] and list(p.count) == [3, 2, 1]
    assert list(p.low) == [1, 4, 7] and list(p.high) == [3, 5, 7] and list(p.median) == [2, 4, 7]
    assert (p.low <= p.p10).all() and (p.p10 <= p.median).all() and (p.median <= p.p90).all()
    assert (p.p90 <= p.high).all()


def test_distance_bands_highlight_the_query_and_escape_tokens():
    query, key = np.array([0, 1, 1, 2]), np.array([0, 0, 1, 0])
    d = analysis.DistanceScores(query, key, query - key, np.array([1.0, 2.0, 3.0, 4.0]))
    mine = d.query == 1
    fig = figures.distance_bands(analysis.distance_profile(d), d.distance[mine], d.score[mine], d.key[mine], TOKENS, 1)
    names = [tr.name for tr in fig.data]
    assert {"all scores", "middle 80%", "median", "query 1: ␣the"} <= set(names)
    query_line = fig.data[names.index("query 1: ␣the")]
    assert list(query_line.x) == [1, 0] and list(query_line.y) == [2.0, 3.0]
    assert "&lt;s&gt;" in query_line.customdata[0]  # key 0 is "<s>", shown, not read as HTML
    median = fig.data[names.index("median")]
    assert list(median.x) == [0, 1, 2] and "scores" in median.hovertemplate
    assert "m − n" in fig.layout.xaxis.title.text and "√dh" in fig.layout.yaxis.title.text


def test_shift_figure_lines_and_axes():
    fig = figures.shift_figure(np.array([0, 1, 2]), {"both shifted": np.ones(3), "query only shifted": np.arange(3)})
    assert [tr.name for tr in fig.data] == ["both shifted", "query only shifted"]
    assert "shift s" in fig.layout.xaxis.title.text and fig.layout.xaxis.type == "category"


# ---- the page ----

def test_page_renders_and_controls_change_the_view():
    at = open_page("pages/rope.py")
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 6  # the θ what-if starts at the model's own θ: no second run, no change map
    assert any("no RoPE scaling" in c.value for c in at.caption)
    assert at.selectbox(key="view.rope.theta").value == 10_000.0
    angles = chart_titled(at, "Rotation angle")
    assert "0: &lt;s&gt;" in angles["layout"]["xaxis"]["ticktext"]  # "<s>" shown as text, not read as HTML

    before = pair_planes_chart(at)
    at.selectbox(key="view.rope.token").set_value(3).run()
    assert not at.exception
    after = pair_planes_chart(at)
    assert after["data"] != before["data"]
    assert "turned by 3·ω" in after["layout"]["annotations"][0]["text"]

    assert list(at.dataframe[-1].value.columns) == ["θ = 10,000: next token", "θ = 10,000: probability"]
    at.selectbox(key="view.rope.theta").set_value(500_000.0).run()
    assert not at.exception and len(at.get("plotly_chart")) == 7  # now the change map too
    table = at.dataframe[-1].value
    assert "θ = 500,000: next token" in table.columns
    assert not table.iloc[:, 3].equals(table.iloc[:, 1])  # other θ, other probabilities


@pytest.mark.parametrize("variant", ["qwen3-qknorm", "llama-gqa-llama3"])
def test_page_works_for_other_families(tiny_folder, variant):
    at = open_page("pages/rope.py", tiny_folder(variant))
    assert not at.exception and not at.error
    spectrum = chart_titled(at, "RoPE frequency spectrum")
    names = [tr["name"] for tr in spectrum["data"]]
    if variant == "llama-gqa-llama3":
        assert names[0].startswith("unscaled") and "scaled: kept" in names
        assert any(n.startswith("llama3: longer divided") for n in names)
    else:
        assert names[0] == "used by the model"
        assert any("QK-norm" in c.value for c in at.caption)
    planes = pair_planes_chart(at)
    assert len(planes["layout"]["annotations"]) == 3  # fastest, middle, slowest pair
