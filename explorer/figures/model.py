"""Figures of the model page: the block diagram (SVG), parameter counts, next-token guesses and KV-cache sizes."""

import html
import math
import re

import plotly.graph_objects as go

from .common import style

# Fill colours by role, so the same kind of box looks the same wherever it appears.
ROLE_COLOURS = {"io": "#e5dbff", "norm": "#fff3bf", "attention": "#d0ebff", "mlp": "#d3f9d8"}
WIDTH, HEIGHT = 1200, 405  # the drawing's own units (the SVG's viewBox): x to the right, y up from the bottom
STREAM_Y = 80  # height of the residual stream
BRANCH_Y = 230  # height of the sub-layers that branch off the stream
INK, LINE = "#212529", "#495057"
LINE_HEIGHT = 18


class _Drawing:
    """SVG elements in drawing units. A diagram is a drawing, not a data chart: as SVG it is on screen as soon as the
    page arrives (no chart library to load first), keeps its circles round at any width, and exports as a file."""

    def __init__(self):
        self.elements: list[str] = []

    def box(self, x0: float, x1: float, y0: float, y1: float, text: str, role: str) -> None:
        self.elements.append(f'<rect x="{x0}" y="{HEIGHT - y1}" width="{x1 - x0}" height="{y1 - y0}" '
                             f'fill="{ROLE_COLOURS[role]}" stroke="{LINE}" stroke-width="1.2"/>')
        self.text((x0 + x1) / 2, (y0 + y1) / 2, text)

    def text(self, x: float, y: float, text: str, *, anchor: str = "middle", valign: str = "middle",
             size: int = 15, colour: str = INK) -> None:
        """`text` may hold <br> (line breaks) and <b>…</b> (bold), like the labels of analysis.model_facts."""
        lines = text.split("<br>")
        first = {"top": 0.8, "middle": 0.35 - (len(lines) - 1) / 2, "bottom": 0.35 - len(lines) + 0.45}[valign]
        spans = "".join(f'<tspan x="{x}" dy="{(first if i == 0 else 1) * LINE_HEIGHT:.1f}">{_bold(line)}</tspan>'
                        for i, line in enumerate(lines))
        self.elements.append(f'<text x="{x}" y="{HEIGHT - y}" text-anchor="{anchor}" font-size="{size}" '
                             f'fill="{colour}">{spans}</text>')

    def line(self, *points: tuple[float, float], arrow: bool = False, dash: bool = False) -> None:
        path = " ".join(f"{x},{HEIGHT - y}" for x, y in points)
        self.elements.append(f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="1.5"'
                             + (' marker-end="url(#arrow)"' if arrow else "")
                             + (' stroke-dasharray="6 4"' if dash else "") + "/>")

    def arrow(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        self.line(start, end, arrow=True)

    def add(self, x: float, y: float) -> None:
        """The ⊕ where a sub-layer's output is added back onto the stream."""
        self.elements.append(f'<circle cx="{x}" cy="{HEIGHT - y}" r="13" fill="white" stroke="{LINE}" '
                             f'stroke-width="1.5"/>')
        self.text(x, y, "+", size=18)

    def residual_branch(self, x: float, norm_text: str, layer_text: str, role: str) -> float:
        """Norm then sub-layer above the stream, its output added back at a ⊕; returns the x of the ⊕."""
        norm, layer, add = (x + 20, x + 110), (x + 130, x + 320), x + 340
        self.line((x, STREAM_Y), (x, BRANCH_Y))
        self.arrow((x, BRANCH_Y), (norm[0], BRANCH_Y))
        self.box(*norm, BRANCH_Y - 50, BRANCH_Y + 50, norm_text, "norm")
        self.arrow((norm[1], BRANCH_Y), (layer[0], BRANCH_Y))
        self.box(*layer, BRANCH_Y - 110, BRANCH_Y + 110, layer_text, role)
        self.line((layer[1], BRANCH_Y), (add, BRANCH_Y))
        self.arrow((add, BRANCH_Y), (add, STREAM_Y + 13))
        self.add(add, STREAM_Y)
        return add

    def svg(self, title: str) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
                f'style="width:100%;max-width:{WIDTH * 1.25:.0f}px;height:auto;font-family:sans-serif">'
                f"<title>{html.escape(title)}</title>"
                f'<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
                f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{LINE}"/></marker></defs>'
                + "".join(self.elements) + "</svg>")


def _bold(line: str) -> str:
    """One label line as SVG text: <b>…</b> becomes a bold tspan, everything else is escaped."""
    parts = re.split(r"<b>(.*?)</b>", line)
    return "".join(f'<tspan font-weight="bold">{html.escape(p)}</tspan>' if i % 2 else html.escape(p)
                   for i, p in enumerate(parts))


