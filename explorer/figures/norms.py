"""Norms figures: residual-stream length and 1/rms per depth × token, RMSNorm gains, and massive activations."""

import numpy as np
import plotly.graph_objects as go

from .common import DIVERGING, LABEL_PX, SEQUENTIAL, axis_labels, category_axis, label, style, token_heatmap


def residual_norm_heatmap(norms: np.ndarray, depth_labels: list[str], tokens: list[str], *,
                          log: bool = False) -> go.Figure:
    """(depth, T) L2 norms, depth growing downwards. `log` colours by log10 so one huge token does not wash out
    the rest."""
    z = np.log10(np.maximum(norms, 1e-12)) if log else norms
    name = "log₁₀ ‖x‖₂" if log else "‖x‖₂"
    # Block max where a long prompt is pooled: a mean would halve the one token with a massive norm.
    return token_heatmap(z, depth_labels, tokens, value_name=name, row_title="residual stream at",
                         col_title="token", title=f"Residual-stream length {name} per depth and token",
                         pool_by="max", number_rows=False)


def inverse_rms_heatmap(inv_rms: np.ndarray, norm_labels: list[str], tokens: list[str]) -> go.Figure:
    """(norms, T) of 1/rms: how much each RMSNorm scales its input before the gain."""
    return token_heatmap(inv_rms, norm_labels, tokens, value_name="1/rms", row_title="RMSNorm",
                         col_title="token", title="RMSNorm factor 1/rms per norm and token (large = small input scaled up)",
                         number_rows=False)


def gain_heatmap(gains: np.ndarray, norm_labels: list[str], outliers: list[tuple[int, int]] = ()) -> go.Figure:
    """(norms, D) learned gains, one row per norm in forward order; `outliers` (row, dim) are circled.

    Not pooled: its size is the model's, not the prompt's, and pooling would hide the outlier dimensions."""
    gains = np.asarray(gains, dtype=np.float32)
    rows, dims = gains.shape
    y = axis_labels(norm_labels, numbered=False)  # category names: hover reads the norm from the axis
    # Gains usually sit around a positive typical value: a sequential scale shows their spread; a diverging one is
    # only needed when some are negative, and then white must mean zero.
    signed = gains.min() < 0
    fig = go.Figure(go.Heatmap(
        z=gains, x=np.arange(dims), y=y, colorscale=DIVERGING if signed else SEQUENTIAL, zmid=0 if signed else None,
        hovertemplate="%{y}<br>dimension %{x}<br>gain %{z:.4g}<extra></extra>",
        colorbar=dict(title=dict(text="gain", side="right"), thickness=12),
    ))
    if len(outliers):
        marked_rows, marked_dims = np.array(outliers).T
        fig.add_trace(go.Scatter(
            x=marked_dims, y=[y[r] for r in marked_rows], mode="markers", name="outlier",
            marker=dict(symbol="circle-open", size=11, color="black", line=dict(width=2)),
            hovertemplate="outlier: dimension %{x}<extra></extra>",
        ))
    height = max(320, min(900, 18 * rows + 160))
    fig.update_xaxes(title_text="hidden dimension", range=[-0.5, dims - 0.5])
    fig.update_yaxes(title_text="RMSNorm", autorange="reversed",
                     **category_axis(y, max_labels=max(4, (height - 160) // LABEL_PX)))
    fig.update_layout(showlegend=False)
    return style(fig, title="Learned RMSNorm gains per norm and dimension (circles: outlier dimensions)",
                 height=height)


def massive_activation_chart(depth_labels: list[str], top: np.ndarray, median: np.ndarray,
                             where: list[str]) -> go.Figure:
    """Per depth the largest |activation| (bars, labelled with its ratio to the median) and the median |activation|,
    on a log axis. `where` says for each depth which token and dimension holds the largest one."""
    top, median = np.asarray(top, dtype=float), np.asarray(median, dtype=float)
    ratio = top / np.maximum(median, 1e-12)
    fig = go.Figure([
        go.Bar(x=depth_labels, y=top, name="largest |activation|", marker_color="#d62728", cliponaxis=False,
               text=[f"×{r:,.0f}" for r in ratio], textposition="outside",
               customdata=np.stack([[label(w) for w in where], ratio], -1),
               hovertemplate="%{x}<br>largest |activation| %{y:.4g}<br>at %{customdata[0]}<br>"
                             "%{customdata[1]:,.1f} × the median<extra></extra>"),
        go.Scatter(x=depth_labels, y=median, name="median |activation|", mode="lines+markers",
                   marker_color="#1f77b4", hovertemplate="%{x}<br>median |activation| %{y:.4g}<extra></extra>"),
    ])
    fig.update_xaxes(title_text="residual stream at")
    fig.update_yaxes(title_text="|activation| (log scale)", type="log")
    shown = np.concatenate([median, top])
    shown = shown[np.isfinite(shown) & (shown > 0)]  # a broken forward's NaN/inf have no place on a log axis
    if shown.size:
        ticks = log_ticks(shown.min(), shown.max())
        fig.update_yaxes(tickvals=ticks, ticktext=[f"{v:g}" for v in ticks])
    fig.update_layout(legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))
    return style(fig, title="Largest |activation| per depth (bar label: × the median)", height=420)


def log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 steps covering [low, high]: plotly's own log ticks label 0.2 as a bare "2" between the decades."""
    decades = range(int(np.floor(np.log10(max(low, 1e-12)))), int(np.ceil(np.log10(max(high, 1e-12)))) + 1)
    return [float(f"{m}e{e}") for e in decades for m in (1, 2, 5)]
