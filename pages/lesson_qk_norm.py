"""Lesson: QK-norm. What it does, a live ablation on a QK-norm model, and the two pages that test the training claim."""

import streamlit as st

from explorer.analysis import lesson_ablations as ablations
from explorer.app_state import as_text, current, experiment_toggle, load, show, trace_model
from explorer.figures.common import label
from explorer.figures.compare import layer_lines
from explorer.lesson_ui import claim, lesson_title
from explorer.serving import ModelChoice
from model import ModelError

session = current()
config = session.model.config
SOURCES = ("Henry et al. (2020), Query-Key Normalization for Transformers; Dehghani et al. (2023), Scaling Vision "
           "Transformers to 22 Billion Parameters; Wortsman et al. (2023), Small-scale proxies for large-scale "
           "Transformer training instabilities")


def ablation() -> None:
    """QK-norm off in every layer of the loaded model, or of the bundled pair's Qwen3 when the loaded has none."""
    if config.qk_norm:
        model, name, unedited = session.model, session.choice.source, session.trace()
        edited = session.trace(ablations.qk_norm_edit(config.num_hidden_layers))
    else:
        choice = ModelChoice("pair-qwen3", session.choice.device, "auto")
        try:
            model, tokenizer = load(choice)
        except ModelError as e:
            st.info(f"The loaded model has no QK-norm, and the bundled pair-qwen3 cannot be loaded here: "
                    f"{as_text(str(e))}")
            return
        ids = tokenizer.encode(session.prompt)[: model.config.max_position_embeddings]
        name, unedited = choice.source, trace_model(choice, model, tokenizer, ids)
        edited = trace_model(choice, model, tokenizer, ids, ablations.qk_norm_edit(model.config.num_hidden_layers))
        st.caption(f"The loaded model has no QK-norm: the experiment runs on the bundled **pair-qwen3** (a small "
                   f"Qwen3 trained for this project), on the sidebar's prompt ({len(ids)} of its tokens).")
    result = ablations.qk_norm_ablation(model, unedited, edited)
    depth = list(range(model.config.num_hidden_layers))
    show(layer_lines({"with QK-norm (as trained)": (depth, result.with_norm),
                      "QK-norm switched off": (depth, result.without_norm),
                      "the bound QK-norm sets": (depth, result.bound)},
                     title=f"{label(name)}: largest |attention score| per layer", x_title="layer",
                     y_title="|q·k/√dh|"), key="lesson_qk_norm.ablation")
    st.markdown(ablations.qk_norm_verdict(result))


lesson_title("QK-norm", session.choice.source)
st.markdown(
    "An attention score is q·k/√head_dim. Nothing stops q and k from growing during training, and when they do, "
    "scores grow with the product of their lengths, softmax puts all weight on one key, and training can "
    "diverge. **QK-norm** (used by Qwen3, OLMo 2 and Gemma 3) applies an RMSNorm with a learned gain to each "
    "head's q and k before RoPE, so their sizes are fixed by the gains instead of drifting. "
    + ("The loaded model uses QK-norm." if config.qk_norm else "The loaded model has no QK-norm.")
)
claim("QK-norm keeps attention logits bounded and lets training run at higher learning rates without diverging.",
      SOURCES)
st.subheader("Bounded: switch it off in a trained model")
if experiment_toggle("lesson_qk_norm", "Run the ablation (two forwards, every layer's scores)"):
    ablation()
st.subheader("Higher learning rates: train with and without")
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
