"""Gradients: one backward pass of the next-token loss on the prompt, and where its signal goes."""

import numpy as np
import streamlit as st

from explorer.app_state import as_text, current, experiment_toggle, show
from explorer.figures.gradients import parameter_heatmap, saliency_bar, stream_heatmap
from explorer.gradients import gradient_flow
from model import ModelError

MAX_TOKENS = 512  # a backward keeps every layer's activations: the first 512 tokens at most
session = current()
ids = session.ids[:MAX_TOKENS]
tokens = session.tokens[: len(ids)]

st.title("Gradients: how the loss reaches every layer")
st.markdown(
    "Training moves each weight against its **gradient**: how much the loss would change if the weight did. Here "
    "one backward pass of this prompt's next-token loss (the mean cross-entropy of predicting each token from the "
    "ones before it) shows how large those gradients are in every part of every block, how strongly the loss "
    "reaches the **residual stream** at each layer and position (the stream adds each block's output, so its "
    "gradient passes straight down to the early layers: why pre-norm decoders train at depth), and how much each "
    "prompt token's embedding matters. The model is not changed: this is a look, not a training step."
)
if len(session.ids) > MAX_TOKENS:
    st.info(f"A backward keeps every layer's activations: it runs on the first {MAX_TOKENS} of the "
            f"{len(session.ids):,} tokens.", icon=":material/content_cut:")
if not experiment_toggle("gradients", "Run the backward pass (about two to three forwards' time)"):
    st.stop()

t = session.trace()
try:
    flow = t.memo(("gradient_flow", len(ids)), lambda: gradient_flow(session.model, ids))
except ModelError as e:
    st.error(as_text(str(e)))
    st.stop()

inner = flow.stream[:, :-1]  # the last position predicts no token of the prompt: its gradient is 0
kept = float(np.median(inner[0] / np.maximum(inner[-1], 1e-30))) if inner.size else float("nan")
st.markdown(
    f"**Loss {flow.loss:.3f} nats** (perplexity {np.exp(flow.loss):,.1f}). At layer 0's input the stream's gradient "
    f"is **{kept:.2g}×** what it is after the last layer (median over positions): "
    + ("the signal arrives at the bottom of the stack about as strong as at the top, as the residual path promises."
       if 0.5 <= kept <= 2 else "the blocks' own contributions change it on the way down; the residual path keeps it "
       "from vanishing.")
    + f" Embedding matrix: {flow.embedding:.3g}, final norm's gain: {flow.final_norm:.3g}."
)
show(parameter_heatmap(flow.groups), key="gradients.parameters")
show(stream_heatmap(flow.stream, tokens), key="gradients.stream")
show(saliency_bar(flow.saliency, tokens), key="gradients.saliency")
st.caption("Saliency is gradient × embedding summed over the embedding's numbers: the first-order change of the "
           "loss if the token's embedding were removed, with the sign flipped (red: the token raised the loss).")
