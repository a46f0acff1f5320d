"""RoPE: how rotary position embedding writes positions into q and k, on the current prompt."""

import numpy as np
import streamlit as st

from explorer.analysis import rope as rope_analysis
from explorer.app_state import current, query_window, remember, show
from explorer.edits import Edits
from explorer.figures import rope as rope_figures
from explorer.figures.common import DIVERGING, token_heatmap

session = current()
config, tokens = session.model.config, session.tokens
T, half = len(tokens), config.head_dim // 2
layers, heads, positions = (list(range(n)) for n in (config.num_hidden_layers, config.num_attention_heads, T))
t = session.trace()

st.title("RoPE: rotary position embedding")
st.markdown(
    f"Attention has no idea where tokens are, so before scores are computed every query and key is **rotated** by an "
    f"angle that grows with its position. Each head vector of {config.head_dim} numbers is cut into {half} pairs; pair "
    f"*i* turns by position × inv_freq[*i*], fast for the first pairs, slowly for the last. Because q at position *m* "
    f"and k at *n* are both turned, their dot product only sees the difference *m − n*: look for that below."
)


def choice(where, label: str, options: list, key: str, default=0, **kwargs):
    """A selectbox in `where` whose remembered value is reset when another prompt or model made it invalid."""
    remember(key, options, default)
    return where.selectbox(label, options, key=key, **kwargs)


def token_label(i: int) -> str:
    return f"{i}: {tokens[i]}"


st.subheader("Frequencies")
spec = rope_analysis.spectrum(t)
scaling = config.rope_scaling
if scaling is None:
    st.caption(f"This model uses no RoPE scaling: inv_freq[i] = θ^(−2i/dh) with θ = {config.rope_theta:,.0f}.")
else:
    st.caption(f"This model stretches RoPE for long contexts ({scaling['rope_type']} scaling, factor "
               f"{scaling['factor']}): slow pairs are divided by the factor so that positions beyond the training "
               "length still turn less than a full circle; "
               + ("fast pairs (short wavelengths) are kept and those in between interpolated."
                  if spec.bands is not None else "every pair is divided by the same factor."))
show(rope_figures.spectrum_figure(
    spec.inv_freq, spec.inv_freq_unscaled if scaling else None, spec.bands, rope_analysis.BAND_NAMES, T,
    spec.llama3_wavelength_limits()), key="rope.spectrum")

st.subheader("Angles")
st.caption("The colour wheel wraps: 0 and 2π are the same rotation. Fast pairs (top) cycle many times along the "
           "prompt; slow pairs (bottom) barely move, so they can tell apart positions that are far apart.")
show(rope_figures.angle_heatmap(rope_analysis.rotation_angles(t), tokens, spec.inv_freq), key="rope.angles")


