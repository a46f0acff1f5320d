"""Lessons: one block at a time, a textbook claim beside what this machine and the loaded model actually show."""

import numpy as np
import pandas as pd
import streamlit as st

from explorer.analysis import lessons as analysis
from explorer.analysis import model_facts as facts
from explorer.analysis import norms as norms_analysis
from explorer.analysis import rope as rope_analysis
from explorer.analysis import swiglu as swiglu_analysis
from explorer.analysis.attention import pattern_by_group
from explorer.app_state import current, show
from explorer.figures import lessons as figures
from explorer.figures.attention import head_grid
from explorer.figures.model import kv_cache_bar
from explorer.figures.rope import shift_figure
from explorer.figures.swiglu import distributions_figure
from model import bundled_models, load_model
from training.corpus import load_corpus, split

LESSONS = ("RMSNorm vs LayerNorm", "KV-cache memory", "SwiGLU", "RoPE", "GQA", "QK-norm")
NORM_SIZE = dict(batch=8, tokens=512, dim=512, iterations=100)
PAIR = ("pair-llama", "pair-qwen3")  # trained on 128-token windows, context 256: room to test extrapolation
PAIR_TRAINING_LENGTH = 128
EXTRAPOLATION_THETAS = (10_000.0, 40_000.0)  # the pair's own RoPE base, and one four times larger
EXTRAPOLATION_WINDOWS = 32
LOSS_SMOOTHING = 8  # positions per moving-average window of the loss chart

session = current()
config, tokens, model = session.model.config, session.tokens, session.model
L, T = config.num_hidden_layers, len(tokens)

st.title("Lessons: textbook claims, measured")
st.markdown(
    "Each lesson explains one block of a modern decoder, shows it at work in the loaded model "
    f"(**{session.choice.source}**, on the sidebar's prompt), and runs an experiment whose result is set beside "
    "what textbooks claim. When the two disagree, the page says so and explains why: a claim always rests on "
    "assumptions, and measuring shows which ones."
)
st.session_state.setdefault("view.lessons.lesson", LESSONS[0])
lesson = st.radio("Lesson", LESSONS, key="view.lessons.lesson", horizontal=True)


