"""SwiGLU figures: distributions of gate, up and their product, gate sparsity, top neurons, gate-against-up."""

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import DIVERGING, add_note, label, style

# (captured name, panel title) of the three distributions, in the order the MLP computes them.
DISTRIBUTIONS = (("act", "silu(gate)"), ("up", "up"), ("hidden", "hidden = silu(gate) · up"))


def distributions_figure(histograms: dict[str, tuple[np.ndarray, np.ndarray]], layer: int, *,
                         log: bool = False) -> go.Figure:
    """Three histograms side by side from {"act" | "up" | "hidden": (bin centres, counts)}."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=[title for _, title in DISTRIBUTIONS], horizontal_spacing=0.06)
    for col, (name, title) in enumerate(DISTRIBUTIONS, start=1):
        centres, counts = histograms[name]
        width = centres[1] - centres[0] if len(centres) > 1 else 1.0
        fig.add_trace(go.Bar(x=centres, y=counts, width=width, name=title, marker_color="#4c72b0",
                             hovertemplate=f"{title} ≈ %{{x:.3g}}<br>%{{y:,}} values<extra></extra>"), row=1, col=col)
        fig.update_xaxes(title_text="value", row=1, col=col)
    fig.update_yaxes(title_text="count (token × neuron)", row=1, col=1)
    if log:
        fig.update_yaxes(type="log")
    fig.update_layout(showlegend=False, bargap=0)
    return style(fig, title=f"Layer {layer}: distribution over all tokens and neurons", height=360)


def sparsity_figure(fractions: np.ndarray, threshold: float, highlight: int | None = None) -> go.Figure:
    """(L,) fraction of |silu(gate)| below `threshold` per layer; `highlight` colours the chosen layer."""
    layers = np.arange(len(fractions))
    colors = ["#d62728" if i == highlight else "#4c72b0" for i in layers]
    fig = go.Figure(go.Bar(x=layers, y=fractions, marker_color=colors,
                           hovertemplate="layer %{x}<br>%{y:.1%} of gate values nearly closed<extra></extra>"))
    fig.update_xaxes(title_text="layer", tickmode="linear", dtick=max(1, len(layers) // 20))
    fig.update_yaxes(title_text=f"fraction with |silu(gate)| < {threshold:g}", tickformat=".1%", rangemode="tozero")
    return style(fig, title=f"Gate sparsity: share of neurons the gate nearly shuts (|silu(gate)| < {threshold:g})",
                 height=360)


def top_neurons_figure(neurons: np.ndarray, hidden: np.ndarray, contribution_norm: np.ndarray,
                       toward_final: np.ndarray, token_label: str) -> go.Figure:
    """Horizontal bars, strongest neuron on top: length = norm of what it writes, colour = its push along the final
    residual direction (red toward, blue away)."""
    labels = [f"neuron {n}" for n in neurons]  # unique, so a categorical axis is safe
    limit = float(np.abs(toward_final).max()) if len(toward_final) else 1.0
    fig = go.Figure(go.Bar(
        y=labels, x=contribution_norm, orientation="h", customdata=np.stack([hidden, toward_final], -1),
        marker=dict(color=toward_final, colorscale=DIVERGING, cmin=-limit, cmax=limit,
                    colorbar=dict(title=dict(text="toward final", side="right"), thickness=12)),
        hovertemplate="%{y}<br>hidden %{customdata[0]:.4g}<br>‖contribution‖ %{x:.4g}<br>"
                      "along final direction %{customdata[1]:.4g}<extra></extra>",
    ))
    fig.update_xaxes(title_text="‖hidden[n] · down_proj[:, n]‖ (length of what it adds to the residual stream)")
    fig.update_yaxes(title_text="neuron (longest contribution on top)", autorange="reversed", automargin=True)
    return style(fig, title=f"Top neurons at token {label(token_label)}: what each writes through down_proj",
                 height=max(320, 24 * len(labels) + 140))


MAX_POINTS = 1000  # an SVG point costs Chromium ~0.15 ms to draw: Qwen3-0.6B's 3,072 neurons took 0.4-0.7 s
STRONGEST = 200  # of them, the neurons with the largest |silu(gate)·up| are always drawn


def gate_up_scatter(gate: np.ndarray, up: np.ndarray, hidden: np.ndarray, token_label: str) -> go.Figure:
    """One point per neuron: gate pre-activation (x) against up (y), coloured by their SwiGLU product. Past
    MAX_POINTS neurons, the STRONGEST largest products and a random sample of the rest are drawn, and the chart
    says so."""
    limit = float(np.abs(hidden).max()) or 1.0
    shown = np.arange(len(gate))
    if len(gate) > MAX_POINTS:
        strongest = np.argsort(-np.abs(hidden))[:STRONGEST]
        rest = np.setdiff1d(shown, strongest)
        sampled = np.random.default_rng(0).choice(rest, MAX_POINTS - STRONGEST, replace=False)
        shown = np.sort(np.r_[strongest, sampled])
    # SVG, not WebGL: a WebGL chart sets up a GL context on every redraw, 0.2-0.3 s of each layer or token change
    # in a browser without a GPU (bench_ui.py, headless chromium).
    fig = go.Figure(go.Scatter(
        x=gate[shown], y=up[shown], mode="markers",
        customdata=np.stack([shown, hidden[shown]], -1).astype(np.float32),
        # A grey rim keeps near-zero (white) points visible on the white background.
        marker=dict(size=7, color=hidden[shown], colorscale=DIVERGING, cmin=-limit, cmax=limit,
                    line=dict(width=0.5, color="#888888"),
                    colorbar=dict(title=dict(text="silu(gate)·up", side="right"), thickness=12)),
        hovertemplate="neuron %{customdata[0]:.0f}<br>gate %{x:.3g}<br>up %{y:.3g}<br>"
                      "silu(gate)·up %{customdata[1]:.3g}<extra></extra>",
    ))
    add_note(fig, f"{len(shown):,} of {len(gate):,} neurons: the {STRONGEST} largest |silu(gate)·up|, the rest at "
                  "random" if len(shown) < len(gate) else None)
    fig.add_vline(x=0, line=dict(color="#999999", width=1))
    fig.add_hline(y=0, line=dict(color="#999999", width=1))
    fig.update_xaxes(title_text="gate (gate_proj output, before silu)")
    fig.update_yaxes(title_text="up (up_proj output)")
    return style(fig, title=f"Gate against up at token {label(token_label)}: one point per neuron",
                 height=460)
