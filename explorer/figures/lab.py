"""Stability-lab figures: per-step training curves of two models.

A run is a list of records {"step", "loss", "max_logit", "grad_norms"} as training.train.train returns them. A diverged run ends
with a non-finite loss (training stops there); plotly cannot draw NaN or infinity, so a curve simply stops and a
dashed vertical line marks the step where it diverged.
"""

import math

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from ..analysis.lab import diverged_at
from .common import style

PALETTE = ["#e8590c", "#1c7ed6"]  # first model orange, second blue, on every chart
LOSS_SPIKE = 3.0  # a loss above this many times the first one gets a log axis


def per_step_chart(runs: dict[str, list[dict]], field: str, *, title: str, y_title: str, total_steps: int,
                   log_y: bool = False) -> go.Figure:
    """One line per model of `field` ("loss" or "max_logit") against the training step.

    The x axis spans all `total_steps` from the start, so that a chart redrawn while training runs does not
    rescale: the lines grow from left to right.
    """
    fig = go.Figure()
    # Divergence labels go left of the first model's line and right of the second's, so that two runs that
    # diverge at nearby steps do not print over each other.
    for colour, side, (name, records) in zip(PALETTE, ["top left", "top right"], runs.items()):
        steps = [r["step"] for r in records if r[field] is not None]
        values = np.array([r[field] for r in records if r[field] is not None], dtype=float)
        values[~np.isfinite(values)] = np.nan  # a gap, not a crash in the JSON encoder
        if log_y:
            values[values <= 0] = np.nan
        fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=name, line=dict(color=colour, width=2),
                                 hovertemplate=f"{name}<br>step %{{x}}<br>{y_title} %{{y:.4g}}<extra></extra>"))
        step = diverged_at(records)
        if step is not None:
            fig.add_vline(x=step, line=dict(color=colour, dash="dash", width=1.5),
                          annotation=dict(text=f"{name}: loss NaN/∞ at step {step}", font_color=colour),
                          annotation_position=side)
    fig.update_xaxes(title_text="training step", range=[0, max(1, total_steps - 1)])
    # On a log axis, label only the powers of ten: plotly's default also labels 2 and 5 of every decade, which
    # crowds the axis once the logits span several decades.
    fig.update_yaxes(title_text=y_title + (" (log scale)" if log_y else ""), type="log" if log_y else "linear",
                     dtick=1 if log_y else None)
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"))
    return style(fig, title=title, height=400)


def loss_chart(runs: dict[str, list[dict]], total_steps: int) -> go.Figure:
    """Linear while the losses stay near where they started; a log axis once a loss spike would flatten the rest."""
    finite = [r["loss"] for records in runs.values() for r in records if math.isfinite(r["loss"])]
    spiked = bool(finite) and max(finite) > LOSS_SPIKE * finite[0]
    return per_step_chart(runs, "loss", title="Training loss per step",
                          y_title="cross-entropy loss (nats per token)", total_steps=total_steps, log_y=spiked)


def logit_chart(runs: dict[str, list[dict]], total_steps: int) -> go.Figure:
    return per_step_chart(runs, "max_logit", title="Largest attention logit per step (any layer, head and position)",
                          y_title="largest |q·k/√dh|", total_steps=total_steps, log_y=True)


def gradient_chart(runs: dict[str, list[dict]], total_steps: int) -> go.Figure:
    """Each layer's gradient norm (before clipping) against the step, one panel per model, layer 0 palest: whether
    the early layers get as much signal as the late ones, and what a spike does to each."""
    names = list(runs)
    fig = make_subplots(rows=1, cols=len(names), shared_yaxes=True, subplot_titles=names, horizontal_spacing=0.04)
    for col, name in enumerate(names, start=1):
        records = [r for r in runs[name] if "grad_norms" in r]
        layers = len(records[0]["grad_norms"]) if records else 0
        for layer in range(layers):
            shade = sample_colorscale("Blues", 0.35 + 0.65 * layer / max(1, layers - 1))[0]
            fig.add_trace(go.Scatter(
                x=[r["step"] for r in records], y=[r["grad_norms"][layer] for r in records], mode="lines",
                name=f"layer {layer}", legendgroup=f"layer {layer}", showlegend=col == 1,
                line=dict(color=shade, width=1.5),
                hovertemplate=f"{name}, layer {layer}<br>step %{{x}}<br>gradient norm %{{y:.3g}}<extra></extra>",
            ), row=1, col=col)
        fig.update_xaxes(title_text="training step", range=[0, max(1, total_steps - 1)], row=1, col=col)
    fig.update_yaxes(type="log", dtick=1)  # every panel: a shared axis does not share its type
    fig.update_yaxes(title_text="gradient norm of the layer (log scale)", row=1, col=1)
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.08, x=1, xanchor="right"))
    return style(fig, title="Each layer's gradient norm per step, before clipping at 1.0", height=420)