def block_diagram(labels: dict[str, str]) -> str:
    """The decoder drawn left to right as SVG: embedding, N pre-norm blocks on the residual stream, final norm,
    LM head.

    `labels` holds the text of each box (see analysis.model_facts.diagram_labels): embedding, attn_norm, attention,
    mlp_norm, mlp, final_norm, lm_head, repeat (the frame's title) and stream (the residual stream's caption).
    """
    d = _Drawing()
    d.text(5, STREAM_Y + 65, "token ids", anchor="start", valign="bottom")
    d.arrow((0, STREAM_Y), (15, STREAM_Y))
    d.box(15, 155, STREAM_Y - 60, STREAM_Y + 60, labels["embedding"], "io")
    frame = (175, 920)
    d.line((frame[0], 5), (frame[1], 5), (frame[1], 395), (frame[0], 395), (frame[0], 5), dash=True)
    d.text(frame[0] + 10, 380, f"<b>{labels['repeat']}</b>", anchor="start", valign="top")
    d.text(frame[0] + 10, STREAM_Y - 25, labels["stream"], anchor="start", valign="top", size=13, colour=LINE)
    first_add = d.residual_branch(frame[0] + 20, labels["attn_norm"], labels["attention"], "attention")
    second_add = d.residual_branch(first_add + 25, labels["mlp_norm"], labels["mlp"], "mlp")
    d.line((155, STREAM_Y), (first_add - 13, STREAM_Y))
    d.line((first_add + 13, STREAM_Y), (second_add - 13, STREAM_Y))
    d.arrow((second_add + 13, STREAM_Y), (945, STREAM_Y))
    d.box(945, 1035, STREAM_Y - 60, STREAM_Y + 60, labels["final_norm"], "norm")
    d.arrow((1035, STREAM_Y), (1055, STREAM_Y))
    d.box(1055, 1195, STREAM_Y - 75, STREAM_Y + 75, labels["lm_head"], "io")
    d.arrow((1125, STREAM_Y + 75), (1125, STREAM_Y + 125))
    d.text(1125, STREAM_Y + 135, "logits: V scores<br>per position", valign="bottom")
    return d.svg("Block diagram: " + re.sub(r"<[^>]+>", " ", labels["repeat"]))


def parameter_bar(components: list[str], counts: list[int]) -> go.Figure:
    """Parameters per component as horizontal bars, first component on top, with count and share as text."""
    total = sum(counts)
    fig = go.Figure(go.Bar(
        x=counts, y=components, orientation="h", marker_color="#4c6ef5",
        text=[f"{n:,} ({n / total:.1%})" for n in counts], textposition="auto",
        hovertemplate="%{y}: %{x:,} parameters<extra></extra>",
    ))
    fig.update_xaxes(title_text="parameters (count)")
    fig.update_yaxes(title_text="component", autorange="reversed", automargin=True)
    return style(fig, title=f"Where the {total:,} parameters are", height=max(260, 40 * len(components) + 110))


def top_k_bar(tokens: list[str], probabilities: list[float], *, position_token: str) -> go.Figure:
    """The most likely next tokens, most likely on top; tokens may repeat as strings, so bars are placed by rank."""
    ranks = list(range(len(tokens)))
    # Enough decimals that the largest probability shows: a random-weight Qwen3 spreads ~1e-5 over 151,936 tokens,
    # where ".0%" printed "0%" on every tick.
    largest = max((p for p in probabilities if math.isfinite(p)), default=1.0)  # NaN where a forward broke
    digits = max(0, math.ceil(-math.log10(max(largest, 1e-12))) - 2)
    fig = go.Figure(go.Bar(
        x=probabilities, y=ranks, orientation="h", marker_color="#4c6ef5",
        text=[f"{p:.{digits + 1}%}" for p in probabilities], textposition="outside", cliponaxis=False,
        customdata=tokens, hovertemplate="%{customdata}: probability %{x:.4f}<extra></extra>",
    ))
    fig.update_xaxes(title_text="probability", range=[0, min(1.0, max(probabilities) * 1.18)],
                     tickformat=f".{digits}~%")
    fig.update_yaxes(title_text="next token", tickmode="array", tickvals=ranks,
                     ticktext=[f"{i + 1}. {t}" for i, t in enumerate(tokens)], autorange="reversed", automargin=True)
    return style(fig, title=f"Most likely tokens after “{position_token}”", height=max(260, 28 * len(tokens) + 110))


def kv_cache_bar(labels: list[str], sizes: list[int], size_texts: list[str], highlight: list[bool],
                 *, subtitle: str) -> go.Figure:
    """KV-cache bytes for attention variants; `highlight` marks this model's bar."""
    fig = go.Figure(go.Bar(
        x=labels, y=sizes, text=size_texts, textposition="outside", cliponaxis=False,
        marker_color=["#4c6ef5" if h else "#adb5bd" for h in highlight],
        hovertemplate="%{x}: %{y:,} bytes (%{text})<extra></extra>",
    ))
    fig.update_xaxes(title_text="attention variant (same layers and head_dim)")
    fig.update_yaxes(title_text="KV-cache memory (bytes)", range=[0, max(sizes) * 1.18])
    return style(fig, title=f"KV-cache memory: {subtitle}", height=380)


MAX_CHIPS = 256  # tokens drawn as chips; the table below the chips has every one


def token_chips(tokens: list[str], prompt_length: int) -> str:
    """The tokens as a wrapped row of chips (HTML for st.html), each with its position below, so a whole prompt is
    read at a glance; generated tokens tinted. Past MAX_CHIPS tokens, a line says how many more there are."""
    chips = []
    for i, token in enumerate(tokens[:MAX_CHIPS]):
        tint = "#d0ebff" if i >= prompt_length else "#f1f3f5"
        chips.append(f'<span style="display: inline-flex; flex-direction: column; align-items: center; margin: 2px; '
                     f'padding: 2px 6px; border-radius: 6px; background: {tint}; font-family: monospace">'
                     f'<span style="white-space: pre">{html.escape(token)}</span>'
                     f'<span style="font-size: 0.7em; color: #868e96">{i}</span></span>')
    more = len(tokens) - MAX_CHIPS
    tail = f'<div style="color: #868e96">… and {more:,} more tokens: the table below has them all.</div>' if more > 0 else ""
    return f'<div style="line-height: 1.2">{"".join(chips)}</div>{tail}'
