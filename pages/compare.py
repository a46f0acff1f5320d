"""Llama vs Qwen3: two models on the same prompt, around QK-norm, and QK-norm switched off or added by an edit."""

import re
from dataclasses import dataclass

import streamlit as st
import torch

from explorer.analysis import compare
from explorer.analysis.attention import head_label, layer_heads
from explorer.analysis.model_facts import top_next_tokens
from explorer.app_state import (ANY_TEXT, OTHER_SOURCE, as_text, current, describe_exports, load, remember, show,
                                source_options, trace_model, typed_source)
from explorer.serving import DEFAULT_CHOICE, ModelChoice
from explorer.figures import compare as figures
from explorer.figures.attention import head_matrix
from explorer.figures.common import DIVERGING, token_heatmap
from explorer.figures.model import top_k_bar
from explorer.trace import Trace
from model import Decoder, ModelError, Tokenizer

PAIR = {"a": "pair-llama", "b": "pair-qwen3"}  # the bundled controlled pair: identical except for QK-norm

session = current()
st.title("Llama vs Qwen3: what QK-norm changes")
st.markdown(
    "Before attention compares a query with a key, **Qwen3** rescales each head's q and k to unit root-mean-square "
    "and multiplies them by a learned gain (**QK-norm**, an RMSNorm per head, applied before RoPE); **Llama** uses "
    "q and k as they come out of their projections. QK-norm caps how large a score q·k/√dh can grow, which keeps "
    "training stable. Two unrelated checkpoints differ in data, size and training too, so their differences cannot "
    "be pinned on QK-norm: the bundled pair **pair-llama** and **pair-qwen3** was trained from the same start, on "
    "the same data, with the same settings, and differs *only* in QK-norm. Below, both read the sidebar's prompt; "
    "at the bottom, QK-norm is switched off in the Qwen3-style model and added to the Llama-style one."
)


@dataclass
class Side:
    """One of the two compared models with its own tokenization of the prompt and its unedited trace."""

    slot: str  # "a" or "b", the suffix of its widget keys
    source: str
    choice: ModelChoice
    model: Decoder
    tokenizer: Tokenizer
    ids: list[int]
    trace: Trace

    @property
    def name(self) -> str:
        return f"{self.slot.upper()} ({self.source.rstrip('/').rsplit('/', 1)[-1]})"

    @property
    def tokens(self) -> list[str]:
        return self.tokenizer.tokens(self.ids)


def pick_source(where, slot: str) -> str:
    options = source_options()
    key = f"view.compare.{slot}"
    remember(key, options, PAIR[slot] if PAIR[slot] in options else options[0])
    picked = where.selectbox(f"Model {slot.upper()}", options, key=key)
    if picked != OTHER_SOURCE:
        return picked
    remember(f"{key}_custom", ANY_TEXT, "")  # a typed source travels in links too
    return typed_source(where, f"Model {slot.upper()}: Hub repo id or local folder", f"{key}_custom")


def open_side(slot: str, source: str) -> Side:
    """Load, tokenize and trace one model; on bad input say what to do and stop the page."""
    if not source:
        st.info(f"Type a Hub repo id or a local folder for model {slot.upper()}.")
        st.stop()
    state = st.session_state
    choice = ModelChoice(source, state.get("device", DEFAULT_CHOICE.device), state.get("dtype", "auto"))
    try:
        model, tokenizer = load(choice, state.get("hf_token"))
        ids = tokenizer.encode(session.prompt)
        if not ids:
            raise ModelError("its tokenizer turns the prompt into no tokens: type some text in the sidebar.")
        model.check_input(torch.tensor([ids]), 0)
    except ModelError as e:
        st.error(f"Model {slot.upper()} ({as_text(source)}): {as_text(str(e))}")
        st.stop()
    t = trace_model(choice, model, tokenizer, ids)
    return Side(slot, source, choice, model, tokenizer, ids, t)


def slug(name: str) -> str:
    """A metric's name fit for a chart key, which also names the export files: "largest |score|" -> "largest_score"."""
    return "_".join(re.findall(r"\w+", name))


pickers = st.columns(2)
sources = [pick_source(col, slot) for col, slot in zip(pickers, "ab")]
a, b = open_side("a", sources[0]), open_side("b", sources[1])
describe_exports(f"A: {a.source}; B: {b.source}", session.prompt)
LA, LB = a.model.config.num_hidden_layers, b.model.config.num_hidden_layers


