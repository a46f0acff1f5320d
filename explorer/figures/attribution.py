"""Figures of the Attribution page: the logit built up part by part, and which heads and neurons wrote it."""

import numpy as np
import plotly.graph_objects as go

from ..attribution import Attribution
from .common import style

UP, DOWN, TOTAL = "#1c7ed6", "#e03131", "#495057"


def waterfall(attribution: Attribution, *, what: str) -> go.Figure:
    """The logit as a staircase: the embedding, then each layer's attention and MLP, each step up (blue) or down
    (red), ending at the sum; the model's own logit is the dashed line it should meet."""
    layers = len(attribution.mlp)
    labels = ["embedding"] + [f"L{i} {part}" for i in range(layers) for part in ("attention", "MLP")] + ["sum"]
    steps = [attribution.embed] + [v for pair in zip(attribution.attn, attribution.mlp) for v in pair]
    fig = go.Figure(go.Waterfall(
        x=labels, y=steps + [0.0], measure=["relative"] * len(steps) + ["total"],
        increasing=dict(marker_color=UP), decreasing=dict(marker_color=DOWN), totals=dict(marker_color=TOTAL),
        connector=dict(line=dict(color="#ced4da", width=1)), name=what,
        hovertemplate="%{x}: %{y:+.3f}<extra></extra>",
    ))
    fig.add_hline(y=attribution.logit, line=dict(color=TOTAL, dash="dash", width=1),
                  annotation_text=f"the model's logit {attribution.logit:.3f}", annotation_position="top left")
    fig.update_xaxes(tickangle=-60, title_text="part of the model, in the order it writes to the stream")
    fig.update_yaxes(title_text=f"contribution to {what}")
    return style(fig, title=f"How {what} is built, part by part", height=460)


def running_logit(attribution: Attribution, *, what: str) -> go.Figure:
    """The logit the stream would give after the embedding and after each layer: where it was decided."""
    running = attribution.running()
    x = ["embedding"] + [f"after L{i}" for i in range(len(running) - 1)]
    fig = go.Figure(go.Scatter(x=x, y=running, mode="lines+markers", line=dict(color=UP, width=2),
                               marker=dict(size=8), hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    fig.add_hline(y=0, line=dict(color="#adb5bd", width=1))
    fig.update_xaxes(title_text="residual stream", tickangle=-45, type="category")
    fig.update_yaxes(title_text=what)
    return style(fig, title=f"{what} after each layer (the final norm's scale held fixed)", height=380)


def neuron_bar(indices: np.ndarray, contributions: np.ndarray, *, layer: int, what: str) -> go.Figure:
    """The neurons of one layer that wrote most of the logit, largest |contribution| on top."""
    fig = go.Figure(go.Bar(
        x=contributions, y=[f"neuron {i}" for i in indices], orientation="h",
        marker_color=[UP if c >= 0 else DOWN for c in contributions],
        hovertemplate="%{y}: %{x:+.4f}<extra></extra>",
    ))
    fig.update_xaxes(title_text=f"contribution to {what}", zeroline=True, zerolinecolor="#868e96")
    fig.update_yaxes(autorange="reversed", type="category", automargin=True)
    return style(fig, title=f"Layer {layer}: the {len(indices)} SwiGLU neurons that wrote the most",
                 height=max(260, 24 * len(indices) + 120))