@st.fragment
def rotation_of_one_head() -> None:
    st.subheader("The rotation on this model's q and k")
    c1, c2, c3 = st.columns(3)
    layer = choice(c1, "Layer", layers, "view.rope.layer")
    head = choice(c2, "Query head", heads, "view.rope.head",
                  format_func=lambda h: f"{h} (reads KV head {h // config.group_size})")
    m = choice(c3, "Query token m", positions, "view.rope.token", T - 1, format_func=token_label)
    remember("view.rope.pairs", list(range(half)), rope_analysis.default_pairs(config.head_dim))
    pairs = sorted(st.multiselect("Frequency pairs (0 is the fastest)", range(half), key="view.rope.pairs")
                   or rope_analysis.default_pairs(config.head_dim))
    vectors = rope_analysis.head_vectors(t, layer, head, m)
    before = {n: rope_analysis.pair_coordinates(vectors[n], pairs) for n in ("q", "k")}
    after = {n: rope_analysis.pair_coordinates(vectors[f"{n}_rot"], pairs) for n in ("q", "k")}
    st.caption(f"Both q and k of token {token_label(m)} turn by the same angle {m} × ω in every pair; the lengths "
               f"do not change. {'Input of RoPE: q and k after QK-norm.' if config.qk_norm else ''}")
    show(rope_figures.pair_planes(before, after, pairs, spec.inv_freq, m), key="rope.pair_planes")

    st.markdown("**Scores against distance.** Every score this head computes, grouped by how far back the key is: "
                "the light band holds all of them, the dark band the middle 80%, the line their median; red, the "
                "chosen query's own scores. Hover a distance to read its numbers.")
    d = rope_analysis.scores_by_distance(t, layer, head, include=m)
    mine = d.query == m
    queries = len(np.unique(d.query))
    show(rope_figures.distance_bands(rope_analysis.distance_profile(d), d.distance[mine], d.score[mine], d.key[mine],
                                     tokens, m, note=f"the scores of {queries:,} evenly spaced queries of {T:,}"
                                     if queries < T else None), key="rope.distance")

    st.markdown("**Shift both positions, keep the score.** The un-rotated q of the query token and k of a key token, "
                "rotated with the model's own inv_freq as if they sat further along the sequence.")
    n = choice(st, "Key token n", positions, "view.rope.key", format_func=token_label)
    shifts = rope_analysis.shifts_within(config.max_position_embeddings - 1 - max(m, n))
    table = rope_analysis.shifted_scores(vectors["q"], rope_analysis.head_vectors(t, layer, head, n)["k"],
                                         spec.inv_freq, m, n, shifts)
    st.caption(f"The model's own score at (m, n) = ({m}, {n}), from its rotated q and k, is "
               f"{rope_analysis.rotated_score(t, layer, head, m, n):.6f}; shifting both by s keeps it (up to float32 "
               "rounding of large angles in the last digits), shifting the query alone changes it.")
    left, right = st.columns(2)
    lines = ("both shifted", "query only shifted")
    show(rope_figures.shift_figure(table["s"].to_numpy(), {c: table[c].to_numpy() for c in lines}), key="rope.shift",
         container=left)
    right.dataframe(table, hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.6f")
                                                           for c in lines})


@st.fragment
def theta_what_if() -> None:
    st.subheader("What if θ were different?")
    st.caption("Re-run the model with another RoPE base θ (weights unchanged): a small θ makes every pair spin fast "
               "so distant positions blur together; the model was trained with its own θ and only that one fits.")
    own = config.rope_theta
    c1, c2, c3 = st.columns(3)
    thetas = sorted({100.0, 10_000.0, 500_000.0, own})
    # The model's own θ first: another one re-runs the whole model, which only a reader's choice should cost.
    theta = choice(c1, "θ", thetas, "view.rope.theta", own,
                   format_func=lambda v: f"{v:,.0f}" + (" (the model's own)" if v == own else ""))
    layer = choice(c2, "Layer", layers, "view.rope.whatif_layer")
    head = choice(c3, "Query head", heads, "view.rope.whatif_head")
    edited = None if theta == own else session.trace(Edits(rope_theta=theta))
    rows = query_window(t, "view.rope.first_query")
    first, stop = rows or (0, T)
    queries, keys = tokens[first:stop], tokens[:stop]
    st.markdown("**Next-token top 5**")
    runs = {f"θ = {own:,.0f}": t} | ({f"θ = {theta:,.0f}": edited} if edited else {})
    top = rope_analysis.compare_top_tokens(runs, session.tokenizer)
    st.dataframe(top, column_config={c: st.column_config.NumberColumn(format="%.4f")
                                     for c in top.columns if c.endswith("probability")})
    left, right = st.columns(2)
    base_pattern = rope_analysis.causal_pattern(t, layer, head, rows)
    show(token_heatmap(base_pattern, queries, keys, value_name="attention", zmin=0, zmax=1, first_row=first,
                       title=f"Layer {layer} head {head} pattern, θ = {own:,.0f}"),
         key="rope.theta_own", container=left)
    if edited is None:
        right.info("Choose another θ above: the model runs again with it (one forward), and the change in this "
                   "head's pattern and in the next-token guesses appears here.", icon=":material/tune:")
        return
    show(token_heatmap(rope_analysis.causal_pattern(edited, layer, head, rows) - base_pattern, queries, keys,
                       value_name="Δ attention", colorscale=DIVERGING, zmid=0, first_row=first,
                       title=f"Change with θ = {theta:,.0f} (new − own)"), key="rope.theta_change", container=right)

rotation_of_one_head()
theta_what_if()
