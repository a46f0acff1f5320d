"""Figures and their data as files: standalone HTML (opens offline, interactive) and tidy CSV."""

import html
import io
import json
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import __version__
from .figures.common import GAP

HEADER_LINES = 3  # the "# …" lines above a CSV's column names: pandas.read_csv(path, skiprows=HEADER_LINES)
_POSITIONAL = re.compile(r"^(\d+(?:–\d+)?): (.*)$", re.DOTALL)  # "12: cat", or "8–15: a … b" for a pooled block


def figure_html(fig: go.Figure) -> str:
    """A standalone HTML page with plotly.js inlined, so it opens without a network, e.g. in a classroom."""
    return fig.to_html(include_plotlyjs=True, full_html=True)


def figure_csv(fig: go.Figure, *, model: str = "", text: str = "") -> str:
    """The data behind `fig` as tidy CSV: one row per heatmap cell, bar or point, one column per quantity, named
    after the chart's axes and colour scale (query_pos, query_token, key_pos, key_token, attention_weight, head,
    kv_head…), under HEADER_LINES lines that say which model, which text and which chart.

    Positions on token axes are written as a number and a token; the blank rows and columns that separate tiled
    matrices are left out; a column holds the trace's name only where the chart has several.
    """
    traces = [t for t in fig.data if t.type == "heatmap" or t.x is not None or t.y is not None]
    frames = []
    for trace in traces:
        frame = _heatmap_frame(fig, trace) if trace.type == "heatmap" else _points_frame(fig, trace)
        if len(traces) > 1:
            frame.insert(0, "series", trace.name or trace.type)
        frames.append(frame)
    title = re.sub(r"<[^>]+>", "", html.unescape(fig.layout.title.text or ""))  # as read, without its markup
    header = [f"# model: {model}", f"# text: {json.dumps(text, ensure_ascii=False)}",
              f"# chart: {json.dumps(title, ensure_ascii=False)}, Modern Blocks Explorer {__version__}"]
    out = io.StringIO()
    out.write("\n".join(header) + "\n")
    (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()).to_csv(out, index=False)
    return out.getvalue()


def _heatmap_frame(fig: go.Figure, trace) -> pd.DataFrame:
    z = np.asarray(trace.z)
    z = z if z.dtype.kind == "f" else z.astype(float)  # float32 stays float32: its shortest decimals in the CSV
    y, x = _cells(trace.y, z.shape[0]), _cells(trace.x, z.shape[1])
    rows, cols = np.meshgrid(np.arange(z.shape[0]), np.arange(z.shape[1]), indexing="ij")
    columns = {}
    for letter, labels, index in (("y", y, rows), ("x", x, cols)):  # rows first: read like a matrix
        columns.update(_axis_columns(_axis_name(fig, trace, letter), labels[index.ravel()]))
    columns[_value_name(trace)] = z.ravel()
    frame = _with_custom(pd.DataFrame(columns), trace)
    # Blank separator rows and columns (between tiled matrices) have no label.
    gap = (y[rows.ravel()] == "") | (x[cols.ravel()] == "")
    frame = frame[~gap]
    names = [_slug(n) for n in trace.meta.get("customdata", [])] if isinstance(trace.meta, dict) else []
    # A tiled grid (one matrix per head) is written head by head, each matrix row by row.
    return frame.sort_values(names, kind="stable").reset_index(drop=True) if names else frame.reset_index(drop=True)


def _points_frame(fig: go.Figure, trace) -> pd.DataFrame:
    columns = {_axis_name(fig, trace, letter): list(getattr(trace, letter)) for letter in ("x", "y")
               if getattr(trace, letter) is not None}
    return _with_custom(pd.DataFrame(columns), trace)


def _with_custom(frame: pd.DataFrame, trace) -> pd.DataFrame:
    """`frame` with a column for each customdata field that the trace's `meta` names (e.g. head, kv_head, token)."""
    names = trace.meta.get("customdata", []) if isinstance(trace.meta, dict) else []
    if names and trace.customdata is not None:
        custom = np.asarray(trace.customdata, dtype=object).reshape(len(frame), -1)
        for i, column in enumerate(names):
            frame[_slug(column)] = [html.unescape(v) if isinstance(v, str) else v for v in custom[:, i]]
    return frame


def _axis_columns(name: str, labels: np.ndarray) -> dict[str, np.ndarray]:
    """A positional axis ("12: cat") as a position and a token column; any other as one column of its labels."""
    if labels.dtype == object and len(labels):
        found = [_POSITIONAL.match(str(label)) for label in labels if label != ""]
        if found and all(found):
            parts = [_POSITIONAL.match(str(label)) for label in labels]
            stem = name.removesuffix("_token")  # "query_token" -> query_pos, query_token; "position" -> position, token
            pos, token = ("position", "token") if stem == "position" else (f"{stem}_pos", f"{stem}_token")
            return {pos: np.array([p.group(1) if p else "" for p in parts], dtype=object),
                    token: np.array([p.group(2) if p else "" for p in parts], dtype=object)}
    return {name: labels}


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


def _axis_key(trace, letter: str) -> str:
    ref = getattr(trace, f"{letter}axis", None) or letter
    return f"{letter}axis{ref[1:]}"


def _axis_name(fig: go.Figure, trace, letter: str) -> str:
    """A column name for one axis: its title as a name ("key token" -> key_token), else x or y."""
    title = fig.layout[_axis_key(trace, letter)].title.text
    return _slug(title) if title else letter


def _value_name(trace) -> str:
    """The heatmap's colour bar title as a column name ("attention weight" -> attention_weight), else value."""
    title = trace.colorbar.title.text if trace.colorbar and trace.colorbar.title else None
    return _slug(title) if title else "value"


def _slug(text: str) -> str:
    """A column name: lower case, parenthesised remarks and markup dropped, words joined by "_"."""
    text = re.sub(r"<[^>]+>|\([^)]*\)", " ", html.unescape(str(text))).lower()
    return "_".join(re.findall(r"[\w\-/]+", text)).replace("/", "_per_") or "value"
