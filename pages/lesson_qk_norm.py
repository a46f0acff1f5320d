"""Lesson: QK-norm. What it does, and the two pages that test the claim with models trained for the purpose."""

import streamlit as st

from explorer.app_state import current
from explorer.lesson_ui import claim, lesson_title

session = current()
config = session.model.config

lesson_title("QK-norm", session.choice.source)
st.markdown(
    "An attention score is q·k/√head_dim. Nothing stops q and k from growing during training, and when they do, "
    "scores grow with the product of their lengths, softmax puts all weight on one key, and training can "
    "diverge. **QK-norm** (used by Qwen3, OLMo 2 and Gemma 3) applies an RMSNorm with a learned gain to each "
    "head's q and k before RoPE, so their sizes are fixed by the gains instead of drifting. "
    + ("The loaded model uses QK-norm." if config.qk_norm else "The loaded model has no QK-norm.")
)
claim("QK-norm keeps attention logits bounded and lets training run at higher learning rates without diverging.")
st.markdown(
    "Two pages test this with models trained for the purpose: a Llama and a Qwen3 that differ only in "
    "QK-norm, and a lab that trains both at a chosen learning rate and watches the largest attention "
    "logit."
)
st.page_link(
    "pages/compare.py",
    label="Llama vs Qwen3: the same prompt through the controlled pair",
    icon=":material/compare:",
)
st.page_link(
    "pages/lab.py",
    label="Stability lab: train both and watch the largest attention logit",
    icon=":material/science:",
)
