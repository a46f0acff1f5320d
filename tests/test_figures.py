"""Figures of a long prompt stay light and readable: one label per row or column (not per cell), float32 typed
arrays, pooling beyond a readable size that the chart states, blank masked cells, and CSV exports of the result."""

import base64
import io
import json

import numpy as np
import pandas as pd
import pytest

from explorer.analysis.rope import DistanceScores, distance_profile
from explorer.export import HEADER_LINES, figure_csv
from explorer.figures import attention, compare, lessons, norms, rope
from explorer.figures.common import GAP, MAX_CELLS, mark_continuation, pool, token_heatmap

LIMIT = 2_000_000  # bytes of JSON a chart may send at T = 512
T = 512
TOKENS = ["<s>", "␣the", "␣cat", "␣the"]  # a repeated token: labels must not merge


def tokens(n: int) -> list[str]:
    return ["<s>"] + [f"␣w{i % 50}" for i in range(1, n)]  # repeats, like real text


def causal(*lead: int, n: int, seed: int = 0) -> np.ndarray:
    """Random attention patterns (..., n, n): rows sum to 1, NaN above the diagonal (masked future keys)."""
    p = np.random.default_rng(seed).random((*lead, n, n)).astype(np.float32)
    p[..., np.triu_indices(n, 1)[0], np.triu_indices(n, 1)[1]] = np.nan
    return p / np.nansum(p, -1, keepdims=True)


def runs(labels, copy: int) -> list[int]:
    """Indices of a tiled axis's labels that belong to copy `copy` (it carries `copy` zero-width marks)."""
    return [i for i, name in enumerate(labels) if name.rstrip(GAP) and len(name) - len(name.rstrip(GAP)) == copy]


def notes(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations if a.xref == "paper"]


# --- every T-sized chart stays under the limit at T = 512, on the real models' shapes ---

