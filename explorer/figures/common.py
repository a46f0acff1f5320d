"""Pieces every figure shares: matrix-oriented heatmaps with token labels, and one look for all charts.

Heatmaps of a T-long prompt stay light: values go out as float32 typed arrays, a token label is sent once per
row or column (the category names of the axes, which hover reads) instead of once per cell, and a matrix too
large to read cell by cell is pooled over blocks of positions, which the chart then says.
"""

import html
import math
import re
import warnings

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

FONT = dict(family="Inter, Segoe UI, sans-serif", size=13)
DIVERGING = "RdBu_r"  # signed values: blue negative, white zero, red positive
SEQUENTIAL = "Viridis"  # magnitudes and probabilities
MAX_CELLS = 256  # rows or columns of one heatmap beyond which a cell is under ~3 px on a wide page: pool
LABEL_PX = 16  # room one tick label needs along its axis; more labels than fit are thinned
LABEL_WIDTH = 24  # characters of a token kept in axis labels and hover
GAP = "\u200b"  # zero-width space: invisible, it makes labels unique (see tile_labels) and marks gap rows/columns
POOLS = {"mean": np.nanmean, "max": np.nanmax}
# Every chart's template, as plotly's default rather than per figure: naming it in a figure's layout validates and
# deep-copies the whole template there, 15-20 ms a figure, which a page of six charts pays on every rerun.
pio.templates.default = "plotly_white"


def prime() -> None:
    """Build and serialise one throwaway figure with every kind of trace and decoration the pages draw.

    Plotly imports the validators of a trace type or layout part the first time a figure uses it; on a fresh server
    that added about a second to the first visitor's first page. The server's warm-up calls this instead.
    """
    fig = make_subplots(rows=1, cols=2)
    for trace in (go.Bar(x=[0], y=[0]), go.Heatmap(z=[[0.0]]), go.Scatter(x=[0], y=[0]), go.Scattergl(x=[0], y=[0]),
                  go.Box(y=[0.0])):
        fig.add_trace(trace, row=1, col=1)
    fig.add_annotation(text="", x=0, y=0)
    fig.add_shape(type="rect", x0=0, x1=1, y0=0, y1=1)
    fig.add_hline(y=0)
    fig.add_vline(x=0)
    style(fig, title="", height=100).to_json()


def style(fig: go.Figure, *, title: str | None = None, height: int | None = None) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left") if title else None,
        font=FONT,
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


def block_size(n: int, limit: int) -> int:
    """How many positions one cell pools so that `n` positions fit in `limit` cells."""
    return max(1, math.ceil(n / max(1, limit)))


