"""Logit lens: what the model would predict if it stopped after each layer."""

import streamlit as st

from explorer.analysis.logit_lens import MAX_POSITIONS_PER_VIEW, lens_at, positions_per_view, settling_layer
from explorer.app_state import current, remember, show
from explorer.figures.logit_lens import lens_heatmap, rank_chart

session = current()
layers = session.model.config.num_hidden_layers
st.title("Logit lens")
st.markdown(
    "Each block adds a little to the residual stream, and only the last one feeds the LM head. The **logit lens** "
    "cheats: it sends the residual stream after *every* layer through the final RMSNorm and the LM head, as if the "
    "model stopped there, and asks what it would predict next. Read a column from top to bottom to watch the "
    "model's guess for the token after that position take shape; the last row is the model's real prediction."
)

t = session.trace()
T = len(session.ids)
per_view = positions_per_view(session.model.config)


def guesses(lens) -> list[list[list[str]]]:
    """[layer][position][rank] readable tokens of the lens's top guesses."""
    return [[session.tokenizer.tokens(ids) for ids in row] for row in lens.top_ids.tolist()]


@st.fragment
def heatmap_view() -> None:
    start, end = 0, T
    if T > per_view:  # cells of a longer sequence would be too narrow, and each position costs a pass of every layer
        key = "view.logit_lens.first_position"
        remember(key, range(T - per_view + 1), T - per_view)  # the last positions first: the next-token guesses
        start = st.slider(f"First position shown ({per_view} at a time)", 0, T - per_view, key=key)
        end = start + per_view
    with st.spinner("Reading every layer through the final norm and LM head…"):
        lens = lens_at(t, list(range(start, end)))
    show(lens_heatmap(guesses(lens), lens.top_probs, session.tokens[start:end], first_position=start),
         key="logit_lens.heatmap")
    st.caption("Cell text: the top guess for the *next* token after reading the token below it (cut to fit; hover "
               "for the full top 3). Colour: its probability."
               + (f" Each position costs a pass of all {layers} layers through the LM head, so this model shows "
                  f"{per_view} at a time." if per_view < MAX_POSITIONS_PER_VIEW and T > per_view else "")
               + (" The LM head here is the embedding matrix itself (tied), so the first rows often “predict” the token "
                  "just read: the stream is still mostly that token's embedding, which scores highest against itself. "
                  "Read them as an echo, not a guess." if session.model.config.tie_word_embeddings else ""))


heatmap_view()


@st.fragment
def rank_view() -> None:
    st.subheader("When does the model make up its mind?")
    st.markdown("Pick a position: the chart follows the token the model finally predicts there and shows its rank "
                "among all vocabulary entries after each layer (1 means it is already the top guess).")
    positions = list(range(len(session.ids)))
    key = "view.logit_lens.position"
    if st.session_state.get(key) not in positions:  # first visit, or a shorter prompt than last time: the last token
        st.session_state[key] = positions[-1]
    position = st.selectbox("Position", positions, key=key, format_func=lambda j: f"{j}: {session.tokens[j]}")
    lens = lens_at(t, [position])
    target = session.tokenizer.tokens([int(lens.final_ids[0])])[0]
    ranks = lens.final_rank[:, 0]
    show(rank_chart(ranks, lens.final_prob[:, 0], target_token=target,
                    position_label=f"{position} ({session.tokens[position]})"), key="logit_lens.rank")
    settled = settling_layer(ranks)
    st.markdown(f"After `{session.tokens[position]}` the model predicts `{target}`. It is the lens's top guess from "
                f"layer {settled} on" + (" (only the last layer gets it)." if settled == layers - 1 else "."))


rank_view()
