"""SwiGLU: how the MLP's gate decides how much of `up` passes, and which neurons write what to the residual stream."""

import streamlit as st

from explorer.analysis import swiglu as analysis
from explorer.app_state import current, remember, show
from explorer.figures import swiglu as figures

session = current()
config, tokens = session.model.config, session.tokens
T, L = len(tokens), config.num_hidden_layers
t = session.trace()

st.title("SwiGLU: the gated MLP")
st.markdown(
    f"Each MLP computes two projections of the normalised token vector, **gate** and **up**, each with "
    f"{config.intermediate_size} neurons. The gate goes through silu (close to 0 for negative inputs, close to the "
    f"input for positive ones) and is multiplied with up: **the gate decides how much of up passes**. The product, "
    f"`hidden`, is mapped back to the residual stream by down_proj, so every neuron adds hidden[n] × one fixed column "
    f"of down_proj. Look for how many neurons the gate shuts, and how few neurons dominate at a token."
)


def token_label(i: int) -> str:
    return f"{i}: {tokens[i]}"


# The layer is the page's own control: changing it redraws everything below. Each part below is a fragment of its
# own, so its controls redraw only its charts (Chromium redraws a chart in 0.1-0.3 s; four at once made a token
# change take 1.7 s on a Qwen3-0.6B-sized model).
remember("view.swiglu.layer", range(L), 0)
layer = st.columns(3)[0].selectbox("Layer", range(L), key="view.swiglu.layer")


@st.fragment
def distributions() -> None:
    st.subheader("Distributions")
    remember("view.swiglu.log", [False, True], False)
    log = st.checkbox("Log count axis (shows the rare large values)", key="view.swiglu.log")
    histograms = {name: analysis.histogram(analysis.mlp_values(t, layer, name)) for name, _ in figures.DISTRIBUTIONS}
    show(figures.distributions_figure(histograms, layer, log=log), key="swiglu.distributions")
    st.caption(analysis.gate_story(analysis.mlp_values(t, layer, "act")) + " `up` is symmetric around 0; their "
               "product keeps up's sign where silu is positive.")


@st.fragment
def sparsity() -> None:
    st.subheader("Gate sparsity across layers")
    remember("view.swiglu.threshold", analysis.THRESHOLDS, 0.01)
    threshold = st.select_slider("Sparsity threshold on |silu(gate)|", analysis.THRESHOLDS,
                                 key="view.swiglu.threshold")
    show(figures.sparsity_figure(analysis.gate_sparsity(t, threshold), threshold, highlight=layer),
         key="swiglu.sparsity")


@st.fragment
def neurons_at_one_token() -> None:
    st.subheader("Neurons at one token")
    c1, c2 = st.columns([3, 1])
    remember("view.swiglu.token", range(T), T - 1)
    token = c1.selectbox("Token", range(T), key="view.swiglu.token", format_func=token_label)
    most = min(50, config.intermediate_size)
    remember("view.swiglu.k", range(1, most + 1), min(10, most))
    k = c2.number_input("Top neurons", 1, most, key="view.swiglu.k")
    top = analysis.top_neurons(session.model, t, layer, token, k)
    show(figures.top_neurons_figure(top.neuron.to_numpy(), top["hidden = act·up"].to_numpy(),
                                    top["contribution norm"].to_numpy(), top["toward final"].to_numpy(),
                                    token_label(token)), key="swiglu.top_neurons")
    st.caption("Contribution = hidden[n] × down_proj.weight[:, n], the vector neuron n adds to the residual stream. "
               "“toward final” is its component along the last block's output at this token: red neurons push the "
               "stream where it ends up, blue ones against it.")
    st.dataframe(top, hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.4g")
                                                      for c in top.columns if c != "neuron"})
    gate, up, hidden = analysis.neuron_point_cloud(t, layer, token)
    show(figures.gate_up_scatter(gate, up, hidden, token_label(token)), key="swiglu.gate_up")
    st.caption("Left of zero silu(gate) is small and slightly negative, so products there are small and have the "
               "opposite sign of up; right of zero the product grows with both gate and up: red above the axis, blue "
               "below.")


distributions()
sparsity()
neurons_at_one_token()
