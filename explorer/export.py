"""Figures and their data as files: standalone HTML (opens offline, interactive) and CSV."""

import html
import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .figures.common import GAP


def figure_html(fig: go.Figure) -> str:
    """A standalone HTML page with plotly.js inlined, so it opens without a network, e.g. in a classroom."""
    return fig.to_html(include_plotlyjs=True, full_html=True)


def figure_csv(fig: go.Figure) -> str:
    """The data behind every trace of `fig` as one long CSV: trace, x, y and (for heatmaps) z, one row per point.

    Numeric positions on token axes are written together with their token labels, so a spreadsheet shows words; a
    heatmap's category axes already hold them ("3: cat"). A heatmap's named customdata (its `meta`, e.g. which head)
    adds columns, and the blank rows and columns that separate tiled matrices are left out.
    """
    frames = []
    for index, trace in enumerate(fig.data):
        name = trace.name or f"{trace.type} {index}"
        if trace.type == "heatmap":
            frame = _heatmap_frame(trace)
        elif trace.x is not None or trace.y is not None:
            frame = pd.DataFrame({"x": _column(trace.x), "y": _column(trace.y)})
        else:
            continue
        frame.insert(0, "trace", name)
        for column in ("x", "y"):
            labels = _tick_labels(_axis(fig, trace, column))
            if labels and pd.api.types.is_numeric_dtype(frame[column]):
                frame.insert(frame.columns.get_loc(column) + 1, f"{column}_label", frame[column].map(labels))
        frames.append(frame)
    out = io.StringIO()
    (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()).to_csv(out, index=False)
    return out.getvalue()


def _heatmap_frame(trace) -> pd.DataFrame:
    z = np.asarray(trace.z)
    z = z if z.dtype.kind == "f" else z.astype(float)  # float32 stays float32: its shortest decimals in the CSV
    rows, cols = np.meshgrid(np.arange(z.shape[0]), np.arange(z.shape[1]), indexing="ij")
    frame = pd.DataFrame({"x": _cells(trace.x, z.shape[1])[cols.ravel()],
                          "y": _cells(trace.y, z.shape[0])[rows.ravel()], "z": z.ravel()})
    names = trace.meta.get("customdata", []) if isinstance(trace.meta, dict) else []
    if names and trace.customdata is not None:
        custom = np.asarray(trace.customdata).reshape(z.size, -1)
        for i, column in enumerate(names):
            frame[column] = custom[:, i]
    gap = frame.x.eq("") | frame.y.eq("")  # blank separator rows and columns have no label
    return frame[~gap].reset_index(drop=True)


def _cells(values, n: int) -> np.ndarray:
    """A heatmap axis as one value per row or column: positions, category labels as text (unescaped, without the
    zero-width marks that keep tiled copies apart), or a two-level axis joined as "KV 0 / h1"."""
    if values is None or not len(values):
        return np.arange(n)
    if isinstance(values[0], (list, tuple, np.ndarray)):  # multicategory: one list per level
        return np.array([" / ".join(str(level[i]) for level in values) for i in range(n)], dtype=object)
    if isinstance(values[0], str):
        return np.array([html.unescape(v).replace(GAP, "") for v in values], dtype=object)
    return np.asarray(values)


def _column(values) -> list:
    return [] if values is None else list(values)


def _axis(fig: go.Figure, trace, letter: str):
    ref = getattr(trace, f"{letter}axis", None) or letter
    return fig.layout[f"{letter}axis{ref[1:]}"]


def _tick_labels(axis) -> dict:
    if axis is None or axis.tickvals is None or axis.ticktext is None:
        return {}
    return {value: html.unescape(text) for value, text in zip(axis.tickvals, axis.ticktext)}  # Plotly-escaped
