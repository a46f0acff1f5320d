"""Lesson: SwiGLU, a gated MLP. The 8/3 · D parameter claim counted exactly, and what the gate lets through."""

import streamlit as st

from explorer.analysis import lesson_ablations as ablations
from explorer.analysis import lessons as analysis
from explorer.analysis import swiglu as swiglu_analysis
from explorer.app_state import current, experiment_toggle, remember, show
from explorer.figures import lessons as figures
from explorer.figures.lessons import loss_bar
from explorer.figures.swiglu import distributions_figure
from explorer.lesson_ui import claim, lesson_title

session = current()
config, model = session.model.config, session.model
L = config.num_hidden_layers


@st.fragment
def gate_histograms() -> None:
    st.subheader("In the loaded model: what the gate lets through")
    t = session.trace()
    remember("view.lesson_swiglu.layer", range(L), 0)
    layer = st.slider("Layer", 0, L - 1, key="view.lesson_swiglu.layer") if L > 1 else 0
    st.caption("silu(gate) is the factor each neuron's up value is multiplied by. "
               + swiglu_analysis.gate_story(swiglu_analysis.mlp_values(t, layer, "act")))
    histograms = {
        name: swiglu_analysis.histogram(swiglu_analysis.mlp_values(t, layer, name)) for name in ("act", "up", "hidden")
    }
    show(distributions_figure(histograms, layer), key="lesson_swiglu.gate_histograms")


def gate_ablation() -> None:
    """silu(gate) made constant per neuron (no longer token by token), in every layer and in one chosen layer."""
    if len(session.ids) < 2:
        st.info("The prompt needs at least two tokens to measure how well the model predicts it.")
        return
    remember("view.lesson_swiglu.ablated_layer", range(L), L // 2)
    layer = st.selectbox("And in one layer alone", range(L), key="view.lesson_swiglu.ablated_layer",
                         format_func=lambda i: f"layer {i}")
    baseline = ablations.prompt_loss(session.trace()).loss
    every = ablations.prompt_loss(session.trace(ablations.gate_edit(list(range(L))))).loss
    one = ablations.prompt_loss(session.trace(ablations.gate_edit([layer]))).loss
    show(loss_bar(["as trained", f"gate constant in layer {layer}", "gate constant in every layer"],
                  [baseline, one, every], title="The prompt's loss without token-by-token gating"),
         key="lesson_swiglu.gate_ablation")
    st.markdown(ablations.gate_verdict(baseline, every - baseline, one - baseline, layer))


lesson_title("SwiGLU: a gated MLP", session.choice.source)
st.markdown(
    "The MLP of a block widens each token's vector, applies a non-linearity and narrows it back. The classic "
    "Transformer MLP has two matrices, D → 4D → D, with GELU in between. **SwiGLU** has three: *gate* and *up* "
    "both map D → F, silu(gate) multiplies up element by element, and *down* maps F → D. The gate decides, per "
    "neuron and token, how much of up passes. To spend the same number of weights with three matrices instead "
    "of two, F is made 8/3 · D instead of 4 · D."
)
claim("A SwiGLU hidden size of 8/3 × dim keeps the parameter count of a 4 × dim GELU MLP.",
      "Shazeer (2020), GLU Variants Improve Transformer (the hidden size reduced by 2/3 to keep parameters and "
      "compute); Touvron et al. (2023), LLaMA (2/3 · 4d)")
counts = analysis.mlp_counts(model)
D, F = counts.dim, counts.intermediate
exact_hidden = 8 * D / 3
left, right = st.columns([2, 3])
left.markdown(
    f"For this model's width **D = {D:,}**:\n"
    f"- GELU MLP: 2 · D · 4D = **{counts.gelu_4d:,}** weights\n"
    f"- SwiGLU with F = 8/3 · D = {exact_hidden:,.2f}: 3 · D · F = **{float(counts.swiglu_8_3):,.0f}** weights, "
    f"{'exactly equal' if counts.swiglu_8_3 == counts.gelu_4d else 'not equal'} (3 · 8/3 = 8 = 2 · 4)\n"
    f"- SwiGLU with the model's own F = {F:,}: 3 · D · F = **{counts.swiglu_actual:,}** weights, "
    f"**{counts.ratio:.4f} ×** the GELU MLP\n"
    f"- counted from the loaded weights: **{analysis.mlp_weights_per_layer(model):,}** per layer"
    + (" (biases included)" if config.mlp_bias else "")
)
left.caption(
    "The claim holds exactly for F = 8/3 · D. Real models round F (to a multiple of 4, 64 or 256, good "
    "for the hardware), so their MLP is a little larger or smaller than the 4 · D one."
)
show(
    figures.mlp_parameter_bar(
        [
            f"GELU, hidden 4·D = {4 * D:,}",
            f"SwiGLU, hidden 8/3·D = {exact_hidden:,.2f}",
            f"SwiGLU, this model's F = {F:,}",
        ],
        [counts.gelu_4d, float(counts.swiglu_8_3), counts.swiglu_actual],
    ),
    key="lesson_swiglu.mlp_parameters",
    container=right,
)
gate_histograms()
st.subheader("What the gate does: take it away")
st.markdown(
    "Counting parameters says nothing about whether gating helps. Here the gate is taken away in the trained model: "
    "each neuron's silu(gate) is replaced by its average over the tokens so far, so every token gets the same "
    "typical amount of that neuron's up value instead of its own. The sidebar's prompt then measures the cost."
)
if experiment_toggle("lesson_swiglu", "Run the ablation (two forwards)"):
    gate_ablation()
