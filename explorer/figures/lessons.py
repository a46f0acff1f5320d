"""Figures of the lesson pages (pages/lesson_*.py): each sets a measurement beside a textbook claim."""

import numpy as np
import plotly.graph_objects as go

from .common import DIVERGING, style, token_heatmap

MEASURED, CLAIMED = "#4c6ef5", "#adb5bd"
REFERENCE = "#868e96"  # the unedited model, beside edited ones
# Cool colours for the first two curves, warm for the next two: the page passes two models at two RoPE bases.
LINE_COLORS = ("#4c6ef5", "#15aabf", "#d62728", "#fd7e14")


def norm_timing_bar(names: list[str], milliseconds: list[float], *, shape: str, device: str) -> go.Figure:
    """Milliseconds per forward of each normalisation, first name on top."""
    fig = go.Figure(go.Bar(
        x=milliseconds, y=names, orientation="h", marker_color=MEASURED, text=[f"{ms:.3g} ms" for ms in milliseconds],
        textposition="outside", cliponaxis=False, hovertemplate="%{y}: %{x:.4g} ms per forward<extra></extra>",
    ))
    fig.update_xaxes(title_text="time per forward (ms, median of repeats)", range=[0, max(milliseconds) * 1.25])
    fig.update_yaxes(title_text="normalisation", autorange="reversed", automargin=True)
    return style(fig, title=f"Forward time on {device}, input {shape}", height=max(240, 50 * len(names) + 120))


def loss_bar(labels: list[str], losses: list[float], *, title: str) -> go.Figure:
    """The prompt's next-token loss of the model as trained (the first bar) and with a mechanism taken away, first on
    top, each edited bar labelled with its change."""
    changes = [""] + [f"{loss:.3f} ({loss - losses[0]:+.3f})" for loss in losses[1:]]
    fig = go.Figure(go.Bar(
        x=losses, y=labels, orientation="h", marker_color=[REFERENCE] + [MEASURED] * (len(losses) - 1),
        text=[f"{losses[0]:.3f}", *changes[1:]], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.4f} nats<extra></extra>",
    ))
    fig.update_xaxes(title_text="mean next-token loss on the prompt (nats)", rangemode="tozero",
                     range=[0, max(losses) * 1.3])
    fig.update_yaxes(autorange="reversed", automargin=True)
    return style(fig, title=title, height=max(240, 50 * len(labels) + 120))


def mean_over_rms_heatmap(values: np.ndarray, depth_labels: list[str], tokens: list[str]) -> go.Figure:
    """(depth, T) mean / rms of the residual stream: what LayerNorm would subtract, relative to the vector's size."""
    limit = float(np.nanmax(np.abs(values))) or 1.0
    return token_heatmap(values, depth_labels, tokens, value_name="mean / rms", colorscale=DIVERGING, zmid=0,
                         zmin=-limit, zmax=limit, row_title="residual stream at", col_title="token",
                         title="Mean of each residual vector relative to its RMS (0: LayerNorm = RMSNorm)",
                         number_rows=False)


def kv_claim_bar(variants: list[str], claimed_gib: list[float], formula_gib: list[float],
                 formula_texts: list[str]) -> go.Figure:
    """The book's KV-cache sizes and the formula's, side by side per attention variant, on a log axis (MHA and
    MQA differ 32-fold) with ticks at powers of two."""
    fig = go.Figure([
        go.Bar(x=variants, y=claimed_gib, name="book's claim", marker_color=CLAIMED, cliponaxis=False,
               text=[f"{g:g} GB" for g in claimed_gib], textposition="outside",
               hovertemplate="%{x}: claimed %{text}<extra></extra>"),
        go.Bar(x=variants, y=formula_gib, name="formula, 1 sequence", marker_color=MEASURED, cliponaxis=False,
               text=formula_texts, textposition="outside", hovertemplate="%{x}: %{text}<extra></extra>"),
    ])
    values = [*claimed_gib, *formula_gib]
    powers = 2.0 ** np.arange(np.floor(np.log2(min(values))), np.ceil(np.log2(max(values))) + 1)
    fig.update_xaxes(title_text="attention variant of the 7B model")
    # Bars on a log axis start at its lower end: one power of two below the smallest keeps the smallest bar visible.
    fig.update_yaxes(title_text="KV-cache memory (GiB, log scale)", type="log", tickvals=powers,
                     ticktext=[f"{v:g}" for v in powers], range=np.log10([powers[0] / 2, powers[-1] * 1.6]))
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.0, x=1, xanchor="right", yanchor="bottom"))
    return style(fig, title="KV cache at 4,096 tokens in fp16", height=400)


def mlp_parameter_bar(labels: list[str], counts: list[float]) -> go.Figure:
    """Weights per MLP block for each design, first label on top, with the ratio to the first as text."""
    reference = counts[0]
    fig = go.Figure(go.Bar(
        x=counts, y=labels, orientation="h", marker_color=[CLAIMED] + [MEASURED] * (len(counts) - 1),
        text=[f"{c:,.0f} (×{c / reference:.4f})" for c in counts], textposition="inside", insidetextanchor="end",
        hovertemplate="%{y}: %{x:,.2f} weights<extra></extra>",
    ))
    fig.update_xaxes(title_text="weights in one MLP block (count)")
    fig.update_yaxes(title_text="MLP design", autorange="reversed", automargin=True)
    return style(fig, title="Parameters of one MLP block at this model's width D",
                 height=max(240, 50 * len(labels) + 120))


def loss_by_position_chart(curves: dict[str, np.ndarray], training_length: int, *, smoothing: int) -> go.Figure:
    """Mean next-token loss against position, one line per model and RoPE base, the training length marked.
    `smoothing` says over how many positions the curves were averaged, for the axis title."""
    fig = go.Figure([
        go.Scatter(x=np.arange(len(losses)), y=losses, mode="lines", name=name, line=dict(color=color, width=1.5),
                   hovertemplate=f"{name}<br>position %{{x}}<br>loss %{{y:.3f}} nats<extra></extra>")
        for (name, losses), color in zip(curves.items(), LINE_COLORS)
    ])
    fig.add_vrect(x0=training_length - 0.5, x1=max(len(c) for c in curves.values()) - 0.5, fillcolor="#868e96",
                  opacity=0.08, line_width=0, annotation_text="positions never seen in training",
                  annotation_position="bottom right")
    fig.add_vline(x=training_length - 0.5, line=dict(color="#495057", dash="dash"),
                  annotation_text=f"training length {training_length}", annotation_position="top left")
    fig.update_xaxes(title_text="position in the text (tokens)")
    fig.update_yaxes(title_text=f"mean loss (nats, {smoothing}-position moving average)")
    fig.update_layout(legend=dict(orientation="h", y=-0.2))
    return style(fig, title="Loss at each position of held-out texts twice the training length", height=440)
