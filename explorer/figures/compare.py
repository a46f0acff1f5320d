"""Figures of the Llama vs Qwen3 page: q/k lengths per head around QK-norm, QK-norm gains, per-layer attention
statistics of two models on one depth axis, and what an ablation changes in the next-token distribution."""

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import label, style, token_axis

# One colour per stage or series, the same on every chart of the page.
STAGE_COLOURS = {"raw q, k": "#4c6ef5", "before QK-norm": "#4c6ef5", "after QK-norm": "#e8590c"}
SERIES_COLOURS = ["#4c6ef5", "#e8590c", "#2b8a3e", "#ae3ec9"]


def norm_range(arrays: list[np.ndarray]) -> tuple[float, float]:
    """A log10 y-range that holds every length in `arrays`, so two models' panels share one scale."""
    values = np.concatenate([np.ravel(a) for a in arrays])
    values = values[values > 0]
    return float(np.log10(values.min() / 1.3)), float(np.log10(values.max() * 1.3))


def qk_norm_boxes(stages: dict[str, tuple[np.ndarray, np.ndarray]], group_size: int, *, title: str,
                  y_range: tuple[float, float] | None = None) -> go.Figure:
    """Per head, the spread over tokens of ‖q‖ (left) and ‖k‖ (right), one box per stage.

    stages: stage name -> (q lengths (Hq, T), k lengths (Hkv, T)). Query heads are labelled with the KV head they
    share. The y-axis is logarithmic: QK-norm can shrink or grow lengths by orders of magnitude."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["‖q‖ per query head", "‖k‖ per KV head"],
                        horizontal_spacing=0.08)
    for stage, (q, k) in stages.items():
        colour = STAGE_COLOURS.get(stage, SERIES_COLOURS[0])
        for col, (lengths, names) in enumerate([(q, [f"h{h} (KV {h // group_size})" for h in range(len(q))]),
                                                (k, [f"KV {h}" for h in range(len(k))])], start=1):
            # Heads as numbers named by tick text, not one name per token: hover prints the tick text too.
            fig.add_trace(go.Box(
                x=np.repeat(np.arange(len(names)), lengths.shape[1]), y=np.asarray(lengths, np.float32).ravel(),
                name=stage, legendgroup=stage, showlegend=col == 1, marker_color=colour, boxpoints=False,
                offsetgroup=stage, hovertemplate="%{x}<br>‖·‖₂ %{y:.3g}<extra>" + stage + "</extra>",
            ), row=1, col=col)
            fig.update_xaxes(tickmode="array", tickvals=np.arange(len(names)), ticktext=names, row=1, col=col)
    fig.update_layout(boxmode="group", legend=dict(orientation="h", yanchor="bottom", y=1.08, x=0))
    fig.update_xaxes(title_text="head", tickangle=-45)
    fig.update_yaxes(type="log", range=y_range)
    fig.update_yaxes(title_text="vector length ‖·‖₂ (log scale)", col=1)
    style(fig, title=title, height=420)
    fig.update_layout(margin=dict(t=110))  # room for the title, the legend and the subplot titles
    return fig


def gain_lines(q_gain: np.ndarray, k_gain: np.ndarray, *, title: str) -> go.Figure:
    """The learned gains of q_norm and k_norm per head dimension; 1 (the value they start training at) dashed."""
    fig = go.Figure()
    for name, gain, colour in [("q_norm gain", q_gain, SERIES_COLOURS[0]), ("k_norm gain", k_gain, SERIES_COLOURS[1])]:
        fig.add_trace(go.Scatter(x=np.arange(len(gain)), y=gain, name=name, mode="lines+markers",
                                 marker=dict(size=5, color=colour), line=dict(color=colour, width=1.5),
                                 hovertemplate="dimension %{x}<br>gain %{y:.4g}<extra>" + name + "</extra>"))
    fig.add_hline(y=1, line=dict(color="#868e96", dash="dash", width=1))
    fig.update_xaxes(title_text="dimension within the head (0 … head_dim − 1)")
    fig.update_yaxes(title_text="gain (multiplier)")
    style(fig, title=title, height=340)
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    return fig


def layer_lines(series: dict[str, tuple[np.ndarray, np.ndarray]], *, title: str, x_title: str, y_title: str) -> go.Figure:
    """One line per series over depth: name -> (x positions, values per layer); hover names the layer."""
    fig = go.Figure()
    for (name, (x, values)), colour in zip(series.items(), SERIES_COLOURS):
        fig.add_trace(go.Scatter(x=x, y=values, name=name, mode="lines+markers", marker=dict(size=8, color=colour),
                                 line=dict(color=colour), customdata=np.arange(len(values)),
                                 hovertemplate="layer %{customdata}: %{y:.4g}<extra>" + label(name) + "</extra>"))
    fig.update_xaxes(title_text=x_title)
    positions = np.concatenate([np.asarray(x, dtype=float) for x, _ in series.values()])
    if np.all(positions == np.round(positions)):  # layer numbers: whole ticks, about ten at most
        fig.update_xaxes(tick0=0, dtick=max(1, int(np.ceil(positions.max() / 10))))
    fig.update_yaxes(title_text=y_title)
    style(fig, title=title, height=360)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.25, x=0), margin=dict(b=10))
    return fig


def next_token_change(tokens: list[str], p_unedited: np.ndarray, p_edited: np.ndarray, *, edit_name: str,
                      position_token: str) -> go.Figure:
    """Next-token probabilities before and after an edit, as paired bars per candidate, most likely (unedited) on
    top. Candidates are placed by rank: token strings may repeat."""
    ranks = np.arange(len(tokens))
    fig = go.Figure()
    for name, p, colour in [("unedited", p_unedited, SERIES_COLOURS[0]), (edit_name, p_edited, SERIES_COLOURS[1])]:
        fig.add_trace(go.Bar(x=p, y=ranks, orientation="h", name=name, marker_color=colour,
                             customdata=[label(t) for t in tokens],
                             hovertemplate="%{customdata}: probability %{x:.4f}<extra>" + label(name) + "</extra>"))
    fig.update_xaxes(title_text="probability", tickformat=".2~%")
    fig.update_yaxes(title_text="next token", tickmode="array", tickvals=ranks, autorange="reversed",
                     ticktext=[label(t) for t in tokens], automargin=True)
    style(fig, title=f"Next token after “{label(position_token)}”, before and after",
          height=max(300, 34 * len(tokens) + 140))
    fig.update_layout(barmode="group", legend=dict(orientation="h", yanchor="top", y=-0.12, x=0))
    return fig


def kl_by_position_bar(kl: np.ndarray, tokens: list[str], *, title: str) -> go.Figure:
    """KL(unedited ‖ edited) of the next-token distribution predicted at each position, tokens on the x-axis."""
    fig = go.Figure(go.Bar(x=np.arange(len(kl)), y=kl, marker_color=SERIES_COLOURS[1],
                           customdata=[label(t) for t in tokens], meta=dict(customdata=["token"]),  # a CSV column
                           hovertemplate="after %{x}: %{customdata}<br>KL %{y:.4g} nats<extra></extra>"))
    fig.update_xaxes(title_text="position (the prediction made after this token)", tickangle=-60,
                     **token_axis(tokens))
    fig.update_yaxes(title_text="KL divergence (nats)", rangemode="tozero")
    return style(fig, title=title, height=340)
