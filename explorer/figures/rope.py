"""RoPE figures: the frequency spectrum, the angle table, q/k pairs turning in their planes, scores against distance."""

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import FONT, LABEL_PX, MAX_CELLS, add_note, axis_labels, block_size, category_axis, label, style

BAND_COLORS = ("#1f77b4", "#ff7f0e", "#d62728")  # kept, interpolated, divided by factor
CYCLIC = "Twilight"  # 0 and 2π get the same colour, as they are the same rotation


def spectrum_figure(
    inv_freq: np.ndarray,
    inv_freq_unscaled: np.ndarray | None = None,
    bands: np.ndarray | None = None,
    band_names: tuple[str, ...] = (),
    prompt_length: int | None = None,
    wavelength_limits: tuple[float, float] | None = None,
) -> go.Figure:
    """Inverse frequency per pair on a log axis. With `inv_freq_unscaled`, the unscaled spectrum is drawn as a line
    and the scaled one as points, coloured by llama3 band where `bands` is given."""
    pairs = np.arange(len(inv_freq))
    fig = go.Figure()
    hover = ("pair %{x}<br>inv_freq %{y:.4g} rad/token<br>wavelength %{customdata:,.1f} tokens"
             "<extra>%{fullData.name}</extra>")
    if inv_freq_unscaled is not None:
        fig.add_trace(go.Scatter(x=pairs, y=inv_freq_unscaled, mode="lines+markers", name="unscaled θ^(-2i/dh)",
                                 line=dict(color="#999999", dash="dash"), marker=dict(size=5, color="#999999"),
                                 customdata=2 * np.pi / inv_freq_unscaled, hovertemplate=hover))
    groups = [(np.ones(len(pairs), bool), "used by the model", BAND_COLORS[0])] if bands is None else [
        (bands == b, f"scaled: {name}", BAND_COLORS[b]) for b, name in enumerate(band_names)]
    for keep, name, color in groups:
        if keep.any():
            fig.add_trace(go.Scatter(x=pairs[keep], y=inv_freq[keep], mode="markers", name=name,
                                     marker=dict(size=8, color=color), customdata=2 * np.pi / inv_freq[keep],
                                     hovertemplate=hover))
    # Reference wavelengths as flat lines across the pairs (traces, so they sit in the legend, not on the data).
    references = [(prompt_length, f"one full turn over this prompt ({prompt_length} tokens)", "#2ca02c")] \
        if prompt_length and prompt_length > 1 else []
    references += [(w, f"{text} (λ = {w:,.0f} tokens)", "#777777") for w, text in
                   zip(wavelength_limits or (), ("llama3: shorter wavelengths kept", "llama3: longer divided"))]
    for wavelength, name, color in references:
        fig.add_trace(go.Scatter(x=[pairs[0], pairs[-1]], y=[2 * np.pi / wavelength] * 2, mode="lines", name=name,
                                 line=dict(color=color, dash="dot", width=1.5), hoverinfo="name"))
    fig.update_xaxes(title_text="frequency pair i (dimensions i and i + dh/2)", dtick=max(1, len(pairs) // 16))
    fig.update_yaxes(title_text="inv_freq (rad/token, log)", type="log", exponentformat="power")
    fig.update_layout(legend=dict(orientation="h", y=-0.2))
    return style(fig, title="RoPE frequency spectrum: how fast each pair turns", height=420)


def angle_heatmap(angles: np.ndarray, tokens: list[str], inv_freq: np.ndarray) -> go.Figure:
    """(T, dh/2) angles mod 2π as pairs (rows, fastest on top) × positions (columns, token labels).

    Beyond MAX_CELLS positions only every k-th is drawn, and the chart says so: angles wrap at 2π, so a mean over
    positions would be a colour no position has."""
    step = block_size(len(tokens), MAX_CELLS)
    kept = np.arange(0, len(tokens), step)
    z = np.asarray(angles, dtype=np.float32)[kept].T  # (pairs, kept positions)
    labels = axis_labels(tokens)
    x = [labels[i] for i in kept]
    y = [f"{i}: ω = {w:.3g}" for i, w in enumerate(inv_freq)]
    fig = go.Figure(go.Heatmap(
        z=z, x=x, y=y, zmin=0, zmax=2 * np.pi, colorscale=CYCLIC, hoverongaps=False,
        hovertemplate="position %{x}<br>pair %{y} rad/token<br>angle %{z:.3f} rad (mod 2π)<extra></extra>",
        colorbar=dict(title=dict(text="angle (rad, mod 2π)", side="right"), thickness=12,
                      tickvals=np.arange(5) * np.pi / 2, ticktext=["0", "π/2", "π", "3π/2", "2π"]),
    ))
    height = max(320, min(800, 14 * len(y) + 200))
    fig.update_xaxes(title_text="position (token)", tickangle=-60, **category_axis(x, max_labels=48))
    fig.update_yaxes(title_text="pair i: ω (rad/token)", autorange="reversed",  # fastest on top
                     **category_axis(y, max_labels=max(4, (height - 200) // LABEL_PX)))
    style(fig, title="Rotation angle position × inv_freq[i], wrapped to [0, 2π)", height=height)
    return add_note(fig, f"one column every {step} positions" if step > 1 else None)


def pair_planes(
    before: dict[str, np.ndarray], after: dict[str, np.ndarray], pairs: list[int], inv_freq: np.ndarray, position: int
) -> go.Figure:
    """One plane per frequency pair: each vector's 2-D pair before RoPE (faded) and after (solid), as arrows.

    before / after map a name ("q", "k") to (len(pairs), 2) coordinates."""
    titles = [f"pair {i}: ω = {inv_freq[i]:.3g} rad/token<br>turned by {position}·ω = "
              f"{np.mod(position * inv_freq[i], 2 * np.pi):.2f} rad (mod 2π)" for i in pairs]
    fig = make_subplots(rows=1, cols=len(pairs), subplot_titles=titles, horizontal_spacing=0.06)
    colors = {"q": "#1f77b4", "k": "#d62728"}
    for col, _ in enumerate(pairs, start=1):
        for name, color in colors.items():
            for stage, points, opacity, dash in (("before", before, 0.45, "dot"), ("after", after, 1.0, "solid")):
                x, y = points[name][col - 1]
                fig.add_trace(go.Scatter(
                    x=[0, x], y=[0, y], mode="lines+markers", name=f"{name} {stage} RoPE",
                    legendgroup=f"{name} {stage}", showlegend=col == 1, opacity=opacity,
                    line=dict(color=color, dash=dash, width=2),
                    marker=dict(symbol="arrow", size=[0, 13], angleref="previous", color=color),
                    hovertemplate=f"{name} {stage} RoPE<br>(%{{x:.3f}}, %{{y:.3f}})<extra></extra>",
                ), row=1, col=col)
        radius = 1.15 * max(np.hypot(*points[name][col - 1]) for points in (before, after) for name in colors) or 1.0
        axis = f"x{col}" if col > 1 else "x"
        fig.update_xaxes(range=[-radius, radius], title_text="x[i]", zeroline=True, row=1, col=col)
        fig.update_yaxes(range=[-radius, radius], title_text="x[i + dh/2]", scaleanchor=axis, zeroline=True,
                         row=1, col=col)
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    style(fig, title=None, height=450)
    fig.update_annotations(font=dict(FONT, size=12))  # the subplot titles
    fig.update_layout(margin=dict(t=60))
    return fig


def distance_bands(profile, mine: np.ndarray, mine_score: np.ndarray, mine_key: np.ndarray, tokens: list[str],
                   highlight_query: int, *, note: str | None = None) -> go.Figure:
    """A head's scores against m − n as bands (analysis.rope.DistanceProfile): all of them light grey, the middle 80%
    darker, the median a line; the chosen query's own scores (at distances `mine`, keys `mine_key`) drawn on top."""
    labels = _position_labels(tokens)
    x = profile.distance
    spread = np.stack([profile.count, profile.low, profile.p10, profile.median, profile.p90, profile.high],
                      axis=-1).astype(np.float32)
    hover = ("m − n = %{x}: %{customdata[0]:,} scores<br>median %{customdata[3]:.4g}<br>"
             "middle 80%: %{customdata[2]:.4g} to %{customdata[4]:.4g}<br>"
             "all: %{customdata[1]:.4g} to %{customdata[5]:.4g}<extra></extra>")

    def edge(y, **kwargs) -> go.Scatter:
        """One edge of a band; the upper edge (fill="tonexty") fills down to the lower one and names the band."""
        return go.Scatter(x=x, y=np.asarray(y, np.float32), mode="lines", line=dict(width=0), hoverinfo="skip",
                          showlegend="name" in kwargs, **kwargs)

    fig = go.Figure([
        edge(profile.low),
        edge(profile.high, fill="tonexty", fillcolor="rgba(154, 165, 177, 0.25)", name="all scores"),
        edge(profile.p10),
        edge(profile.p90, fill="tonexty", fillcolor="rgba(154, 165, 177, 0.55)", name="middle 80%"),
        go.Scatter(x=x, y=np.asarray(profile.median, np.float32), mode="lines", name="median",
                   line=dict(color="#495057", width=1.5), customdata=spread, hovertemplate=hover),
        go.Scatter(x=mine, y=np.asarray(mine_score, np.float32),
                   mode="lines+markers" if len(mine) <= 256 else "lines", name=f"query {labels[highlight_query]}",
                   marker=dict(size=7, color="#d62728"), line=dict(color="#d62728", width=1),
                   customdata=labels[mine_key],
                   hovertemplate=f"query {labels[highlight_query]}<br>key %{{customdata}}<br>m − n = %{{x}}<br>"
                                 "score %{y:.4g}<extra></extra>"),
    ])
    fig.update_xaxes(title_text="relative distance m − n (tokens back from the query)")
    fig.update_yaxes(title_text="score q_rot[m]·k_rot[n] / √dh")
    fig.update_layout(legend=dict(orientation="h", x=1, xanchor="right", y=1.02, yanchor="bottom"), hovermode="x")
    style(fig, title="Attention scores of this head against distance", height=400)
    return add_note(fig, note)


def shift_figure(shift: np.ndarray, lines: dict[str, np.ndarray]) -> go.Figure:
    """Score against shift s, one line per way of shifting."""
    fig = go.Figure([go.Scatter(x=shift, y=values, mode="lines+markers", name=name,
                                hovertemplate=f"{name}<br>s = %{{x}}<br>score %{{y:.6f}}<extra></extra>")
                     for name, values in lines.items()])
    # Shifts double from one point to the next: an evenly spaced category axis keeps the small ones readable.
    fig.update_xaxes(title_text="shift s (tokens added to the position; each step doubles)", type="category")
    fig.update_yaxes(title_text="score q_rot·k_rot / √dh")
    style(fig, title="Same q and k moved along the sequence", height=420)
    # The legend at the figure's foot, below the axis title (a half-width chart has no room beside its title).
    return fig.update_layout(legend=dict(orientation="h", x=0, yref="container", y=0, yanchor="bottom"),
                             margin_b=110)


def _position_labels(tokens: list[str]) -> np.ndarray:
    """Hover labels like '3: cat', as plotly text."""
    return np.array([f"{i}: {label(tok)}" for i, tok in enumerate(tokens)], dtype=object)
