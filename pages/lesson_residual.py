"""Lesson: the residual stream. Every block adds to it and nothing overwrites it, so a prediction splits into parts."""

import streamlit as st

from explorer.app_state import current, show
from explorer.attribution import direct_logit_attribution, stream_sum_error, stream_sum_verdict
from explorer.figures.attribution import running_logit, waterfall
from explorer.lesson_ui import claim, lesson_title

session = current()
t = session.trace()
position = len(session.ids) - 1
target = int(t.last_logits.argmax())
name = session.tokenizer.tokens([target])[0]

lesson_title("The residual stream", session.choice.source)
st.markdown(
    "A decoder keeps one vector per token, the **residual stream**, from the embedding to the LM head. Each block "
    "reads it (through an RMSNorm), computes attention and an MLP, and **adds** their outputs back; it never "
    "replaces it. So the vector the LM head finally reads is the embedding plus every attention output plus every "
    "MLP output, and anything that reads it later (a block, the LM head) sees all of them at once. Because the "
    "sum passes every block unchanged, the loss's gradient also reaches the first layers directly: why such deep "
    "stacks train."
)
claim("The residual stream is the sum of the embedding and every sublayer's output, so a prediction decomposes "
      "into the contributions of each layer and head.",
      "He et al. (2016), Deep Residual Learning; Elhage et al. (2021), A Mathematical Framework for Transformer "
      "Circuits; nostalgebraist (2020), interpreting GPT: the logit lens")
st.markdown(stream_sum_verdict(*stream_sum_error(t, position), 1 + 2 * session.model.config.num_hidden_layers))
attribution = direct_logit_attribution(t, position, target)
what = f"logit({name})"
show(waterfall(attribution, what=what), key="lesson_residual.waterfall")
st.caption(f"The model's next-token guess after the prompt, “{name}”, part by part. The final RMSNorm's division is "
           "held at the value this forward computed; with it fixed, the parts add up to the logit exactly.")
show(running_logit(attribution, what=what), key="lesson_residual.running")
st.markdown("Three pages take it further: which heads and neurons wrote a logit, which activations carry the "
            "difference between two prompts, and how the loss's gradient reaches every layer.")
st.page_link("pages/attribution.py", label="Attribution: every part of a logit", icon=":material/account_balance:")
st.page_link("pages/patching.py", label="Patching: what carries a difference", icon=":material/healing:")
st.page_link("pages/gradients.py", label="Gradients: the loss at every layer", icon=":material/south:")