@st.fragment
def aligned_layer_panels() -> None:
    st.subheader("q and k lengths, layer by layer")
    st.markdown(
        "Each box is one head: how long its q (or k) vectors are across the prompt's tokens. With QK-norm, lengths "
        "**after** the norm depend only on the learned gain (about √head_dim times its typical size), not on how long "
        "the vectors were before; without it, nothing bounds them. "
        + ("Layers are matched by relative depth, as the models have different numbers of layers." if LA != LB else "")
    )
    remember("view.compare.layer", list(range(LA)), 0)
    layer_a = st.slider(f"Layer of model {a.name}", 0, LA - 1, key="view.compare.layer") if LA > 1 else 0
    layer_b = compare.aligned_layer(layer_a, LA, LB)
    if LA != LB:
        st.caption(f"Layer {layer_a} of {a.name} ({LA} layers) faces layer {layer_b} of {b.name} ({LB} layers): "
                   "the same relative depth.")
    stages = [compare.qk_norm_stages(a.trace, layer_a), compare.qk_norm_stages(b.trace, layer_b)]
    y_range = figures.norm_range([lengths for s in stages for pair in s.values() for lengths in pair])
    for column, side, layer, side_stages in zip(st.columns(2), (a, b), (layer_a, layer_b), stages):
        show(figures.qk_norm_boxes(side_stages, side.model.config.group_size, y_range=y_range,
                                   title=f"{side.name}, layer {layer}: ‖q‖ and ‖k‖ over tokens"),
             key=f"compare.{side.slot}.lengths", container=column)
        gains = compare.qk_norm_gains(side.model, layer)
        if gains is None:
            column.caption(f"{side.name} has no QK-norm, so no learned gains: RoPE turns q and k as projected.")
        else:
            show(figures.gain_lines(*gains, title=f"{side.name}, layer {layer}: learned QK-norm gains"),
                 key=f"compare.{side.slot}.gains", container=column)


aligned_layer_panels()

st.subheader("Attention statistics per layer")
if min(len(a.ids), len(b.ids)) < 2:
    st.info("These statistics average over tokens that can choose where to look: type a prompt of two or more tokens.")
else:
    st.markdown(
        "The **largest |score|** is the biggest q·k/√dh of the layer (any head, any visible pair): softmax turns a "
        "large score into an almost one-hot row. **Entropy** (nats) is low when heads look at few tokens. **Attention "
        "to the first token** near 1 marks an attention sink. Entropy and first-token weight average over heads and "
        "over query positions after the first."
    )
    x_a, x_b, x_title = compare.depth_axes(LA, LB)
    metrics_a, metrics_b = compare.layer_metrics(a.trace), compare.layer_metrics(b.trace)
    for column, metric, title, unit in zip(st.columns(3), compare.LAYER_METRICS, [
        "Largest |attention score| per layer", "Mean attention entropy per layer", "Mean attention to the first token"
    ], ["|q·k/√dh| (no unit)", "entropy (nats)", "attention weight (0…1)"]):
        show(figures.layer_lines({a.name: (x_a, metrics_a[metric]), b.name: (x_b, metrics_b[metric])},
                                 title=title, x_title=x_title, y_title=unit),
             key=f"compare.{slug(metric)}", container=column)

st.subheader("What each model predicts next")
for column, side in zip(st.columns(2), (a, b)):
    ids, probs = top_next_tokens(side.trace["logits"][0, -1], 10)
    column.markdown(f"**{side.name}**")
    show(top_k_bar(side.tokenizer.tokens(ids), probs, position_token=side.tokens[-1]),
         key=f"compare.{side.slot}.next", container=column)


