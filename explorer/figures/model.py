"""Figures of the model page: the block diagram, parameter counts, next-token guesses and KV-cache sizes."""

import plotly.graph_objects as go

from .common import style

# Fill colours by role, so the same kind of box looks the same wherever it appears.
ROLE_COLOURS = {"io": "#e5dbff", "norm": "#fff3bf", "attention": "#d0ebff", "mlp": "#d3f9d8"}
STREAM_Y = 8  # height of the residual stream in the diagram's coordinates (x 0..118, y 0..40)
BRANCH_Y = 23  # height of the sub-layers that branch off the stream
INK = "#212529"  # text colour, set explicitly: Streamlit's chart theme would grey annotations out


class _Drawing:
    """Shapes and annotations gathered first and given to the figure in one update: plotly re-validates the whole
    list on every add_shape / add_annotation, which made this diagram of ~40 parts take 0.2-0.5 s to build."""

    def __init__(self):
        self.shapes: list[dict] = []
        self.annotations: list[dict] = []

    def box(self, x0: float, x1: float, y0: float, y1: float, text: str, role: str) -> None:
        self.shapes.append(dict(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, fillcolor=ROLE_COLOURS[role],
                                line=dict(color="#495057", width=1.2), layer="below"))
        self.text((x0 + x1) / 2, (y0 + y1) / 2, text, font=dict(size=12, color=INK))

    def text(self, x: float, y: float, text: str, **style) -> None:
        self.annotations.append(dict(x=x, y=y, text=text, showarrow=False, **{"font": dict(color=INK), **style}))

    def arrow(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        self.annotations.append(dict(x=end[0], y=end[1], ax=start[0], ay=start[1], xref="x", yref="y", axref="x",
                                     ayref="y", text="", showarrow=True, arrowhead=2, arrowsize=1.2, arrowwidth=1.5,
                                     arrowcolor="#495057"))

    def line(self, *points: tuple[float, float]) -> None:
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            self.shapes.append(dict(type="line", x0=x0, y0=y0, x1=x1, y1=y1, line=dict(color="#495057", width=1.5)))

    def residual_branch(self, x: float, norm_text: str, layer_text: str, role: str) -> float:
        """Norm then sub-layer above the stream, its output added back at a ⊕; returns the x of the ⊕."""
        norm, layer, add = (x + 2, x + 11), (x + 13, x + 32), x + 34
        self.line((x, STREAM_Y), (x, BRANCH_Y))
        self.arrow((x, BRANCH_Y), (norm[0], BRANCH_Y))
        self.box(*norm, BRANCH_Y - 5, BRANCH_Y + 5, norm_text, "norm")
        self.arrow((norm[1], BRANCH_Y), (layer[0], BRANCH_Y))
        self.box(*layer, BRANCH_Y - 11, BRANCH_Y + 11, layer_text, role)
        self.line((layer[1], BRANCH_Y), (add, BRANCH_Y))
        self.arrow((add, BRANCH_Y), (add, STREAM_Y + 1.6))
        self.shapes.append(dict(type="circle", x0=add - 1.3, x1=add + 1.3, y0=STREAM_Y - 1.6, y1=STREAM_Y + 1.6,
                                fillcolor="white", line=dict(color="#495057", width=1.5)))
        self.text(add, STREAM_Y, "+", font=dict(size=15, color=INK))
        return add


def block_diagram(labels: dict[str, str]) -> go.Figure:
    """The decoder drawn left to right: embedding, N pre-norm blocks on the residual stream, final norm, LM head.

    `labels` holds the text of each box (see analysis.model_facts.diagram_labels): embedding, attn_norm, attention,
    mlp_norm, mlp, final_norm, lm_head, repeat (the frame's title) and stream (the residual stream's caption).
    """
    d = _Drawing()
    d.text(0, STREAM_Y + 6.5, "token ids", xanchor="left", yanchor="bottom")
    d.arrow((0, STREAM_Y), (2, STREAM_Y))
    d.box(2, 14, STREAM_Y - 6, STREAM_Y + 6, labels["embedding"], "io")
    frame = (16, 90.5)
    d.shapes.append(dict(type="rect", x0=frame[0], x1=frame[1], y0=0.5, y1=39.5,
                         line=dict(color="#868e96", dash="dash"), layer="below"))
    d.text(frame[0] + 1, 38, f"<b>{labels['repeat']}</b>", xanchor="left", yanchor="top")
    d.text(frame[0] + 1, STREAM_Y - 2.5, labels["stream"], xanchor="left", yanchor="top",
           font=dict(size=11, color="#495057"))
    first_add = d.residual_branch(frame[0] + 2, labels["attn_norm"], labels["attention"], "attention")
    second_add = d.residual_branch(first_add + 2.5, labels["mlp_norm"], labels["mlp"], "mlp")
    d.line((14, STREAM_Y), (first_add - 1.3, STREAM_Y))
    d.line((first_add + 1.3, STREAM_Y), (second_add - 1.3, STREAM_Y))
    d.arrow((second_add + 1.3, STREAM_Y), (93, STREAM_Y))
    d.box(93, 102, STREAM_Y - 6, STREAM_Y + 6, labels["final_norm"], "norm")
    d.arrow((102, STREAM_Y), (104, STREAM_Y))
    d.box(104, 117.5, STREAM_Y - 7, STREAM_Y + 7, labels["lm_head"], "io")
    d.arrow((110.75, STREAM_Y + 7), (110.75, STREAM_Y + 12))
    d.text(110.75, STREAM_Y + 13, "logits: V scores<br>per position", yanchor="bottom")
    fig = go.Figure(layout=dict(shapes=d.shapes, annotations=d.annotations))
    fig.update_xaxes(range=[-0.5, 118.5], visible=False, fixedrange=True)
    fig.update_yaxes(range=[0, 40], visible=False, fixedrange=True)
    style(fig, height=440)
    fig.update_layout(margin=dict(l=5, r=5, t=5, b=5), hovermode=False)
    return fig


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
    fig = go.Figure(go.Bar(
        x=probabilities, y=ranks, orientation="h", marker_color="#4c6ef5",
        text=[f"{p:.1%}" for p in probabilities], textposition="outside", cliponaxis=False,
        customdata=tokens, hovertemplate="%{customdata}: probability %{x:.4f}<extra></extra>",
    ))
    fig.update_xaxes(title_text="probability", range=[0, min(1.0, max(probabilities) * 1.18)], tickformat=".0%")
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
