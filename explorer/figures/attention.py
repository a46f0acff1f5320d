"""Attention figures: every head of a layer grouped by shared KV head, one head large, per-head summaries."""

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import DIVERGING, SEQUENTIAL, style, token_axis, token_heatmap

PATTERN_NAME = "attention weight"
SCORE_NAME = "score"


def head_grid(grouped: np.ndarray, tokens: list[str], *, title: str) -> go.Figure:
    """Small multiples of one layer's pattern, `grouped` (Hkv, G, T, T): one row per KV group, its G query heads
    side by side, on one shared 0..1 color scale. NaN cells (masked future keys) stay blank."""
    n_groups, group_size = grouped.shape[:2]
    titles = [f"head {g * group_size + m} (KV {g})" for g in range(n_groups) for m in range(group_size)]
    # Cells of about square size: narrower when many heads share a row, shorter when there are many rows.
    cell = int(np.clip(min(900 / group_size, 1500 / n_groups), 140, 260))
    fig = make_subplots(rows=n_groups, cols=group_size, subplot_titles=titles, horizontal_spacing=0.04,
                        vertical_spacing=min(0.3 / n_groups, 0.08))
    for g in range(n_groups):
        for m in range(group_size):
            # token_heatmap's trace carries the hover text (query token, key token, value); only the color
            # settings move to the shared color axis.
            heatmap = token_heatmap(grouped[g, m], tokens, tokens, value_name=PATTERN_NAME).data[0]
            heatmap.update(coloraxis="coloraxis", colorscale=None, zmin=None, zmax=None, colorbar=None)
            fig.add_trace(heatmap, row=g + 1, col=m + 1)
    labels = token_axis(tokens, max_labels=max(4, cell // 16))
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_xaxes(title_text="key token", tickangle=-60, showticklabels=True, row=n_groups, **labels)
    fig.update_yaxes(title_text="query token", showticklabels=True, col=1, **labels)
    fig.update_layout(coloraxis=dict(colorscale=SEQUENTIAL, cmin=0, cmax=1,
                                     colorbar=dict(title=dict(text=PATTERN_NAME, side="right"), thickness=12)))
    fig.update_annotations(font_size=12)
    return style(fig, title=title, height=n_groups * (cell + 40) + 140)


def head_matrix(matrix: np.ndarray, tokens: list[str], *, scores: bool, title: str) -> go.Figure:
    """One head large: pre-softmax scores (diverging, centred at 0) or the pattern (probabilities 0..1).
    Masked future cells are expected as NaN and left blank."""
    if scores:
        return token_heatmap(matrix, tokens, tokens, value_name=SCORE_NAME, colorscale=DIVERGING, zmid=0,
                             title=title)
    return token_heatmap(matrix, tokens, tokens, value_name=PATTERN_NAME, zmin=0, zmax=1, title=title)


def head_summary_heatmap(values: np.ndarray, n_kv_heads: int, *, title: str, value_name: str,
                         zmin: float | None = None, zmax: float | None = None) -> go.Figure:
    """A (layers, Hq) summary: layer 0 on top, query heads left to right under a label for the KV head they share."""
    n_layers, n_heads = values.shape
    group_size = n_heads // n_kv_heads
    groups = [f"KV {h // group_size}" for h in range(n_heads)]
    heads = [f"h{h}" for h in range(n_heads)]
    hover = np.array([[f"head {h} (KV {h // group_size})" for h in range(n_heads)]] * n_layers, dtype=object)
    fig = go.Figure(go.Heatmap(
        z=values, x=[groups, heads], y=np.arange(n_layers), customdata=hover, colorscale=SEQUENTIAL,
        zmin=zmin, zmax=zmax, xgap=1, ygap=1,
        hovertemplate=f"layer %{{y}}, %{{customdata}}<br>{value_name} %{{z:.3f}}<extra></extra>",
        colorbar=dict(title=dict(text=value_name, side="right"), thickness=12),
    ))
    fig.update_xaxes(title_text="query head, grouped by shared KV head")
    fig.update_yaxes(title_text="layer", autorange="reversed", dtick=1)
    return style(fig, title=title, height=max(280, 26 * n_layers + 190))