RNG = np.random.default_rng(0)
DEPTH = [f"block {i} in" for i in range(28)] + ["block 27 out"]  # Qwen3-0.6B: 28 layers
NORMS = [f"L{i // 2} {'input' if i % 2 == 0 else 'post'}" for i in range(56)] + ["final norm"]
QUERY, KEY = np.tril_indices(T)
PROFILE = distance_profile(DistanceScores(QUERY, KEY, QUERY - KEY, RNG.normal(size=len(QUERY))))
BUILDERS = {
    "head_grid Qwen3-0.6B (16 over 8 KV heads)": lambda: attention.head_grid(causal(8, 2, n=T), tokens(T), title="t"),
    "head_grid stories260K (8 over 4 KV heads)": lambda: attention.head_grid(causal(4, 2, n=T), tokens(T), title="t"),
    "head_grid Llama-3.2-1B (32 over 8 KV heads)": lambda: attention.head_grid(causal(8, 4, n=T), tokens(T), title="t"),
    "head_matrix pattern": lambda: attention.head_matrix(causal(n=T), tokens(T), scores=False, title="t"),
    "head_matrix scores": lambda: attention.head_matrix(RNG.normal(size=(T, T)), tokens(T), scores=True, title="t"),
    "residual_norm_heatmap": lambda: norms.residual_norm_heatmap(RNG.random((29, T)) + 1, DEPTH, tokens(T), log=True),
    "inverse_rms_heatmap": lambda: norms.inverse_rms_heatmap(RNG.random((57, T)), NORMS, tokens(T)),
    "gain_heatmap (hidden 1024)": lambda: norms.gain_heatmap(RNG.random((57, 1024)), NORMS, [(1, 2)]),
    "mean_over_rms_heatmap": lambda: lessons.mean_over_rms_heatmap(RNG.normal(size=(29, T)), DEPTH, tokens(T)),
    "angle_heatmap (head_dim 128)": lambda: rope.angle_heatmap(RNG.random((T, 64)) * 6, tokens(T),
                                                               np.geomspace(1, 1e-6, 64)),
    "distance_bands": lambda: rope.distance_bands(PROFILE, np.arange(201), RNG.normal(size=201), 200 - np.arange(201),
                                                  tokens(T), 200),
    "qk_norm_boxes": lambda: compare.qk_norm_boxes({"before QK-norm": (RNG.random((16, T)), RNG.random((8, T))),
                                                    "after QK-norm": (RNG.random((16, T)), RNG.random((8, T)))},
                                                   2, title="t"),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_chart_at_512_tokens_sends_under_two_megabytes_of_typed_arrays(name):
    fig = BUILDERS[name]()
    sent = fig.to_json()
    assert len(sent) < LIMIT
    data = json.loads(sent)["data"]
    assert data[0].get("z", data[0].get("y"))["dtype"] == "f4", "values travel as float32 typed arrays, not text"
    for trace in data:
        for key in ("z", "y", "x", "customdata", "text", "hovertext"):
            if isinstance(trace.get(key), dict):
                assert trace[key]["dtype"] != "f8", key
            elif isinstance(trace.get(key), list):  # text: one entry per row, column, or point of one row at most
                assert len(trace[key]) <= 2 * T + 1, key


# --- hover, labels, orientation ---


def test_token_heatmap_hover_reads_both_tokens_and_the_value_from_the_axes():
    fig = token_heatmap(np.arange(16.0).reshape(4, 4), TOKENS, TOKENS, value_name="w")
    heatmap = fig.data[0]
    assert heatmap.customdata is None and heatmap.text is None  # nothing per cell
    assert list(heatmap.x) == list(heatmap.y) == ["0: &lt;s&gt;", "1: ␣the", "2: ␣cat", "3: ␣the"]  # apart
    assert heatmap.hovertemplate.startswith("query token %{y}<br>key token %{x}<br>w %{z")
    assert fig.layout.xaxis.type == fig.layout.yaxis.type == "category"
    assert fig.layout.yaxis.autorange == "reversed"  # first row on top
    assert list(fig.layout.xaxis.ticktext) == list(heatmap.x)  # hover and tick label read the same
    assert np.asarray(heatmap.z).dtype == np.float32 and not notes(fig)


def test_depth_labels_are_not_numbered_unless_they_repeat():
    fig = token_heatmap(np.ones((2, 2)), ["block 0 in", "block 0 out"], TOKENS[:2], value_name="w",
                        number_rows=False)
    assert list(fig.data[0].y) == ["block 0 in", "block 0 out"]
    repeated = token_heatmap(np.ones((2, 2)), ["a", "a"], TOKENS[:2], value_name="w", number_rows=False)
    assert list(repeated.data[0].y) == ["0: a", "1: a"]  # a category axis would merge them


def test_masked_cells_stay_nan_in_the_typed_array():
    fig = attention.head_matrix(causal(n=4), TOKENS, scores=False, title="t")
    z = np.asarray(fig.data[0].z)
    assert np.isnan(z[0, 1:]).all() and not np.isnan(np.tril(z)).any()
    assert fig.data[0].hoverongaps is False  # a blank cell has nothing to say
    spec = json.loads(fig.to_json())["data"][0]["z"]
    sent = np.frombuffer(base64.b64decode(spec["bdata"]), np.float32).reshape(4, 4)
    np.testing.assert_array_equal(np.isnan(sent), np.isnan(z))


# --- pooling beyond a readable size ---


def test_pool_takes_block_means_or_maxima_and_keeps_all_masked_blocks_blank():
    values = np.array([[1.0, np.nan, np.nan], [2.0, 4.0, np.nan], [3.0, 5.0, 6.0]])
    np.testing.assert_array_equal(pool(values, 2, 2, "max"), [[4.0, np.nan], [5.0, 6.0]])
    np.testing.assert_allclose(pool(values, 2, 2, "mean"), [[7 / 3, np.nan], [4.0, 6.0]])
    assert pool(values, 1, 1).dtype == np.float32


def test_long_prompt_is_pooled_and_the_chart_and_hover_say_how():
    n = 2 * MAX_CELLS + 10  # three positions per cell
    fig = attention.head_matrix(causal(n=n), tokens(n), scores=False, title="t")
    heatmap = fig.data[0]
    z = np.asarray(heatmap.z)
    assert z.shape == (MAX_CELLS - 82, MAX_CELLS - 82)  # ceil(522 / 3) = 174 cells a side
    assert notes(fig) == ["each cell: max over 3 × 3 tokens"]
    assert "(each cell: max over 3 × 3 tokens)" in heatmap.hovertemplate
    assert heatmap.x[0] == "0–2: &lt;s&gt; … ␣w2" and heatmap.x[-1] == "519–521: ␣w19 … ␣w21"
    assert np.isnan(z[0, 1:]).all() and not np.isnan(np.diag(z)).any()  # a diagonal block has visible cells


def test_scores_are_pooled_by_mean_and_short_axes_are_left_alone():
    fig = norms.inverse_rms_heatmap(np.ones((3, 600)), ["a", "b", "c"], tokens(600))
    assert np.asarray(fig.data[0].z).shape == (3, 200)  # only the long axis is pooled
    assert notes(fig) == ["each column: mean over 3 tokens"]


def test_angle_heatmap_keeps_every_kth_position_rather_than_averaging_angles():
    inv_freq = np.array([1.0, 0.1])
    angles = np.mod(np.arange(600)[:, None] * inv_freq, 2 * np.pi)
    fig = rope.angle_heatmap(angles, tokens(600), inv_freq)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (2, 200) and z[0, 1] == pytest.approx(3.0)  # position 3, turned by 3 × 1 rad
    assert list(fig.data[0].x[:2]) == ["0: &lt;s&gt;", "3: ␣w3"]
    assert list(fig.data[0].y) == ["0: ω = 1", "1: ω = 0.1"]
    assert notes(fig) == ["one column every 3 positions"]
    assert "pair %{y}" in fig.data[0].hovertemplate and "position %{x}" in fig.data[0].hovertemplate


# --- the head grid: one heatmap ---


def test_head_grid_is_one_heatmap_one_row_per_kv_group_in_head_order():
    grouped = causal(3, 2, n=4)  # 6 query heads over 3 KV heads
    fig = attention.head_grid(grouped, TOKENS, title="layer 0")
    assert [a.text for a in fig.layout.annotations] == ["head 0 (KV 0)", "head 1 (KV 0)", "head 2 (KV 1)",
                                                        "head 3 (KV 1)", "head 4 (KV 2)", "head 5 (KV 2)"]
    (heatmap,) = fig.data
    z, heads = np.asarray(heatmap.z), np.asarray(heatmap.customdata)
    for g in range(3):
        for m in range(2):
            block = np.ix_(runs(heatmap.y, g), runs(heatmap.x, m))
            np.testing.assert_array_equal(z[block], grouped[g, m])  # NaN where the mask is
            assert (heads[block] == (2 * g + m, g)).all()
    assert [heatmap.y[i].rstrip(GAP) for i in runs(heatmap.y, 2)] == ["0: &lt;s&gt;", "1: ␣the", "2: ␣cat",
                                                                       "3: ␣the"]
    gaps = [i for i, name in enumerate(heatmap.x) if not name.rstrip(GAP)]
    assert gaps and np.isnan(z[:, gaps]).all() and len(set(heatmap.x)) == len(heatmap.x)
    # Row g sits above row g + 1 and every head reads like a matrix; hover names head, KV head, both tokens, value.
    assert fig.layout.yaxis.autorange == "reversed" and runs(heatmap.y, 0)[0] < runs(heatmap.y, 1)[0]
    assert heatmap.hovertemplate.startswith("head %{customdata[0]} (KV %{customdata[1]})<br>query token %{y}<br>"
                                            "key token %{x}<br>attention weight %{z")
    assert (heatmap.zmin, heatmap.zmax) == (0, 1)
    assert list(fig.layout.xaxis.ticktext) == ["0: &lt;s&gt;", "1: ␣the", "2: ␣cat", "3: ␣the"] * 2
    assert fig.layout.xaxis.title.text == "key token" and fig.layout.yaxis.title.text == "query token"


def test_head_grid_of_a_long_prompt_pools_by_max_and_says_so():
    fig = BUILDERS["head_grid Qwen3-0.6B (16 over 8 KV heads)"]()
    heatmap = fig.data[0]
    assert notes(fig) == ["each cell: max over 6 × 6 tokens"] and "max over 6 × 6" in heatmap.hovertemplate
    assert len(runs(heatmap.x, 0)) == 86 and heatmap.x[0] == "0–5: &lt;s&gt; … ␣w5"  # ceil(512 / 6)
    assert len(fig.layout.annotations) == 16 + 1


def test_a_window_of_queries_is_numbered_by_its_place_among_the_keys():
    window = causal(2, 1, n=4)[:, :, 2:]  # queries 2 and 3 of 4, against the keys they see
    fig = attention.head_grid(window, TOKENS[2:], key_tokens=TOKENS, title="t")
    heatmap = fig.data[0]
    assert [heatmap.y[i] for i in runs(heatmap.y, 0)] == ["2: ␣cat", "3: ␣the"]
    assert [heatmap.x[i] for i in runs(heatmap.x, 0)] == ["0: &lt;s&gt;", "1: ␣the", "2: ␣cat", "3: ␣the"]
    np.testing.assert_array_equal(np.asarray(heatmap.z)[np.ix_(runs(heatmap.y, 1), runs(heatmap.x, 0))], window[1, 0])
    one = attention.head_matrix(window[0, 0], TOKENS[2:], scores=False, key_tokens=TOKENS, title="t")
    assert list(one.data[0].y) == ["2: ␣cat", "3: ␣the"] and len(one.data[0].x) == 4
    keys = tokens(1200)
    long = attention.head_grid(causal(1, 1, n=1200)[:, :, -100:], keys[-100:], key_tokens=keys, title="t")
    assert notes(long) == ["each column: max over 10 tokens"]  # 100 queries fit; 1200 keys do not
    assert runs(long.data[0].y, 0)[0] == 9 and long.data[0].y[9] == "1100: ␣w0"  # below the head label's room


# --- CSV export of the new structures ---


def test_csv_of_head_grid_has_one_row_per_cell_of_each_head_with_its_tokens():
    grouped = causal(2, 2, n=3)
    table = read_csv(figure_csv(attention.head_grid(grouped, TOKENS[:3], title="t")))
    assert list(table.columns) == ["query_pos", "query_token", "key_pos", "key_token", "attention_weight", "head",
                                   "kv_head"]
    assert len(table) == 4 * 3 * 3  # no separator rows or columns
    assert table["head"].tolist() == sorted(table["head"])  # head by head, each matrix row by row
    cell = table[(table["head"] == 3) & (table.query_pos == 2) & (table.key_token == "<s>")]
    assert cell.query_token.item() == "␣cat" and cell.kv_head.item() == 1
    assert cell.attention_weight.item() == pytest.approx(grouped[1, 1, 2, 0])
    assert table.attention_weight.isna().sum() == 4 * 3  # the masked cells, blank


def test_csv_of_head_summary_heatmap_joins_the_two_level_axis():
    values = np.arange(6.0).reshape(2, 3)  # 2 layers, 3 query heads over 3 KV heads
    fig = attention.head_summary_heatmap(values, 3, title="t", value_name="nats")
    table = read_csv(figure_csv(fig))
    heads = table.columns[1]
    assert list(table[heads][:3]) == ["KV 0 / h0", "KV 1 / h1", "KV 2 / h2"]
    assert table.loc[(table.layer == 1) & (table[heads] == "KV 2 / h2"), "nats"].item() == 5.0


def read_csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), skiprows=HEADER_LINES)


