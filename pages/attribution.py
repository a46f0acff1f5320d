"""Attribution: which parts of the model wrote the logit of a token (direct logit attribution)."""

import streamlit as st

from explorer.analysis.model_facts import top_next_tokens
from explorer.app_state import ANY_TEXT, as_text, current, remember, show
from explorer.attribution import direct_logit_attribution, single_token, top_neurons
from explorer.figures.attention import head_summary_heatmap
from explorer.figures.attribution import neuron_bar, running_logit, waterfall
from explorer.figures.common import DIVERGING
from model import ModelError

TYPED, NONE = "another token…", "(none: the logit itself)"
session = current()
config, tokens = session.model.config, session.tokens
T, L = len(tokens), config.num_hidden_layers
t = session.trace()

st.title("Attribution: who wrote this logit?")
st.markdown(
    "Every block **adds** to the residual stream, so the stream that reaches the LM head is a sum: the token's "
    "embedding plus each layer's attention output plus each layer's MLP output. The final RMSNorm divides that sum by "
    "its root-mean-square; **holding that division at the value this forward computed**, the logit of a token is "
    "the sum of what each part contributes. Below, the parts of one logit: by layer, by query head (each head's "
    "slice of o_proj, grouped under the KV head it reads) and by MLP neuron."
)

remember("view.attribution.position", range(T), T - 1)
position = st.selectbox("Position (the prediction made after this token)", range(T), key="view.attribution.position",
                        format_func=lambda i: f"{i}: {tokens[i]}")
candidates, probs = top_next_tokens(t.logits_at([position])[0, 0], 10)
# A candidate by its rank, valid at any position; words, so that a link's "top 2" stays text (a bare 2 is a number).
ranks = [f"top {rank}" for rank in range(1, len(candidates) + 1)]


def candidate(option: str) -> int:
    return int(option.removeprefix("top ")) - 1


def label(option: str) -> str:
    if option in (TYPED, NONE):
        return option
    i = candidate(option)
    return f"{i + 1}. {session.tokenizer.tokens([candidates[i]])[0]} ({100 * probs[i]:.3g}%)"  # 0.00213% shows


left, right = st.columns(2)
remember("view.attribution.target", [*ranks, TYPED], "top 1")
choice = left.selectbox("Token whose logit to explain", [*ranks, TYPED], key="view.attribution.target",
                        format_func=label)
remember("view.attribution.minus", [NONE, *ranks, TYPED], NONE)
minus = right.selectbox("Minus the logit of (a difference, e.g. she − he)", [NONE, *ranks, TYPED],
                        key="view.attribution.minus", format_func=label)


def token_of(option: str, where, key: str, example: str) -> int | None:
    if option == NONE:
        return None
    if option != TYPED:
        return candidates[candidate(option)]
    remember(key, ANY_TEXT, example)
    return single_token(session.tokenizer, where.text_input("Type the token (with its leading space, if any)",
                                                            key=key))


try:
    target = token_of(choice, left, "view.attribution.target_text", " she")
    baseline = token_of(minus, right, "view.attribution.minus_text", " he")
    attribution = direct_logit_attribution(t, position, target, baseline)
except ModelError as e:
    st.error(as_text(str(e)))
    st.stop()

names = session.tokenizer.tokens([target] + ([baseline] if baseline is not None else []))
what = f"logit({names[0]})" + (f" − logit({names[1]})" if baseline is not None else "")
parts = {"the embedding": attribution.embed,
         **{f"layer {i}'s attention": value for i, value in enumerate(attribution.attn)},
         **{f"layer {i}'s MLP": value for i, value in enumerate(attribution.mlp)}}
largest = max(parts, key=lambda part: abs(parts[part]))
st.markdown(
    f"**{as_text(what)}** after “{as_text(tokens[position])}”: the parts add up to **{attribution.total:.4f}**, the "
    f"model's own value is **{attribution.logit:.4f}** (final RMSNorm scale 1/rms = {attribution.scale:.4g}, from "
    f"this forward). The largest single part is {largest}'s, {parts[largest]:+.3f}."
)
show(waterfall(attribution, what=what), key="attribution.waterfall")
show(running_logit(attribution, what=what), key="attribution.running")
limit = float(abs(attribution.heads).max()) or 1.0
show(head_summary_heatmap(attribution.heads, config.num_key_value_heads, value_name="contribution",
                          title=f"Each query head's part of {what}", colorscale=DIVERGING, zmin=-limit, zmax=limit,
                          zmid=0), key="attribution.heads")
if attribution.attn_bias.any():
    st.caption(f"o_proj's bias adds {attribution.attn_bias.sum():+.4f} in all, outside any head.")


@st.fragment
def neurons() -> None:
    remember("view.attribution.layer", range(L), L - 1)
    layer = st.selectbox("MLP neurons of layer", range(L), key="view.attribution.layer")
    indices, contributions = top_neurons(t, attribution, layer, 20)
    show(neuron_bar(indices, contributions, layer=layer, what=what), key="attribution.neurons")
    st.caption(f"The layer's MLP as a whole: {attribution.mlp[layer]:+.4f}; these {len(indices)} neurons: "
               f"{contributions.sum():+.4f}, of {config.intermediate_size:,}.")


neurons()
