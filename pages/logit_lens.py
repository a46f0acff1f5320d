"""Logit lens: what the model would predict if it stopped after each layer."""

import streamlit as st

from explorer.analysis.logit_lens import logit_lens, settling_layer
from explorer.app_state import current, show
from explorer.figures.logit_lens import POSITIONS_PER_VIEW, lens_heatmap, rank_chart

session = current()
layers = session.model.config.num_hidden_layers
st.title("Logit lens")
st.markdown(
    "Each block adds a little to the residual stream, and only the last one feeds the LM head. The **logit lens** "
    "cheats: it sends the residual stream after *every* layer through the final RMSNorm and the LM head, as if the "
    "model stopped there, and asks what it would predict next. Read a column from top to bottom to watch the "
    "model's guess for the token after that position take shape; the last row is the model's real prediction."
)

t = session.trace(["layers.*.resid_post", "logits"])


@st.cache_resource(max_entries=8, show_spinner="Reading every layer through the final norm and LM head…")
def cached_lens(choice, ids: tuple[int, ...], _model, _trace):
    return logit_lens(_model, [_trace[f"layers.{i}.resid_post"][0] for i in range(layers)], _trace["logits"][0])


lens = cached_lens(session.choice, tuple(session.ids), session.model, t)
top_tokens = [[session.tokenizer.tokens(ids) for ids in row] for row in lens.top_ids.tolist()]


@st.fragment
def heatmap_view() -> None:
    start, end = 0, len(session.ids)
    if end > POSITIONS_PER_VIEW:  # cells of a longer sequence would be too narrow for their tokens: show a window
        key = "view.logit_lens.first_position"
        if st.session_state.get(key, 0) > end - POSITIONS_PER_VIEW:
            st.session_state[key] = end - POSITIONS_PER_VIEW
        start = st.slider(f"First position shown ({POSITIONS_PER_VIEW} at a time)", 0, end - POSITIONS_PER_VIEW,
                          key=key)
        end = start + POSITIONS_PER_VIEW
    show(lens_heatmap([row[start:end] for row in top_tokens], lens.top_probs[:, start:end],
                      session.tokens[start:end], first_position=start), key="logit_lens.heatmap")
    st.caption("Cell text: the top guess for the *next* token after reading the token below it (cut to fit; hover "
               "for the full top 3). Colour: its probability.")


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
    target = session.tokenizer.tokens([int(lens.final_ids[position])])[0]
    ranks = lens.final_rank[:, position]
    show(rank_chart(ranks, lens.final_prob[:, position], target_token=target,
                    position_label=f"{position} ({session.tokens[position]})"), key="logit_lens.rank")
    settled = settling_layer(ranks)
    st.markdown(f"After `{session.tokens[position]}` the model predicts `{target}`. It is the lens's top guess from "
                f"layer {settled} on" + (" (only the last layer gets it)." if settled == layers - 1 else "."))


rank_view()
