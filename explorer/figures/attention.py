"""Attention figures: every head of a layer grouped by shared KV head, one head large, per-head summaries."""

import math

import numpy as np
import plotly.graph_objects as go

from .common import (DIVERGING, GAP, LABEL_PX, SEQUENTIAL, add_note, axis_labels, block_size, category_axis, pool,
                     pooling_note, style, token_heatmap)

PATTERN_NAME = "attention weight"
SCORE_NAME = "score"


GRID_CELLS = 128_000  # cells of all heads of the grid together: about 1.3 MB at most as float32 values and head ids
HEAD_LABEL_PX = 22  # room above each row of maps for the heads' labels


def head_grid(grouped: np.ndarray, tokens: list[str], *, title: str, key_tokens: list[str] | None = None) -> go.Figure:
    """Small multiples of one layer's pattern, `grouped` (Hkv, G, Tq, Tk): one row per KV group, its G query heads
    side by side, on one shared 0..1 color scale. NaN cells (masked future keys) stay blank.

    `tokens` label the queries and `key_tokens` (default: the same) the keys; with fewer queries than keys, the
    queries are a window ending at the last key, and are numbered so. All heads are one heatmap: tiled into one
    matrix with blank (NaN) rows and columns between them, head labels as annotations, a head id per cell for hover.
    An axis with more positions than its ~panel / 2 px is pooled by block max, which keeps one-token lines (previous
    token, sinks) as bright as they are; the chart says so.
    """
    key_tokens = tokens if key_tokens is None else key_tokens
    n_groups, group_size, n_queries, n_keys = grouped.shape
    # Panels of about square size: narrower when many heads share a row, shorter when there are many rows.
    panel = int(np.clip(min(900 / group_size, 1500 / n_groups), 140, 260))
    limit = min(panel // 2, math.isqrt(GRID_CELLS // (n_groups * group_size)))
    row_block, col_block = block_size(n_queries, limit), block_size(n_keys, limit)
    pooled = pool(grouped, row_block, col_block, "max")
    rows, cols = pooled.shape[-2:]
    y_labels = axis_labels(tokens, row_block, first=n_keys - n_queries)
    x_labels = axis_labels(key_tokens, col_block)
    y, y_offsets = tile_labels(y_labels, n_groups, math.ceil(HEAD_LABEL_PX * rows / panel))
    x, x_offsets = tile_labels(x_labels, group_size, max(1, round(cols / 16)), gap_first=False)
    z, heads = _tile(pooled, y_offsets, x_offsets, len(y), len(x))
    note = pooling_note("max", row_block, col_block)
    fig = go.Figure(go.Heatmap(
        z=z, x=x, y=y, zmin=0, zmax=1, colorscale=SEQUENTIAL, customdata=heads, hoverongaps=False,
        meta=dict(customdata=["head", "KV head"]),  # names of the CSV export's columns
        hovertemplate="head %{customdata[0]} (KV %{customdata[1]})<br>query token %{y}<br>key token %{x}<br>"
                      f"{PATTERN_NAME} %{{z:.4g}}{f' ({note})' if note else ''}<extra></extra>",
        colorbar=dict(title=dict(text=PATTERN_NAME, side="right"), thickness=12),
    ))
    # Set at once: add_annotation re-validates every annotation so far, which costs seconds for 64 heads.
    fig.update_layout(annotations=[
        dict(text=f"head {g * group_size + m} (KV {g})", x=left - 0.5, y=top - 0.5, xref="x", yref="y",
             xanchor="left", yanchor="bottom", showarrow=False, font_size=12)
        for g, top in enumerate(y_offsets) for m, left in enumerate(x_offsets)])
    fig.update_xaxes(title_text="key token", tickangle=-60,
                     **category_axis(x_labels, max_labels=max(3, 900 // (group_size * LABEL_PX)), offsets=x_offsets))
    fig.update_yaxes(title_text="query token", autorange="reversed",
                     **category_axis(y_labels, max_labels=max(3, panel // LABEL_PX), offsets=y_offsets))
    return add_note(style(fig, title=title, height=round(len(y) * panel / rows) + 170), note)


def tile_labels(labels: list[str], copies: int, gap: int, *, gap_first: bool = True) -> tuple[list[str], list[int]]:
    """Category names of a tiled axis: `copies` runs of `labels` with `gap` blank rows or columns between them (and
    before the first run with `gap_first`), and where each run starts.

    A category axis merges equal names, so copy c carries c zero-width spaces and the blank names are runs of them:
    all look the same, hover included, and the CSV export strips them.
    """
    names, offsets, blanks = [], [], 0
    for c in range(copies):
        if c or gap_first:
            names += [GAP * (blanks + i + 1) for i in range(gap)]
            blanks += gap
        offsets.append(len(names))
        names += [name + GAP * c for name in labels]
    return names, offsets


def _tile(pooled: np.ndarray, y_offsets: list[int], x_offsets: list[int], rows: int,
          cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(Hkv, G, r, c) placed into one (rows, cols) float32 matrix at the offsets, NaN between heads; and for hover,
    (rows, cols, 2) query head and KV head of every cell in the smallest integer type."""
    n_groups, group_size, r, c = pooled.shape
    z = np.full((rows, cols), np.nan, np.float32)
    heads = np.zeros((rows, cols, 2), np.min_scalar_type(n_groups * group_size))
    for g, top in enumerate(y_offsets):
        for m, left in enumerate(x_offsets):
            z[top:top + r, left:left + c] = pooled[g, m]
            heads[top:top + r, left:left + c] = (g * group_size + m, g)
    return z, heads


def head_matrix(matrix: np.ndarray, tokens: list[str], *, scores: bool, title: str,
                key_tokens: list[str] | None = None) -> go.Figure:
    """One head large: pre-softmax scores (diverging, centred at 0) or the pattern (probabilities 0..1).
    Masked future cells are expected as NaN and left blank. `key_tokens` as for head_grid."""
    key_tokens = tokens if key_tokens is None else key_tokens
    first = len(key_tokens) - len(tokens)
    if scores:
        return token_heatmap(matrix, tokens, key_tokens, value_name=SCORE_NAME, colorscale=DIVERGING, zmid=0,
                             title=title, first_row=first)
    # Block max where a long prompt is pooled: a one-token line (previous token, a sink) stays as bright as it is.
    return token_heatmap(matrix, tokens, key_tokens, value_name=PATTERN_NAME, zmin=0, zmax=1, title=title,
                         pool_by="max", first_row=first)


def head_summary_heatmap(values: np.ndarray, n_kv_heads: int, *, title: str, value_name: str,
                         zmin: float | None = None, zmax: float | None = None, colorscale: str = SEQUENTIAL,
                         zmid: float | None = None) -> go.Figure:
    """A (layers, Hq) summary: layer 0 on top, query heads left to right under a label for the KV head they share."""
    n_layers, n_heads = values.shape
    group_size = n_heads // n_kv_heads
    groups = [f"KV {h // group_size}" for h in range(n_heads)]
    heads = [f"h{h}" for h in range(n_heads)]
    hover = np.array([[f"head {h} (KV {h // group_size})" for h in range(n_heads)]] * n_layers, dtype=object)
    fig = go.Figure(go.Heatmap(
        z=values, x=[groups, heads], y=np.arange(n_layers), customdata=hover, colorscale=colorscale,
        zmin=zmin, zmax=zmax, zmid=zmid, xgap=1, ygap=1,
        hovertemplate=f"layer %{{y}}, %{{customdata}}<br>{value_name} %{{z:.3f}}<extra></extra>",
        colorbar=dict(title=dict(text=value_name, side="right"), thickness=12),
    ))
    fig.update_xaxes(title_text="query head, grouped by shared KV head")
    fig.update_yaxes(title_text="layer", autorange="reversed", dtick=1)
    return style(fig, title=title, height=max(280, 26 * n_layers + 190))