def pool(values: np.ndarray, rows: int, cols: int, how: str = "mean") -> np.ndarray:
    """The last two axes of `values` pooled over blocks of rows × cols cells (the last block of an axis may be
    shorter), as float32. NaN-aware: a block is NaN only when all its cells are, so a masked triangle stays blank."""
    values = np.asarray(values, dtype=np.float32)
    if rows == cols == 1:
        return values
    *lead, n_rows, n_cols = values.shape
    padded = np.full((*lead, math.ceil(n_rows / rows) * rows, math.ceil(n_cols / cols) * cols), np.nan, np.float32)
    padded[..., :n_rows, :n_cols] = values
    blocks = padded.reshape(*lead, padded.shape[-2] // rows, rows, padded.shape[-1] // cols, cols)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "all-NaN slice": a masked block, NaN as it should be
        return POOLS[how](blocks, axis=(-3, -1)).astype(np.float32)


def pooling_note(how: str, rows: int, cols: int) -> str | None:
    """What one cell of a heatmap pooled over blocks of rows × cols positions holds, for the chart and its hover;
    None when nothing was pooled."""
    if rows == cols == 1:
        return None
    if rows == 1 or cols == 1:
        return f"each {'column' if rows == 1 else 'row'}: {how} over {max(rows, cols)} tokens"
    return f"each cell: {how} over {rows} × {cols} tokens"


def axis_labels(names: list[str], block: int = 1, *, numbered: bool = True, first: int = 0) -> list[str]:
    """One label per row or column, as plotly text: "i: token", or "a–b: first … last" for a pooled block, where
    positions count from `first` (the position of names[0] in the prompt).

    These are the category names of a heatmap axis, which hover shows. The position keeps repeated tokens apart (a
    category axis merges equal names), so it is left out only for names that are already unique ("layer 3").
    """
    numbered = numbered or len(set(names)) < len(names)
    labels = []
    for start in range(0, len(names), block):
        end = min(start + block, len(names)) - 1
        text = _short(names[start], LABEL_WIDTH)
        text = text if end == start else f"{text} … {_short(names[end], LABEL_WIDTH)}"
        where = str(first + start) if end == start else f"{first + start}–{first + end}"
        labels.append(f"{where}: {text}" if numbered else text)
    return labels


def category_axis(labels: list[str], *, max_labels: int, offsets: tuple[int, ...] = (0,)) -> dict:
    """Settings of a category axis whose categories are `labels` (repeated at each offset for a tiled axis), with
    every k-th one written as a tick label.

    The tick text is the category name itself: plotly's hover prints a tick's text in place of the category, so any
    other text would make hover read differently on labelled rows.
    """
    step = block_size(len(labels), max_labels)
    shown = range(0, len(labels), step)
    # No grid: a heatmap covers it except where cells are blank, and there it would stripe the blank.
    return dict(type="category", tickmode="array", tickvals=[offset + i for offset in offsets for i in shown],
                ticktext=[labels[i] for _ in offsets for i in shown], automargin=True, showgrid=False)


_POSITION = re.compile(r"^(\d+)(?:–\d+)?: ")  # a positional label of axis_labels: "12: cat", "8–15: a … b"


def mark_continuation(fig: go.Figure, start: int) -> go.Figure:
    """A dashed red line on every heatmap axis labelled by position, between the prompt and a generated
    continuation that starts at position `start`: one per tile of a tiled axis (the head grid's), before the first
    row or column at or after `start` (after a pooled block that holds both)."""
    for trace in fig.data:
        if trace.type != "heatmap":
            continue
        for letter in "xy":
            labels = getattr(trace, letter)
            if labels is None or not len(labels) or not isinstance(labels[0], str):
                continue
            in_prompt_before = False  # did the last positional label belong to the prompt?
            for index, text in enumerate(labels):
                found = _POSITION.match(text)
                if not found:  # a gap between tiles, or a label that is no position
                    continue
                in_prompt = int(found.group(1)) < start
                if in_prompt_before and not in_prompt:
                    fig.add_shape(_boundary_line(trace, letter, index - 0.5))
                in_prompt_before = in_prompt
    return fig


def _boundary_line(trace, letter: str, at: float) -> dict:
    """A line at category coordinate `at` of the trace's `letter` axis, across the whole other axis."""
    across = "y" if letter == "x" else "x"
    own_axis, other_axis = getattr(trace, f"{letter}axis") or letter, getattr(trace, f"{across}axis") or across
    return {"type": "line", "line": dict(color="#e03131", width=2, dash="dash"),
            f"{letter}ref": own_axis, f"{letter}0": at, f"{letter}1": at,
            f"{across}ref": f"{other_axis} domain", f"{across}0": 0, f"{across}1": 1}


def add_note(fig: go.Figure, text: str | None) -> go.Figure:
    """A short grey line above the plot's top-right corner, e.g. how a heatmap was pooled; room made for it."""
    if text:
        fig.add_annotation(text=text, xref="paper", yref="paper", x=1, y=1, xanchor="right", yanchor="bottom",
                           showarrow=False, font=dict(size=12, color="#495057"))
        fig.update_layout(margin_t=(fig.layout.margin.t or 20) + 22)
    return fig


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
    pool_by: str = "mean",
    number_rows: bool = True,
    number_cols: bool = True,
    first_row: int = 0,
) -> go.Figure:
    """A (rows, cols) matrix read like a matrix: first row on top, "i: token" labels on both axes, hover with both
    tokens and the value. NaN cells (e.g. masked future positions) are left blank and have no hover.

    An axis longer than MAX_CELLS is pooled over blocks of positions with `pool_by` ("mean", or "max" where the
    largest values are the story), and the chart says so. `number_rows` / `number_cols` False leaves out the
    position for names that are unique anyway, like depth labels; `first_row` is the position of the first row, for
    a window of queries.
    """
    rows, cols = np.shape(matrix)
    row_block, col_block = block_size(rows, MAX_CELLS), block_size(cols, MAX_CELLS)
    z = pool(matrix, row_block, col_block, pool_by)
    note = pooling_note(pool_by, row_block, col_block)
    y_labels = axis_labels(row_tokens, row_block, numbered=number_rows, first=first_row)
    x_labels = axis_labels(col_tokens, col_block, numbered=number_cols)
    height = height or max(320, min(900, 22 * z.shape[0] + 160))
    fig = go.Figure(go.Heatmap(
        z=z, x=x_labels, y=y_labels, hoverongaps=False,
        hovertemplate=f"{row_title} %{{y}}<br>{col_title} %{{x}}<br>{value_name} %{{z:.4g}}"
                      f"{f' ({note})' if note else ''}<extra></extra>",
        colorscale=colorscale, zmin=zmin, zmax=zmax, zmid=zmid,
        colorbar=dict(title=dict(text=value_name, side="right"), thickness=12),
    ))
    fig.update_xaxes(title_text=col_title, side="bottom", tickangle=-60, **category_axis(x_labels, max_labels=48))
    fig.update_yaxes(title_text=row_title, autorange="reversed",
                     **category_axis(y_labels, max_labels=max(4, (height - 200) // LABEL_PX)))
    return add_note(style(fig, title=title, height=height), note)
