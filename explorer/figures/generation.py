"""Figures of the Generate page: each generated token with its probability and the alternatives, and the KV cache
filling step by step."""

from html import escape

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..analysis.generation import Step
from .common import LABEL_WIDTH, SEQUENTIAL, axis_labels, category_axis, style

ROW_PX = 24  # one generated token per row: room for its label and a cell's text
TOP_CHOICE, OTHER_CHOICE = "#4c6ef5", "#f76707"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def steps_chart(steps: list[Step], token_text) -> go.Figure:
    """One row per generated token, first on top. Left: the model's probability of the token it wrote (blue where
    it was the most likely one, orange where sampling took another). Right: the model's top alternatives at that
    step, coloured by probability, the written one outlined in red and in bold.

    token_text(id) -> the token as readable text."""
    rows = axis_labels([token_text(s.token) for s in steps], first=steps[0].position)
    top = len(steps[0].alternatives)
    ranks = [_ordinal(r + 1) for r in range(top)]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, column_widths=[0.28, 0.72], horizontal_spacing=0.03)
    fig.add_trace(go.Bar(
        x=[s.probability for s in steps], y=rows, orientation="h", showlegend=False,
        marker_color=[TOP_CHOICE if s.rank == 1 else OTHER_CHOICE for s in steps],
        customdata=[s.rank for s in steps], name="written token",
        hovertemplate="%{y}<br>probability %{x:.1%}, rank %{customdata}<extra></extra>",
    ), row=1, col=1)
    whole = [[token_text(token) for token, _ in s.alternatives] for s in steps]
    names = [[escape(token[:LABEL_WIDTH], quote=False) for token in row] for row in whole]
    for row, s in zip(names, steps):
        if s.rank <= top:
            row[s.rank - 1] = f"<b>{row[s.rank - 1]}</b>"
    fig.add_trace(go.Heatmap(
        z=[[p for _, p in s.alternatives] for s in steps], x=ranks, y=rows, text=names, texttemplate="%{text}",
        customdata=[[[token] for token in row] for row in whole], meta=dict(customdata=["token"]),  # for the CSV
        textfont=dict(size=12), colorscale=SEQUENTIAL, zmin=0, zmax=1, name="alternatives",
        colorbar=dict(title=dict(text="probability", side="right"), thickness=12),
        hovertemplate="%{y}<br>%{x} most likely: %{text} (%{z:.1%})<extra></extra>",
    ), row=1, col=2)
    # Outlines as shapes, all set at once (add_shape re-validates every shape so far): a marker would hide the text.
    fig.update_layout(shapes=[
        dict(type="rect", xref="x2", yref="y2", x0=s.rank - 1.5, x1=s.rank - 0.5, y0=i - 0.5, y1=i + 0.5,
             line=dict(color="#e03131", width=2)) for i, s in enumerate(steps) if s.rank <= top])
    fig.update_xaxes(title_text="probability of the token written", range=[0, 1], tickformat=".0%", row=1, col=1)
    fig.update_xaxes(title_text=f"the model's top {top} at that step, most likely first", row=1, col=2)
    fig.update_yaxes(title_text="generated token", autorange="reversed", **category_axis(rows, max_labels=len(rows)),
                     row=1, col=1)
    return style(fig, title="Each generated token: how likely the model found it, and what else it weighed",
                 height=ROW_PX * len(steps) + 170)


def kv_growth_chart(bytes_by_step: list[int], prompt_length: int, position_labels: list[str],
                    per_position: int) -> go.Figure:
    """Stacked bars, one per generated token: the KV cache the model read when it chose that token, split into the
    prompt's keys and values (cached by one forward over the prompt) and the generated tokens' (`per_position`
    bytes more per step)."""
    prompt_bytes = [bytes_by_step[0] / 2**20] * len(bytes_by_step)
    generated = [(b - bytes_by_step[0]) / 2**20 for b in bytes_by_step]
    fig = go.Figure([
        go.Bar(x=position_labels, y=prompt_bytes, name=f"the prompt's {prompt_length} positions",
               marker_color="#adb5bd", hovertemplate="%{y:.3g} MiB<extra>prompt</extra>"),
        go.Bar(x=position_labels, y=generated, name="generated tokens' positions", marker_color=TOP_CHOICE,
               hovertemplate="%{y:.3g} MiB<extra>generated</extra>"),
    ])
    fig.update_layout(barmode="stack", bargap=0.15,
                      legend=dict(orientation="h", x=1, xanchor="right", y=1.02, yanchor="bottom"))
    fig.update_xaxes(title_text="generated token (position: token)", tickangle=-60,
                     **category_axis(position_labels, max_labels=48))
    fig.update_yaxes(title_text="KV cache (MiB)", rangemode="tozero")
    return style(fig, title=f"The KV cache grows by {per_position / 1024:.3g} KiB with every token", height=420)
