"""Figures of the Gradients page: where one backward pass sends the loss's signal."""

import numpy as np
import plotly.graph_objects as go

from .common import SEQUENTIAL, axis_labels, category_axis, style, token_heatmap


def parameter_heatmap(groups: dict[str, np.ndarray]) -> go.Figure:
    """Parameter groups (rows, in block order) × layers: the gradient norm, coloured on a log scale so that small
    and large groups both show; hover gives the value."""
    names = list(groups)
    values = np.array([groups[name] for name in names])
    layers = values.shape[1]
    fig = go.Figure(go.Heatmap(
        z=np.log10(np.maximum(values, 1e-30)), x=[f"layer {i}" for i in range(layers)], y=names,
        customdata=values, colorscale=SEQUENTIAL, xgap=1, ygap=1,
        hovertemplate="%{y}, %{x}<br>gradient norm %{customdata:.3g}<extra></extra>",
        colorbar=dict(title=dict(text="log10 norm", side="right"), thickness=12),
    ))
    fig.update_yaxes(autorange="reversed", title_text="parameter group")
    fig.update_xaxes(title_text="layer")
    return style(fig, title="Gradient norm of each parameter group, by layer", height=max(320, 30 * len(names) + 160))


def stream_heatmap(stream: np.ndarray, tokens: list[str]) -> go.Figure:
    """|∂loss/∂stream| at every layer's input (and after the last) and position, layer 0 on top."""
    depth = [f"L{i} input" for i in range(stream.shape[0] - 1)] + ["after the last layer"]
    return token_heatmap(stream, depth, tokens, value_name="|∂loss/∂stream|", row_title="residual stream at",
                         col_title="position", number_rows=False, pool_by="max",
                         title="How strongly the loss reaches the residual stream, by layer and position")


def saliency_bar(saliency: np.ndarray, tokens: list[str]) -> go.Figure:
    """Gradient × embedding per prompt token: positive where the token's embedding raised the loss."""
    labels = axis_labels(tokens)
    fig = go.Figure(go.Bar(
        x=labels, y=saliency, marker_color=np.where(saliency >= 0, "#e03131", "#1c7ed6"),
        hovertemplate="%{x}<br>gradient × embedding %{y:+.4f}<extra></extra>",
    ))
    fig.update_xaxes(title_text="token", tickangle=-60, **category_axis(labels, max_labels=48))
    fig.update_yaxes(title_text="gradient × embedding", zeroline=True, zerolinecolor="#868e96")
    return style(fig, title="Token saliency: each token's first-order share of the loss", height=400)
