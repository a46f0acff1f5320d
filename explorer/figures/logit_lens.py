"""Figures of the logit-lens page: the top guess per layer and position, and how the final answer climbs in rank."""

from html import escape

import numpy as np
import plotly.graph_objects as go

from .common import style, token_heatmap

PLOT_WIDTH_PX = 780  # about the heatmap's width in a wide page at 1400 px: decides how much of a token fits a cell
CHAR_WIDTH_PX = 6  # of the cell font


def _fit(token: str, chars: int) -> str:
    return token if len(token) <= chars else token[: max(1, chars - 1)] + "…"


def lens_heatmap(top_tokens: list[list[list[str]]], top_probs: np.ndarray, position_tokens: list[str], *,
                 first_position: int = 0) -> go.Figure:
    """Layers (rows, layer 0 on top) × positions: each cell prints the lens's top next-token guess (cut to fit the
    cell) and is coloured by its probability; hovering lists the top guesses with their probabilities.

    top_tokens: [layer][position][rank] readable token strings; top_probs: (L, T, K) matching probabilities;
    first_position: the sequence position of the first column, when the arrays are a window of a longer sequence.
    """
    top_probs = np.asarray(top_probs, dtype=float)
    layers, positions, k = top_probs.shape
    # Columns numbered by their position in the whole sequence, which the window may start into.
    columns = [f"{first_position + j}: {token}" for j, token in enumerate(position_tokens)]
    fig = token_heatmap(top_probs[:, :, 0], [f"layer {i}" for i in range(layers)], columns,
                        value_name="top-1 probability", zmin=0, zmax=1, row_title="residual stream after",
                        col_title="position (the token just read)",
                        title="Logit lens: the top next-token guess after each layer",
                        height=min(1100, max(360, 34 * layers + 190)), number_rows=False, number_cols=False)
    chars = max(2, PLOT_WIDTH_PX // (positions * CHAR_WIDTH_PX))
    guesses = [[escape(_fit(top_tokens[i][j][0], chars), quote=False) for j in range(positions)] for i in range(layers)]

    def hover(i: int, j: int) -> str:
        ranked = (f"{r + 1}. {escape(top_tokens[i][j][r], quote=False)}  {top_probs[i, j, r]:.1%}" for r in range(k))
        where = f"after layer {i}, position {first_position + j} ({escape(position_tokens[j], quote=False)})"
        return f"{where}<br>next-token guesses:<br>" + "<br>".join(ranked)

    # customdata per cell: the top k guesses whole (named in `meta`, so a CSV export gets a column for each), then
    # the hover text.
    custom = [[[*top_tokens[i][j][:k], hover(i, j)] for j in range(positions)] for i in range(layers)]
    fig.update_traces(text=guesses, customdata=custom, meta={"customdata": [f"guess {r + 1}" for r in range(k)]},
                      hovertemplate=f"%{{customdata[{k}]}}<extra></extra>", texttemplate="%{text}",
                      textfont=dict(size=10))
    return fig


def rank_chart(ranks: np.ndarray, probs: np.ndarray, *, target_token: str, position_label: str) -> go.Figure:
    """Rank (1 = top guess, log scale, best at the top) of the model's final prediction after each layer."""
    ranks, probs = np.asarray(ranks), np.asarray(probs, dtype=float)
    layers = np.arange(len(ranks))
    fig = go.Figure(go.Scatter(
        x=layers, y=ranks, mode="lines+markers", line=dict(color="#4c6ef5", width=2), marker=dict(size=8),
        customdata=probs, hovertemplate="after layer %{x}: rank %{y:,}, probability %{customdata:.2%}<extra></extra>",
    ))
    fig.update_xaxes(title_text="residual stream after layer", tickmode="array", tickvals=layers)
    # Ticks at 1, 2, 5, 10, 20, ... up to the first past the worst rank: plotly's own log ticks crowd small labels
    # into every decade, or label only 1 when every rank is below 10.
    steps = [m * 10**e for e in range(int(np.log10(max(ranks.max(), 1))) + 2) for m in (1, 2, 5)]
    ticks = [t for t in steps if t <= next(t for t in steps if t >= ranks.max())]
    fig.update_yaxes(title_text="rank of the final prediction (1 = top, log scale)", type="log",
                     autorange="reversed", tickmode="array", tickvals=ticks, ticktext=[f"{t:,}" for t in ticks])
    title = f"How early the model settles on “{escape(target_token, quote=False)}” at position {position_label}"
    return style(fig, title=title, height=380)
