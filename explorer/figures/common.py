"""Pieces every figure shares: matrix-oriented heatmaps with token labels, and one look for all charts."""

import html
import numpy as np
import plotly.graph_objects as go

FONT = dict(family="Inter, Segoe UI, sans-serif", size=13)
DIVERGING = "RdBu_r"  # signed values: blue negative, white zero, red positive
SEQUENTIAL = "Viridis"  # magnitudes and probabilities


def style(fig: go.Figure, *, title: str | None = None, height: int | None = None) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left") if title else None,
        font=FONT,
        template="plotly_white",
        margin=dict(l=10, r=10, t=50 if title else 20, b=10),
        height=height,
    )
    return fig


def token_axis(tokens: list[str], *, max_labels: int = 64) -> dict:
    """Axis settings that label positions with their tokens.

    Positions are numeric and tokens are tick texts: a categorical axis would merge repeated tokens ("the" twice).
    Beyond `max_labels` positions every k-th position is labelled so the labels stay readable.
    """
    step = max(1, int(np.ceil(len(tokens) / max_labels)))
    positions = list(range(0, len(tokens), step))
    return dict(
        tickmode="array",
        tickvals=positions,
        ticktext=[_short(tokens[i]) for i in positions],
        automargin=True,
    )


def label(token: str) -> str:
    """A token as Plotly text: Plotly reads a subset of HTML, so '<s>' would strike the rest through."""
    return html.escape(token, quote=False)


def _short(token: str, width: int = 14) -> str:
    return label(token if len(token) <= width else token[: width - 1] + "…")


def token_heatmap(
    matrix: np.ndarray,
    row_tokens: list[str],
    col_tokens: list[str],
    *,
    value_name: str,
    colorscale: str = SEQUENTIAL,
    zmin: float | None = None,
    zmax: float | None = None,
    zmid: float | None = None,
    row_title: str = "query token",
    col_title: str = "key token",
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """A (rows, cols) matrix read like a matrix: first row on top, token strings on both axes, hover with both
    tokens and the value. NaN cells (e.g. masked future positions) are left blank."""
    matrix = np.asarray(matrix, dtype=float)
    rows, cols = matrix.shape
    hover_rows = np.repeat(np.array([f"{i}: {label(t)}" for i, t in enumerate(row_tokens)], dtype=object)[:, None], cols, 1)
    hover_cols = np.repeat(np.array([f"{j}: {label(t)}" for j, t in enumerate(col_tokens)], dtype=object)[None, :], rows, 0)
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=np.arange(cols),
            y=np.arange(rows),
            customdata=np.stack([hover_rows, hover_cols], axis=-1),
            hovertemplate=f"{row_title} %{{customdata[0]}}<br>{col_title} %{{customdata[1]}}<br>"
            f"{value_name} %{{z:.4g}}<extra></extra>",
            colorscale=colorscale,
            zmin=zmin,
            zmax=zmax,
            zmid=zmid,
            colorbar=dict(title=dict(text=value_name, side="right"), thickness=12),
        )
    )
    fig.update_xaxes(title_text=col_title, side="bottom", tickangle=-60, **token_axis(col_tokens))
    fig.update_yaxes(title_text=row_title, autorange="reversed", **token_axis(row_tokens))
    side = max(320, min(900, 22 * rows + 160))
    return style(fig, title=title, height=height or side)
