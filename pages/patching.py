"""Patching: paste activations from a clean prompt into a corrupted one and see which restore the answer."""

import numpy as np
import streamlit as st

from explorer.app_state import ANY_TEXT, as_text, current, remember, show
from explorer.attribution import single_token
from explorer.figures.attention import head_summary_heatmap
from explorer.figures.common import DIVERGING, token_heatmap
from explorer.patching import KINDS, patch_sweep
from model import ModelError

RESULT = "patching.result"  # (inputs, Patching) of the last sweep this session ran
MAX_WORK = 3000  # single forwards' worth in one sweep: about a minute for a Qwen3-0.6B-sized model on a GPU
session = current()
config, tokenizer = session.model.config, session.tokenizer
L = config.num_hidden_layers

st.title("Patching: which activations carry the difference?")
st.markdown(
    "Two prompts that differ in one word lead the model to different answers: *girl* → **she**, *boy* → **he**. "
    "Run the **corrupted** prompt, but paste in one activation from the **clean** run, and see how far the answer "
    "moves back: the logit of the clean answer minus the corrupted one at the last position, scaled so that **0** is "
    "the corrupted run and **1** the clean run. Done for the residual stream entering every layer at every "
    "position, every MLP output at every position, and every query head. Where the value is near 1, that one "
    "activation carries the whole difference."
)
for key, default in (("clean", "The girl went to the park. Then"), ("corrupted", "The boy went to the park. Then"),
                     ("right", " she"), ("wrong", " he")):
    remember(f"view.patching.{key}", ANY_TEXT, default)
left, right_column = st.columns(2)
clean_text = left.text_input("Clean prompt", key="view.patching.clean")
corrupted_text = right_column.text_input("Corrupted prompt (the same number of tokens)", key="view.patching.corrupted")
right_text = left.text_input("Its answer (one token)", key="view.patching.right")
wrong_text = right_column.text_input("The corrupted prompt's answer (one token)", key="view.patching.wrong")
try:
    clean, corrupted = tokenizer.encode(clean_text), tokenizer.encode(corrupted_text)
    answers = single_token(tokenizer, right_text), single_token(tokenizer, wrong_text)
    if not clean or not corrupted:
        raise ModelError("Both prompts need some text.")
except ModelError as e:
    st.error(as_text(str(e)))
    st.stop()
clean_tokens, corrupted_tokens = tokenizer.tokens(clean), tokenizer.tokens(corrupted)
work = L * (2 * len(clean) + config.num_attention_heads)  # single forwards' worth: batches of T, T and Hq a layer
st.caption(f"Clean: {len(clean)} tokens; corrupted: {len(corrupted)}. The sweep is {len(KINDS) * L} batched forwards "
           f"({L} layers × {len(KINDS)} kinds), batches of {len(clean)} or {config.num_attention_heads}: about "
           f"{work:,} single forwards' work.")
if work > MAX_WORK:  # a shared server's compute queue is not held for an hour (Qwen3-0.6B at 128 tokens: 2 hours)
    longest = max(1, (MAX_WORK // L - config.num_attention_heads) // 2)
    st.warning(f"That is more than this page runs ({MAX_WORK:,}): with this model, keep the prompts to {longest} "
               "tokens or fewer.", icon=":material/hourglass_disabled:")
    st.stop()

inputs = (session.choice, clean, corrupted, answers)
if st.button("Run the patching sweep", type="primary", key="patching.run"):
    bar = st.progress(0.0, text="Patching…")
    try:
        result = patch_sweep(session.model, clean, corrupted, *answers,
                             on_layer=lambda done, total: bar.progress(done / total, text=f"Patching: {done} of "
                                                                                        f"{total} forwards"))
    except ModelError as e:
        st.error(as_text(str(e)))
        st.stop()
    bar.empty()
    st.session_state[RESULT] = (inputs, result)
stored = st.session_state.get(RESULT)
if stored is None or stored[0] != inputs:
    st.info("Press **Run the patching sweep**: it runs on the prompts and answers above.")
    st.stop()
result = stored[1]

right_name, wrong_name = tokenizer.tokens(list(answers))
labels = [c if c == k else f"{c}/{k}" for c, k in zip(clean_tokens, corrupted_tokens)]  # clean/corrupted
best = {kind: np.unravel_index(np.nanargmax(values), values.shape) for kind, values in result.results.items()}
layer, position = best["resid_pre"]
st.markdown(
    f"logit({as_text(right_name)}) − logit({as_text(wrong_name)}): **{result.clean:+.3f}** clean, "
    f"**{result.corrupted:+.3f}** corrupted. The residual stream restores the most at layer {layer}, position "
    f"{position} ({as_text(labels[position])}): **{result.results['resid_pre'][layer, position]:.2f}**."
)
value_name = "restored (0: corrupted, 1: clean)"
for kind in ("resid_pre", "mlp.out"):
    show(token_heatmap(result.results[kind], [f"layer {i}" for i in range(L)], labels, value_name=value_name,
                       colorscale=DIVERGING, zmin=-1, zmax=1, zmid=0, row_title="layer", col_title="position",
                       number_rows=False, title=f"Patching the {KINDS[kind]}, layer by position"),
         key=f"patching.{kind}")
show(head_summary_heatmap(result.results["self_attn.z"], config.num_key_value_heads, value_name=value_name,
                          title="Patching one attention head (its output at every position)", colorscale=DIVERGING,
                          zmin=-1, zmax=1, zmid=0), key="patching.heads")