def _boundary_lines(fig) -> list[tuple[str, float]]:
    """(axis, category coordinate) of each dashed line mark_continuation drew: a line across the y domain marks
    a column (x), one across the x domain a row (y)."""
    return sorted(("x", shape.x0) if shape.yref.endswith("domain") else ("y", shape.y0)
                  for shape in fig.layout.shapes if shape.line.dash == "dash")


def test_continuation_line_falls_between_the_last_prompt_token_and_the_first_generated_one():
    tokens = [f"t{i}" for i in range(10)]
    fig = mark_continuation(token_heatmap(np.ones((10, 10)), tokens, tokens, value_name="v"), 6)
    assert _boundary_lines(fig) == [("x", 5.5), ("y", 5.5)]
    # Rows that are no positions (layers) get no line; a continuation past the shown positions none either.
    fig = token_heatmap(np.ones((3, 10)), ["layer 0", "layer 1", "layer 2"], tokens, value_name="v",
                        number_rows=False)
    assert _boundary_lines(mark_continuation(fig, 6)) == [("x", 5.5)]
    assert _boundary_lines(mark_continuation(token_heatmap(np.ones((10, 10)), tokens, tokens, value_name="v"),
                                             10)) == []


def test_continuation_line_is_drawn_in_every_tile_of_the_head_grid_and_after_a_pooled_block():
    grouped = np.random.default_rng(0).random((2, 2, 6, 6))
    tokens = [f"t{i}" for i in range(6)]
    fig = mark_continuation(attention.head_grid(grouped, tokens, title="grid"), 4)
    x = fig.data[0].x
    lines = _boundary_lines(fig)
    # One vertical line per head column, one horizontal per KV row, each just before position 4's cell.
    assert [axis for axis, _ in lines] == ["x", "x", "y", "y"]
    for axis, at in lines:
        labels = x if axis == "x" else fig.data[0].y
        assert labels[int(at + 0.5)].startswith("4: ") and labels[int(at - 0.5)].startswith("3: ")
    long = [f"t{i}" for i in range(1000)]  # pooled by blocks of 4: the block 500-503 holds the boundary 501
    fig = mark_continuation(token_heatmap(np.ones((1, 1000)), ["row"], long, value_name="v", number_rows=False), 501)
    (line,) = _boundary_lines(fig)
    assert fig.data[0].x[int(line[1] + 0.5)].startswith("504–507: ")
