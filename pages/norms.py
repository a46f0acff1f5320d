"""Norms: how big the residual stream gets, how RMSNorm rescales it, its learned gains, and massive activations."""

import streamlit as st

from explorer.analysis import norms as analysis
from explorer.app_state import current, remember, show
from explorer.figures import norms as figures

session = current()
config, tokens = session.model.config, session.tokens
t = session.trace()
sites = analysis.norm_sites(config.num_hidden_layers)
labels = [site.label for site in sites]
stream, depths = analysis.residual_stream(t)

st.title("Norms: RMSNorm and the size of the residual stream")
st.markdown(
    "Every block adds its output to the **residual stream**, so the vectors tend to grow with depth. Before attention "
    "and before the MLP, an **RMSNorm** divides each token's vector by its root-mean-square (no mean is subtracted, "
    "unlike LayerNorm) and multiplies it by a learned **gain**, one number per dimension. Look at how the length grows "
    "downwards, which tokens stand out, and which few dimensions carry values far larger than the rest."
)


@st.fragment
def residual_lengths() -> None:
    st.subheader("Length of the residual stream")
    remember("view.norms.log", [False, True], False)
    log = st.checkbox("Colour by log₁₀ (when one token dwarfs the others)", key="view.norms.log")
    show(figures.residual_norm_heatmap(analysis.l2_norms(stream), depths, tokens, log=log), key="norms.residual")


residual_lengths()

st.subheader("What RMSNorm multiplies by")
st.caption("Each norm scales a token's vector by 1/rms before its gain, so what attention or the MLP reads has "
           "root-mean-square 1; the residual stream itself is not rescaled and keeps its length (the chart above). "
           "Deeper layers read longer vectors and so shrink them more (smaller 1/rms).")
show(figures.inverse_rms_heatmap(analysis.inverse_rms(t), labels, tokens), key="norms.inverse_rms")


@st.fragment
def learned_gains() -> None:
    st.subheader("Learned gains")
    remember("view.norms.k", [k / 2 for k in range(4, 21)], 4.0)  # the slider's notches, 2 to 10
    k = st.slider("Outlier threshold k (robust standard deviations from the norm's median gain)", 2.0, 10.0, step=0.5,
                  key="view.norms.k")
    gains = analysis.gains(session.model)
    outliers = analysis.gain_outliers(gains, sites, k)
    show(figures.gain_heatmap(gains, labels, list(zip(outliers.row, outliers.dim))), key="norms.gains")
    st.caption(f"{len(outliers)} gain entries lie more than {k:g} × 1.4826 × MAD from their norm's median gain "
               "(median and MAD resist the outliers they look for). Compare their dimensions with those of the "
               "massive activations below: in large models the same few channels stand out in both.")
    if len(outliers):
        st.dataframe(outliers.drop(columns="row"), hide_index=True, height=min(400, 35 * (len(outliers) + 1) + 3),
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("gain", "median gain", "robust z")})


learned_gains()

st.subheader("Massive activations")
st.caption("Sun et al. (2024) found that a few activations of the residual stream are thousands of times larger than "
           "the median, always in the same dimensions and usually on the first token or a delimiter; they act like "
           "fixed biases. Here: the largest |value| at each depth and its ratio to the median |value|.")
massive = analysis.massive_activations(stream, depths, tokens)
where = [f"token {tok}, dimension {dim}" for tok, dim in zip(massive.token, massive.dim)]
show(figures.massive_activation_chart(depths, massive["max |activation|"].to_numpy(),
                                      massive["median |activation|"].to_numpy(), where), key="norms.massive")
st.markdown(analysis.massive_verdict(massive))
st.dataframe(massive, hide_index=True,
             column_config={c: st.column_config.NumberColumn(format="%.4g")
                            for c in ("value", "max |activation|", "median |activation|", "ratio to median")})
