"""Figures and their data as files: standalone HTML (opens offline, interactive) and CSV."""

import html
import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go


def figure_html(fig: go.Figure) -> str:
    """A standalone HTML page with plotly.js inlined, so it opens without a network, e.g. in a classroom."""
    return fig.to_html(include_plotlyjs=True, full_html=True)


def figure_csv(fig: go.Figure) -> str:
    """The data behind every trace of `fig` as one long CSV: trace, x, y and (for heatmaps) z, one row per point.

    Numeric positions on token axes are written together with their token labels, so a spreadsheet shows words.
    """
    frames = []
    for index, trace in enumerate(fig.data):
        name = trace.name or f"{trace.type} {index}"
        x_axis, y_axis = _axis(fig, trace, "x"), _axis(fig, trace, "y")
        if trace.type == "heatmap":
            z = np.asarray(trace.z, dtype=float)
            xs = np.asarray(trace.x) if trace.x is not None else np.arange(z.shape[1])
            ys = np.asarray(trace.y) if trace.y is not None else np.arange(z.shape[0])
            rows, cols = np.meshgrid(np.arange(z.shape[0]), np.arange(z.shape[1]), indexing="ij")
            frame = pd.DataFrame({"x": xs[cols.ravel()], "y": ys[rows.ravel()], "z": z.ravel()})
        elif trace.x is not None or trace.y is not None:
            frame = pd.DataFrame({"x": _column(trace.x), "y": _column(trace.y)})
        else:
            continue
        frame.insert(0, "trace", name)
        for column, axis in (("x", x_axis), ("y", y_axis)):
            labels = _tick_labels(axis)
            if labels:
                frame.insert(frame.columns.get_loc(column) + 1, f"{column}_label", frame[column].map(labels))
        frames.append(frame)
    out = io.StringIO()
    (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()).to_csv(out, index=False)
    return out.getvalue()


def _column(values) -> list:
    return [] if values is None else list(values)


def _axis(fig: go.Figure, trace, letter: str):
    ref = getattr(trace, f"{letter}axis", None) or letter
    return fig.layout[f"{letter}axis{ref[1:]}"]


def _tick_labels(axis) -> dict:
    if axis is None or axis.tickvals is None or axis.ticktext is None:
        return {}
    return {value: html.unescape(text) for value, text in zip(axis.tickvals, axis.ticktext)}  # Plotly-escaped