@st.fragment
def ablation_view(side: Side) -> None:
    config, slot = side.model.config, side.slot
    layers = list(range(config.num_hidden_layers))
    if config.qk_norm:
        st.markdown(f"{side.name} has QK-norm: switch it off on some layers and q and k reach RoPE at their raw "
                    "length, the way the model never saw them during training.")
    else:
        st.markdown(f"{side.name} has no QK-norm: add a per-head RMS normalisation of q and k (before RoPE, no "
                    "learned gain) on some layers, and every q and k there gets length √head_dim.")
    remember(f"view.compare.{slot}.layers", layers, layers)
    chosen = st.multiselect("Edited layers", layers, key=f"view.compare.{slot}.layers")
    if not chosen:
        st.info("Choose at least one layer to edit.")
        return
    edit_name, edits = compare.ablation(config, chosen)
    edited = trace_model(side.choice, side.model, side.tokenizer, side.ids, edits)
    kl = compare.kl_by_position(side.trace["logits"], edited["logits"])
    st.metric(f"KL(unedited ‖ edited) of the next token, {edit_name}", f"{kl[-1]:.4f} nats",
              help="How many nats of surprise the edited model's next-token distribution adds, on average, for "
                   "someone who expects the unedited one. 0 means unchanged.")

    p_unedited = compare.next_token_probabilities(side.trace["logits"])
    p_edited = compare.next_token_probabilities(edited["logits"])
    candidates = compare.changed_candidates(p_unedited, p_edited, 8)
    left, right = st.columns(2)
    show(figures.next_token_change(side.tokenizer.tokens(candidates.tolist()), p_unedited[candidates],
                                   p_edited[candidates], edit_name=edit_name, position_token=side.tokens[-1]),
         key=f"compare.{slot}.change", container=left)
    show(figures.kl_by_position_bar(kl, side.tokens, title="KL(unedited ‖ edited) at every position"),
         key=f"compare.{slot}.kl", container=right)
    if len(side.ids) >= 2:
        depth = list(map(float, layers))
        before, after = compare.layer_metrics(side.trace), compare.layer_metrics(edited)
        for column, metric, title, unit in zip(st.columns(2), ["entropy", "largest |score|"],
                                               ["Mean attention entropy per layer", "Largest |attention score| per layer"],
                                               ["entropy (nats)", "|q·k/√dh| (no unit)"]):
            show(figures.layer_lines({"unedited": (depth, before[metric]), edit_name: (depth, after[metric])},
                                     title=title, x_title="layer", y_title=unit),
                 key=f"compare.{slot}.{slug(metric)}", container=column)

    st.markdown("**One head, unedited and edited.** Rows are queries, columns keys.")
    chosen = sorted(chosen)
    remember(f"view.compare.{slot}.pattern_layer", chosen, chosen[0])
    remember(f"view.compare.{slot}.head", list(range(config.num_attention_heads)), 0)
    pick_layer, pick_head, pick_view = st.columns(3)
    layer = pick_layer.selectbox("Layer (an edited one)", chosen, key=f"view.compare.{slot}.pattern_layer")
    head = pick_head.selectbox("Head", range(config.num_attention_heads), key=f"view.compare.{slot}.head",
                               format_func=lambda h: head_label(h, config.group_size))
    view = pick_view.radio("Show", ["side by side", "difference"], horizontal=True,
                           key=f"view.compare.{slot}.pattern_view",
                           help="The difference is the edited minus the unedited attention weight: red where the "
                                "edit makes a query look more, blue where it looks less.")
    unedited_pattern, edited_pattern = layer_heads(side.trace, layer)[0][head], layer_heads(edited, layer)[0][head]
    where = f"layer {layer}, {head_label(head, config.group_size)}"
    if view == "difference":
        show(token_heatmap(edited_pattern - unedited_pattern, side.tokens, side.tokens, value_name="Δ weight",
                           colorscale=DIVERGING, zmid=0, title=f"Edited − unedited attention weight: {where}"),
             key=f"compare.{slot}.pattern.difference")
        return
    for column, (name, pattern) in zip(st.columns(2), {"unedited": unedited_pattern, "edited": edited_pattern}.items()):
        show(head_matrix(pattern, side.tokens, scores=False, title=f"{name.capitalize()}: {where}"),
             key=f"compare.{slot}.pattern.{name}", container=column)


st.subheader("Ablations: QK-norm off, QK-norm on")
st.markdown("Each model gets the edit it can take: a model with QK-norm loses it, a model without gains it. The "
            "**KL divergence** (nats) measures how far the edit moves the next-token distribution.")
for tab, side in zip(st.tabs([f"Model {a.name}", f"Model {b.name}"]), (a, b)):
    with tab:
        ablation_view(side)
