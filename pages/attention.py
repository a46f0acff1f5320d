"""Attention: where every head of every layer looks, grouped by the key/value head it shares."""

import streamlit as st

from explorer.analysis.attention import head_label, head_summaries, layer_heads, pattern_by_group, uniform_entropy
from explorer.app_state import current, query_window, remember, show
from explorer.figures.attention import head_grid, head_matrix, head_summary_heatmap

session = current()
st.title("Attention")
st.markdown(
    "Each **attention head** decides, for every token (a *query*, one row), how much to read from each earlier "
    "token (a *key*, one column); a row of weights sums to 1, and future tokens are hidden (the blank triangle). "
    "In **grouped-query attention (GQA)** several query heads share one key/value head: they look at the same "
    "keys through their own queries, which saves memory in the KV cache. Below, each row of small maps is one "
    "such group. Look for **attention sinks** (heads that park most of their weight on the first token when "
    "nothing else is worth reading) and **previous-token heads** (a bright line just below the diagonal)."
)

t = session.trace()
config, tokens = t.config, session.tokens
G, n_layers = config.group_size, config.num_hidden_layers
st.caption(f"{config.num_attention_heads} query heads share {config.num_key_value_heads} key/value heads "
           f"(G = {G} query heads per KV head) in each of {n_layers} layers; {len(tokens)} tokens.")


@st.fragment
def head_views() -> None:
    remember("view.attention.layer", range(n_layers), 0)
    layer = st.slider("Layer", 0, n_layers - 1, key="view.attention.layer") if n_layers > 1 else 0
    rows = query_window(t, "view.attention.first_query")
    queries = tokens if rows is None else tokens[rows[0] : rows[1]]
    st.subheader(f"Every head of layer {layer}")
    show(head_grid(pattern_by_group(t, layer, rows), queries, key_tokens=tokens[: rows[1]] if rows else None,
                   title=f"Attention patterns of layer {layer}, one row per shared KV head"),
         key="attention.layer_heads")
    one_head(layer, rows)


@st.fragment
def one_head(layer: int, rows: tuple[int, int] | None) -> None:
    st.subheader("One head, up close")
    remember("view.attention.head", range(config.num_attention_heads), 0)
    left, right = st.columns([1, 2])
    head = left.selectbox("Head", range(config.num_attention_heads), key="view.attention.head",
                          format_func=lambda h: head_label(h, G))
    kinds = ["pattern (after softmax)", "scores (before softmax)"]
    remember("view.attention.values", kinds, kinds[0])
    shown = right.radio("Show", kinds, horizontal=True,
                        key="view.attention.values",
                        help="Scores are q·k/√head_dim: any real number, turned into the pattern's weights by a "
                             "softmax over each row.")
    pattern, scores = layer_heads(t, layer, rows)
    use_scores = shown.startswith("scores")
    what = "scores before softmax" if use_scores else "attention pattern"
    show(head_matrix(scores[head] if use_scores else pattern[head], tokens if rows is None else tokens[rows[0]:rows[1]],
                     scores=use_scores, key_tokens=tokens[: rows[1]] if rows else None,
                     title=f"Layer {layer}, {head_label(head, G)}: {what}"), key="attention.head")


head_views()

st.subheader("Every head at a glance")
summaries = head_summaries(t)
if len(tokens) < 2:
    st.info("The summaries average over tokens that can choose where to look: type a prompt of two or more tokens.")
elif summaries is None:
    st.info("These summaries average every layer's whole attention pattern, which at this prompt's length is more "
            "than the server forms in one piece. Shorten the prompt to see them; the views above work at any length.")
else:
    st.markdown(
        "One cell per head, layers top to bottom. **Entropy** (nats) is low when a head looks at few tokens and "
        "high when it spreads out evenly. **First token** is the average weight put on position 0: a value near 1 "
        "marks a sink. **Previous token** is the average weight on the token just before each query. All three are "
        "averaged over the query positions after the first, which has nothing to choose from. The entropy scale "
        f"ends at {uniform_entropy(len(tokens)):.2f} nats, a head that spreads its attention evenly over every "
        "earlier token."
    )
    Hkv = config.num_key_value_heads
    for column, (name, figure) in zip(st.columns(3), {
        # From 0 to the entropy of even attention: an auto-fitted scale made random heads look structured.
        "entropy": head_summary_heatmap(summaries["entropy"], Hkv, title="Mean attention entropy",
                                        value_name="nats", zmin=0, zmax=uniform_entropy(len(tokens))),
        "first_token": head_summary_heatmap(summaries["first token"], Hkv, title="Mean attention to the first token",
                                            value_name="weight", zmin=0, zmax=1),
        "previous_token": head_summary_heatmap(summaries["previous token"], Hkv,
                                               title="Mean attention to the previous token", value_name="weight",
                                               zmin=0, zmax=1),
    }.items()):
        show(figure, key=f"attention.{name}", container=column)