def remembered(key: str, options, default) -> None:
    """Reset a remembered control value that is missing or invalid for this model or prompt (widgets below take no
    default of their own: app.py re-assigns "view.*" keys, and Streamlit warns when a widget gets both)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default


def claim(text: str) -> None:
    st.info(f"**The claim.** {text}", icon=":material/menu_book:")


def token_label(i: int) -> str:
    return f"{i}: {tokens[i]}"


# ---------------------------------------------------------------- RMSNorm vs LayerNorm


def norm_lesson() -> None:
    st.header("RMSNorm vs LayerNorm")
    st.markdown(
        "Before attention and before the MLP, each token's vector is normalised so that its size stays under "
        "control. **LayerNorm** subtracts the vector's mean, divides by its standard deviation, then multiplies by a "
        "learned gain and adds a learned bias. **RMSNorm**, used by Llama and Qwen, skips the mean and the bias: it "
        "divides by the root-mean-square and multiplies by the gain. When a vector's mean is close to 0 the two "
        "do the same thing, and RMSNorm needs one reduction less."
    )
    claim("RMSNorm saves 7–10% of compute over LayerNorm.")
    timing_experiment()
    st.subheader("In the loaded model: what LayerNorm would subtract")
    st.caption(
        "Each cell is the mean of a residual vector divided by its RMS, at the input of every block and after "
        "the last. Where it is near 0, subtracting the mean (the step LayerNorm adds) would change little; a "
        "model trained with RMSNorm simply learns to work with whatever mean its vectors carry."
    )
    t = session.trace(norms_analysis.capture_names(L))
    stream, depths = norms_analysis.residual_stream(t)
    show(figures.mean_over_rms_heatmap(analysis.mean_over_rms(stream), depths, tokens), key="lessons.norm_scale")


@st.fragment
def timing_experiment() -> None:
    device, dtype = model.device, model.dtype
    shape = f"B={NORM_SIZE['batch']}, T={NORM_SIZE['tokens']}, D={NORM_SIZE['dim']}"
    where = f"{device.type} ({str(dtype).removeprefix('torch.')})"
    if st.button(
        f"Time both on {where}: {shape}, {NORM_SIZE['iterations']} forwards × 3 repeats", icon=":material/timer:"
    ):
        with st.spinner("Timing… (the whole run takes a few seconds to half a minute on a CPU)"):
            st.session_state["lessons.norm_timing"] = (
                where,
                analysis.time_norms(**NORM_SIZE, device=device, dtype=dtype),
            )
    measured = st.session_state.get("lessons.norm_timing")
    if measured is None or measured[0] != where:
        st.caption(
            "Press the button to measure on the sidebar's device (10 untimed warm-up forwards first; the "
            "median of three repeats is shown)."
        )
        return
    timing = measured[1]
    left, middle, right = st.columns(3)
    left.metric("torch.nn.LayerNorm", f"{timing.layernorm_ms:.3g} ms")
    middle.metric(
        "model.norm.RMSNorm (this project)", f"{timing.rmsnorm_ms:.3g} ms", delta=f"{timing.saving:+.1%} saved"
    )
    right.metric(
        "torch.nn.RMSNorm (PyTorch's built-in)",
        f"{timing.builtin_rmsnorm_ms:.3g} ms",
        delta=f"{timing.builtin_saving:+.1%} saved",
    )
    show(
        figures.norm_timing_bar(
            ["torch.nn.LayerNorm", "model.norm.RMSNorm (project)", "torch.nn.RMSNorm (built-in)"],
            [timing.layernorm_ms, timing.rmsnorm_ms, timing.builtin_rmsnorm_ms],
            shape=shape,
            device=where,
        ),
        key="lessons.norm_timing",
    )
    verdict = "within" if 0.07 <= timing.saving <= 0.10 else "outside"
    st.markdown(
        f"**Measured:** the project's RMSNorm saves **{timing.saving:.1%}** of LayerNorm's time here "
        f"({verdict} the claimed 7–10%; a negative number means it is slower), PyTorch's built-in RMSNorm "
        f"**{timing.builtin_saving:.1%}**. The claim counts arithmetic: RMSNorm skips the mean and the bias, a saving "
        "that shows when both norms run as one fused kernel each, as in GPU training code. A forward's time also "
        "depends on how often the tensor travels through memory: torch.nn.LayerNorm is one dedicated kernel on every "
        "device, while the project's RMSNorm is written as separate PyTorch operations (square, mean, rsqrt, two "
        "multiplications) for readability, each a full pass over the tensor. Whether torch.nn.RMSNorm runs as one "
        "kernel depends on the device and the PyTorch version; the measurement above shows what it does here. "
        "Inside a whole model normalisation is usually a small share of the time, so even a real saving changes the "
        "total little."
    )


# ---------------------------------------------------------------- KV cache


def kv_lesson() -> None:
    st.header("KV-cache memory")
    st.markdown(
        "When a model generates text it keeps, for every earlier token, the key and value vectors of every layer and "
        "KV head, so that each new token only computes its own: the **KV cache**. It grows by one entry per token, "
        "and for long texts it can take more memory than the weights. Per sequence, "
        "**bytes = 2 (K and V) · layers · KV heads · head_dim · tokens · bytes per value**. Multi-head attention "
        "(MHA) keeps one KV head per query head; grouped-query (GQA) and multi-query attention (MQA) share them."
    )
    claim(
        "A 7B model (32 layers, 32 heads, head_dim 128) at 4K tokens in fp16 needs about 4 GB with MHA, 1 GB with "
        "GQA-8 and 0.125 GB with MQA."
    )
    book = analysis.book_kv_table()
    left, right = st.columns(2)
    left.dataframe(
        book.drop(columns="formula (bytes)"),
        hide_index=True,
        width="stretch",
        column_config={"claim ÷ formula": st.column_config.NumberColumn(format="%.2f ×")},
    )
    show(
        figures.kv_claim_bar(
            list(book["variant"]),
            list(book["claimed (GB)"]),
            list(book["formula (bytes)"] / 2**30),
            list(book["formula"]),
        ),
        key="lessons.kv_claim",
        container=right,
    )
    ratio = book["claim ÷ formula"].iloc[0]
    st.warning(
        f"**The formula disagrees with the book by a factor of {ratio:g}:** for one sequence of 4,096 tokens in fp16 "
        f"it gives {', '.join(book['formula'])}, half of each claimed number (reading the book's GB as 2³⁰ bytes; as "
        "10⁹ bytes the gap is 1.86×). The book's numbers would hold for **two sequences** (batch 2), for values "
        "stored in **fp32** (4 bytes each), or for 8,192 tokens. The ratios between the variants (MHA : GQA-8 : "
        "MQA = 32 : 8 : 1) are right either way.",
        icon=":material/rule:",
    )

    st.subheader(f"The loaded model: {session.choice.source}")
    per_value_dtype = config.dtype if config.dtype in facts.BYTES_PER_VALUE else "bfloat16"
    context = config.max_position_embeddings
    rows = facts.kv_cache_variants(config, context, facts.BYTES_PER_VALUE[per_value_dtype])
    show(
        kv_cache_bar(
            [r["label"] for r in rows],
            [r["bytes"] for r in rows],
            [facts.format_bytes(r["bytes"]) for r in rows],
            [r["this_model"] for r in rows],
            subtitle=f"{context:,} tokens (its full context), 1 sequence, {per_value_dtype}",
        ),
        key="lessons.kv_model",
    )
    kv_calculator()


@st.fragment
def kv_calculator() -> None:
    st.subheader("Calculator")
    defaults = dict(layers=32, heads=32, kv_heads=8, head_dim=128, tokens=4096, batch=1)
    for name, value in defaults.items():
        st.session_state.setdefault(f"view.lessons.kv_{name}", value)
    remembered("view.lessons.kv_dtype", list(facts.BYTES_PER_VALUE), "float16")
    columns = st.columns(7)
    labels = dict(
        layers="Layers",
        heads="Query heads",
        kv_heads="KV heads",
        head_dim="head_dim",
        tokens="Tokens",
        batch="Sequences (batch)",
    )
    values = {
        name: column.number_input(label, min_value=1, step=1, key=f"view.lessons.kv_{name}")
        for column, (name, label) in zip(columns, labels.items())
    }
    dtype = columns[-1].selectbox("Stored as", list(facts.BYTES_PER_VALUE), key="view.lessons.kv_dtype")
    if values["heads"] % values["kv_heads"]:
        st.error(
            f"{values['heads']} query heads cannot be shared evenly by {values['kv_heads']} KV heads: choose a "
            "number of KV heads that divides the number of query heads."
        )
        return
    per_value = facts.BYTES_PER_VALUE[dtype]
    total = facts.kv_cache_bytes(
        values["layers"], values["kv_heads"], values["head_dim"], values["tokens"], per_value, values["batch"]
    )
    kind = facts.attention_kind(values["heads"], values["kv_heads"])
    group = values["heads"] // values["kv_heads"]
    st.markdown(
        f"bytes = 2 · {values['layers']} layers · {values['kv_heads']} KV heads · {values['head_dim']} head_dim · "
        f"{values['tokens']:,} tokens · {per_value} bytes ({dtype}) · {values['batch']} sequence"
        f"{'s' * (values['batch'] > 1)} = **{total:,} bytes ({facts.format_bytes(total)})**, {kind} with "
        f"{group} query head{'s' * (group != 1)} per KV head."
    )


# ---------------------------------------------------------------- SwiGLU


def swiglu_lesson() -> None:
    st.header("SwiGLU: a gated MLP")
    st.markdown(
        "The MLP of a block widens each token's vector, applies a non-linearity and narrows it back. The classic "
        "Transformer MLP has two matrices, D → 4D → D, with GELU in between. **SwiGLU** has three: *gate* and *up* "
        "both map D → F, silu(gate) multiplies up element by element, and *down* maps F → D. The gate decides, per "
        "neuron and token, how much of up passes. To spend the same number of weights with three matrices instead "
        "of two, F is made 8/3 · D instead of 4 · D."
    )
    claim("A SwiGLU hidden size of 8/3 × dim keeps the parameter count of a 4 × dim GELU MLP.")
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
        key="lessons.mlp_parameters",
        container=right,
    )
    gate_histograms()


@st.fragment
def gate_histograms() -> None:
    st.subheader("In the loaded model: what the gate lets through")
    st.caption(
        "silu(gate) is the factor each neuron's up value is multiplied by: a peak at 0 means the gate shuts "
        "many neurons for most tokens, a long positive tail means it lets a few pass strongly."
    )
    t = session.trace(swiglu_analysis.capture_names(L))
    remembered("view.lessons.swiglu_layer", range(L), 0)
    layer = st.slider("Layer", 0, L - 1, key="view.lessons.swiglu_layer") if L > 1 else 0
    histograms = {
        name: swiglu_analysis.histogram(swiglu_analysis.mlp_values(t, layer, name)) for name in ("act", "up", "hidden")
    }
    show(distributions_figure(histograms, layer), key="lessons.gate_histograms")


# ---------------------------------------------------------------- RoPE


def rope_lesson() -> None:
    st.header("RoPE: positions as rotations")
    st.markdown(
        "Attention on its own does not know where tokens are. **Rotary position embedding (RoPE)** turns every query "
        "and key, pair of numbers by pair of numbers, by an angle proportional to its position (position × a "
        "frequency, fast for the first pairs, slow for the last). A rotation keeps lengths, and turning q by m·ω and "
        "k by n·ω changes their dot product only through the difference m − n."
    )
    claim(
        "q·k depends only on the relative offset: the same q and k placed at (m, n) and at (m + s, n + s) give "
        "the same score."
    )
    relative_offset()
    claim("RoPE extrapolates better beyond the training length.")
    extrapolation()


@st.fragment
def relative_offset() -> None:
    t = session.trace(rope_analysis.capture_globs(config))
    c1, c2, c3, c4 = st.columns(4)
    remembered("view.lessons.rope_layer", range(L), 0)
    remembered("view.lessons.rope_head", range(config.num_attention_heads), 0)
    remembered("view.lessons.rope_m", range(T), T - 1)
    remembered("view.lessons.rope_n", range(T), 0)
    layer = c1.selectbox("Layer", range(L), key="view.lessons.rope_layer")
    head = c2.selectbox("Query head", range(config.num_attention_heads), key="view.lessons.rope_head")
    m = c3.selectbox("Query token m", range(T), key="view.lessons.rope_m", format_func=token_label)
    n = c4.selectbox("Key token n", range(T), key="view.lessons.rope_n", format_func=token_label)
    table = analysis.shift_check(t, layer, head, m, n)
    both = table["both shifted"].to_numpy()
    spread = float(np.abs(both - both[0]).max())
    left, right = st.columns(2)
    show(
        shift_figure(table["s"].to_numpy(), {c: table[c].to_numpy() for c in ("both shifted", "query only shifted")}),
        key="lessons.rope_shift",
        container=left,
    )
    right.dataframe(
        table,
        hide_index=True,
        column_config={c: st.column_config.NumberColumn(format="%.6f") for c in ("both shifted", "query only shifted")},
    )
    st.markdown(
        f"**Measured:** this head's own q and k (before RoPE), rotated with model/rope.py as if they sat at "
        f"(m + s, n + s), score **{both[0]:.6f}** for every shift up to s = {int(table['s'].iloc[-1]):,}, the largest "
        f"difference being **{spread:.2g}** (float32 rounding of large angles). The model's own score at (m, n) is "
        f"{rope_analysis.rotated_score(t, layer, head, m, n):.6f}. Moving the query alone changes the score: position "
        "enters only as the offset m − n. **The claim holds.**"
    )


@st.cache_data(show_spinner="Measuring the pair's loss at every position…", max_entries=4)
def pair_losses(device: str) -> dict[tuple[str, float], np.ndarray]:
    """Mean loss per position of both pair models, with their own RoPE base and a larger one, on held-out text."""
    windows = analysis.held_out_windows(split(load_corpus())[1], 2 * PAIR_TRAINING_LENGTH, EXTRAPOLATION_WINDOWS)
    curves = {}
    for name in PAIR:
        pair_model = load_model(name, device=device, dtype="float32")
        for theta in EXTRAPOLATION_THETAS:
            curves[name, theta] = analysis.loss_by_position(pair_model, windows, theta)
    return curves


def extrapolation() -> None:
    length = PAIR_TRAINING_LENGTH
    st.markdown(
        f"**The experiment.** Extrapolation needs a model whose context is longer than the texts it was trained on. "
        f"The loaded model cannot read past its context at all; asked for {config.max_position_embeddings + 1:,} "
        f"tokens, the decoder answers: *{analysis.context_refusal(model)}* The bundled pair (pair-llama and "
        f"pair-qwen3) was trained on {length}-token windows but accepts {2 * length}, so it can be measured on "
        f"held-out texts of {2 * length} tokens: mean loss at each position over {EXTRAPOLATION_WINDOWS} of them, with "
        f"the RoPE base θ it was trained with ({EXTRAPOLATION_THETAS[0]:,.0f}) and a larger one "
        f"({EXTRAPOLATION_THETAS[1]:,.0f}: slower rotations, a common trick for longer contexts, applied here without "
        "any fine-tuning)."
    )
    missing = [name for name in PAIR if name not in bundled_models()]
    if missing:
        st.info(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in model/bundled yet: create "
            "the pair with `python -m training.train_pair`, then reload this page."
        )
        return
    curves = pair_losses(session.choice.device)
    by_theta = sorted(curves.items(), key=lambda item: item[0][1])  # both models at one θ, then at the other
    show(
        figures.loss_by_position_chart(
            {
                f"{name}, θ = {theta:,.0f}": analysis.moving_average(losses, LOSS_SMOOTHING)
                for (name, theta), losses in by_theta
            },
            length,
            smoothing=LOSS_SMOOTHING,
        ),
        key="lessons.rope_extrapolation",
    )
    table = analysis.extrapolation_table(curves, length)
    shown = table.rename(
        columns={
            "inside": f"mean loss, positions {length * 3 // 4}–{length - 1}",
            "beyond": f"mean loss, positions {length}–{2 * length - 1}",
            "change": "change beyond (nats)",
        }
    )
    st.dataframe(
        shown,
        hide_index=True,
        column_config={"RoPE θ": st.column_config.NumberColumn(format="localized")}
        | {
            c: st.column_config.NumberColumn(format="%+.3f" if c.startswith("change") else "%.3f")
            for c in shown.columns[2:]
        },
    )
    st.markdown(extrapolation_verdict(table))


def extrapolation_verdict(table: pd.DataFrame) -> str:
    """What the measurement says about the claim, from the table of extrapolation_table, worded from its numbers."""
    own_theta, larger_theta = EXTRAPOLATION_THETAS
    own, larger = table[table["RoPE θ"] == own_theta], table[table["RoPE θ"] == larger_theta]

    def changes(rows: pd.DataFrame) -> str:
        return ", ".join(f"{r.change:+.3f} nats ({r.model})" for r in rows.itertuples())

    verdict = (
        "the loss does not rise beyond the training length: at twice that length, RoPE extrapolates here"
        if own["change"].max() <= 0
        else "the loss rises on positions never seen in training: with the θ it was trained with, RoPE does not "
        "extrapolate here"
    )
    inside_cost = (larger["inside"].to_numpy() - own["inside"].to_numpy()).max()
    return (
        f"**Measured:** with their own θ ({own_theta:,.0f}), from the last quarter of the trained positions to the "
        f"positions beyond, the loss changes by {changes(own)}: {verdict}. With θ = {larger_theta:,.0f} the change "
        f"is {changes(larger)}: slower rotations keep the angles at positions up to {2 * PAIR_TRAINING_LENGTH} closer "
        f"to those seen in training, at a cost of up to {inside_cost:+.3f} nats on the trained positions, whose "
        "rotations the weights were fitted to. Textbooks compare RoPE with learned absolute position embeddings, "
        "which have no vector at all for an unseen position; this project trains no such twin, so the measurement "
        "tests whether RoPE extrapolates, not whether it does so better than they would."
    )


# ---------------------------------------------------------------- GQA


def gqa_lesson() -> None:
    st.header("Grouped-query attention (GQA)")
    G = config.group_size
    st.markdown(
        "Each query head compares its query with the keys of earlier tokens and reads their values. In **GQA**, "
        "query heads come in groups that share one key/value head: each group looks at the same keys and values "
        "through different queries. The KV cache shrinks by the group size G, at a small cost in quality. "
        f"This model has {config.num_attention_heads} query heads and {config.num_key_value_heads} KV heads "
        f"(G = {G}); below, each row of maps is one group."
    )
    claim(
        "GQA shrinks the KV cache by the number of query heads per KV head, compared with multi-head attention "
        "of the same size."
    )
    context = config.max_position_embeddings
    per_value_dtype = config.dtype if config.dtype in facts.BYTES_PER_VALUE else "bfloat16"
    mine, mha = analysis.kv_saving_against_mha(model, context, facts.BYTES_PER_VALUE[per_value_dtype])
    measured = (
        f"**Measured with the formula:** at its full context of {context:,} tokens in {per_value_dtype}, this "
        f"model's KV cache takes **{facts.format_bytes(mine['bytes'])}** per sequence"
    )
    if G > 1:
        st.markdown(
            f"{measured}, its MHA twin ({config.num_attention_heads} KV heads) "
            f"**{facts.format_bytes(mha['bytes'])}**: **{mha['bytes'] / mine['bytes']:g}× smaller**, the group "
            "size."
        )
    else:
        st.markdown(
            f"{measured}. This model is itself multi-head attention (G = 1), so it saves nothing; load a GQA "
            "model such as stories260K or Qwen3 to see a saving."
        )
    group_view()


@st.fragment
def group_view() -> None:
    t = session.trace(["layers.*.self_attn.pattern", "layers.*.self_attn.scores"])
    remembered("view.lessons.gqa_layer", range(L), 0)
    layer = st.slider("Layer", 0, L - 1, key="view.lessons.gqa_layer") if L > 1 else 0
    show(
        head_grid(
            pattern_by_group(t, layer), tokens, title=f"Attention patterns of layer {layer}, one row per shared KV head"
        ),
        key="lessons.gqa_heads",
    )
    st.caption(
        "Heads in one row read the same keys: where they put their weight can still differ, because each has "
        "its own query. The Attention page shows every head up close."
    )


# ---------------------------------------------------------------- QK-norm


def qk_norm_lesson() -> None:
    st.header("QK-norm")
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


{
    "RMSNorm vs LayerNorm": norm_lesson,
    "KV-cache memory": kv_lesson,
    "SwiGLU": swiglu_lesson,
    "RoPE": rope_lesson,
    "GQA": gqa_lesson,
    "QK-norm": qk_norm_lesson,
}[lesson]()
