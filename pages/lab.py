"""Stability lab: train a Llama and a Qwen3 that differ only in QK-norm, live, at a learning rate the user picks."""

import itertools
import time

import pandas as pd
import streamlit as st
import torch

from explorer.analysis.lab import depth_sentence, gradient_depth_ratio, run_summary, summary_rows, what_happened
from explorer.app_state import describe_exports, ensure_router, remember, show
from explorer.compute import COMPUTE
from explorer.figures.lab import gradient_chart, logit_chart, loss_chart
from training import stability
from training.corpus import CORPUS_FILE, load_corpus
from training.stability import DEFAULT_LR, DEFAULT_STEPS, LEARNING_RATES, MODELS, SIZES, lab_settings
from training.train import TrainSettings

RESULT = "lab.result"  # the last finished run, kept so that the charts survive reruns

ensure_router()  # the lab trains models of its own: it needs no prompt or sidebar model
describe_exports("two micro models trained here (training/stability.py)", f"training text: {CORPUS_FILE.name}")

st.title("Stability lab: QK-norm under a high learning rate")
st.markdown(
    "Each attention score is a dot product q·k/√dh. If training pushes the query and key vectors to grow, these "
    "**attention logits** grow with them, softmax turns into a hard one-hot choice, and learning slows, stalls, or "
    "(in large models) blows up to a NaN loss. Qwen3's **QK-norm** rescales every head's q and k to a fixed length "
    "before the dot product, so only its learned gains (which start at 1) can make the logits grow. Here two micro "
    "models, identical except for QK-norm (same initial weights, same batches, same optimizer), train side by side: "
    "watch the loss and the largest attention logit as you raise the learning rate."
)


@st.cache_resource(show_spinner=False)
def corpus() -> torch.Tensor:
    return load_corpus()


def train_both(settings: TrainSettings, draw, progress_slot) -> dict[str, list[dict]]:
    """Trains the two models, calling draw(runs) every few steps with the records so far."""
    runs = {name: [] for name in MODELS}
    bar = progress_slot.progress(0.0, text="Starting…")
    redraw_every = max(1, settings.steps // 30)

    def on_step(name: str, index: int, record: dict) -> None:
        runs[name].append(record)
        if record["step"] % redraw_every == 0 or record["step"] == settings.steps - 1:
            draw(runs)
            bar.progress((index * settings.steps + record["step"] + 1) / (2 * settings.steps),
                         text=f"Training {name}: step {record['step'] + 1} of {settings.steps}")

    # One step at a time through the server's compute queue: other sessions' forwards run in between.
    stability.train_both(settings, corpus(), on_step=on_step, each_step=COMPUTE.slot)
    bar.empty()
    return runs


if not CORPUS_FILE.is_file():
    st.error(f"The training corpus {CORPUS_FILE.name} is missing from training/data/. Make it (and the bundled "
             "pair) with `python -m training.train_pair`, then reload this page.")
    st.stop()

remember("view.lab.lr", LEARNING_RATES, DEFAULT_LR)
remember("view.lab.steps", range(1, 601), DEFAULT_STEPS)
col_lr, col_steps = st.columns(2)
lr = col_lr.select_slider("Peak learning rate", LEARNING_RATES, key="view.lab.lr", format_func=lambda x: f"{x:g}",
                          help="AdamW's step size after warm-up. The schedule warms up linearly over the first 5% "
                               "of steps, then decays along a cosine to zero.")
steps = col_steps.slider("Training steps per model", 1, 600, key="view.lab.steps",
                         help="Each step is one batch of 16 windows of 64 tokens.")
settings = lab_settings(lr, steps)
st.caption(f"Both models: {SIZES['layers']} layers, hidden size {SIZES['hidden']}, {SIZES['heads']} query heads "
           f"sharing {SIZES['kv_heads']} KV heads (head_dim {SIZES['hidden'] // SIZES['heads']}), trained on stories "
           "sampled from the bundled stories260K model, with gradient clipping at 1.0 and weight decay 0.1.")
start = st.button("Train both models", type="primary", key="lab.train")

progress_slot, loss_slot, logit_slot, gradient_slot = st.empty(), st.empty(), st.empty(), st.empty()
draws = itertools.count()  # a fresh chart key for every redraw: Streamlit refuses two equal elements in one run


def draw_live(runs: dict[str, list[dict]]) -> None:
    """The charts so far, while training runs. A placeholder holds one element, so the live redraws are bare
    charts; the finished run's charts below replace them with their Export menus."""
    n = next(draws)
    loss_slot.plotly_chart(loss_chart(runs, steps), key=f"lab.loss.{n}")
    logit_slot.plotly_chart(logit_chart(runs, steps), key=f"lab.logit.{n}")
    gradient_slot.plotly_chart(gradient_chart(runs, steps), key=f"lab.gradients.{n}")


if start:
    began = time.monotonic()
    runs = train_both(settings, draw_live, progress_slot)
    st.session_state[RESULT] = {"lr": lr, "steps": steps, "runs": runs, "seconds": time.monotonic() - began}

result = st.session_state.get(RESULT)
if result is None:
    st.info("Choose a learning rate and press **Train both models**. At 300 steps each, both train in about half "
            "a minute on two free CPU cores.")
    st.stop()

if (result["lr"], result["steps"]) != (lr, steps):
    progress_slot.caption("These charts show the last run; press **Train both models** to train with the new "
                          "settings.")
# A container fills a placeholder as one element, with room for the chart and its Export menu.
show(loss_chart(result["runs"], result["steps"]), key="lab.loss", container=loss_slot.container())
show(logit_chart(result["runs"], result["steps"]), key="lab.logit", container=logit_slot.container())
show(gradient_chart(result["runs"], result["steps"]), key="lab.gradients", container=gradient_slot.container())
st.caption(depth_sentence({name: gradient_depth_ratio(records) for name, records in result["runs"].items()}))
st.caption("At step 0 the two models' logits already differ: freshly initialised weights are small, so the "
           "Llama's q and k are short, while QK-norm rescales every q and k to length √dh before the dot product.")
st.subheader(f"What happened at learning rate {result['lr']:g} over {result['steps']} steps")
summaries = {name: run_summary(records) for name, records in result["runs"].items()}
st.dataframe(pd.DataFrame(summary_rows(summaries)), hide_index=True)
for sentence in what_happened(summaries, result["steps"]):
    st.markdown(f"- {sentence}")
st.caption(f"Both models trained in {result['seconds']:.0f} s, including drawing the charts as they went.")
