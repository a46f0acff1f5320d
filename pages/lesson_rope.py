"""Lesson: RoPE, positions as rotations. Scores under a common shift of q and k, and loss beyond the training length
of the bundled pair."""

import streamlit as st

from explorer.analysis import lessons as analysis
from explorer.analysis import rope as rope_analysis
from explorer.app_state import current, remember, show
from explorer.figures import lessons as figures
from explorer.figures.rope import shift_figure
from explorer.lesson_ui import claim, lesson_title, pair_losses

LOSS_SMOOTHING = 8  # positions per moving-average window of the loss chart

session = current()
config, tokens, model = session.model.config, session.tokens, session.model
L, T = config.num_hidden_layers, len(tokens)


def token_label(i: int) -> str:
    return f"{i}: {tokens[i]}"


@st.fragment
def relative_offset() -> None:
    t = session.trace()
    c1, c2, c3, c4 = st.columns(4)
    remember("view.lesson_rope.layer", range(L), 0)
    remember("view.lesson_rope.head", range(config.num_attention_heads), 0)
    remember("view.lesson_rope.m", range(T), T - 1)
    remember("view.lesson_rope.n", range(T), 0)
    layer = c1.selectbox("Layer", range(L), key="view.lesson_rope.layer")
    head = c2.selectbox("Query head", range(config.num_attention_heads), key="view.lesson_rope.head")
    m = c3.selectbox("Query token m", range(T), key="view.lesson_rope.m", format_func=token_label)
    n = c4.selectbox("Key token n", range(T), key="view.lesson_rope.n", format_func=token_label)
    table = analysis.shift_check(t, layer, head, m, n)
    both = table["both shifted"].to_numpy()
    left, right = st.columns(2)
    show(
        shift_figure(table["s"].to_numpy(), {c: table[c].to_numpy() for c in ("both shifted", "query only shifted")}),
        key="lesson_rope.shift",
        container=left,
    )
    right.dataframe(
        table,
        hide_index=True,
        column_config={c: st.column_config.NumberColumn(format="%.6f") for c in ("both shifted", "query only shifted")},
    )
    st.markdown(
        f"**Measured:** this head's own q and k (before RoPE), rotated with model/rope.py as if they sat at "
        f"(m + s, n + s) for shifts up to s = {int(table['s'].iloc[-1]):,}, score from **{both.min():.6f}** to "
        f"**{both.max():.6f}**; the model's own score at (m, n) is "
        f"{rope_analysis.rotated_score(t, layer, head, m, n):.6f}. "
        + analysis.shift_verdict(both, table["query only shifted"].to_numpy())
    )


def extrapolation() -> None:
    length, thetas = analysis.PAIR_TRAINING_LENGTH, analysis.EXTRAPOLATION_THETAS
    st.markdown(
        f"**The experiment.** Extrapolation needs a model whose context is longer than the texts it was trained on. "
        f"The loaded model cannot read past its context at all; asked for {config.max_position_embeddings + 1:,} "
        f"tokens, the decoder answers: *{analysis.context_refusal(model)}* The bundled pair (pair-llama and "
        f"pair-qwen3) was trained on {length}-token windows but accepts {2 * length}, so it can be measured on "
        f"held-out texts of {2 * length} tokens: mean loss at each position over {analysis.EXTRAPOLATION_WINDOWS} of "
        f"them, with the RoPE base θ it was trained with ({thetas[0]:,.0f}) and a larger one ({thetas[1]:,.0f}: "
        "slower rotations, a common trick for longer contexts, applied here without any fine-tuning)."
    )
    curves = pair_losses(session.choice.device)
    by_theta = sorted(curves.items(), key=lambda item: item[0][1])  # both models at one θ, then at the other
    smoothed = {f"{name}, θ = {theta:,.0f}": analysis.moving_average(losses, LOSS_SMOOTHING)
                for (name, theta), losses in by_theta}
    show(figures.loss_by_position_chart(smoothed, length, smoothing=LOSS_SMOOTHING), key="lesson_rope.extrapolation")
    table = analysis.extrapolation_table(curves, length)
    shown = table.rename(
        columns={
            "inside": f"mean loss, positions {length * 3 // 4}–{length - 1}",
            "beyond": f"mean loss, positions {length}–{2 * length - 1}",
            "change": "change beyond (nats)",
        }
    )
    formats = {c: "%+.3f" if c.startswith("change") else "%.3f" for c in shown.columns[2:]}
    st.dataframe(
        shown,
        hide_index=True,
        column_config={"RoPE θ": st.column_config.NumberColumn(format="localized")}
        | {c: st.column_config.NumberColumn(format=f) for c, f in formats.items()},
    )
    st.markdown(analysis.extrapolation_verdict(table))


lesson_title("RoPE: positions as rotations", session.choice.source)
st.markdown(
    "Attention on its own does not know where tokens are. **Rotary position embedding (RoPE)** turns every query "
    "and key, pair of numbers by pair of numbers, by an angle proportional to its position (position × a "
    "frequency, fast for the first pairs, slow for the last). A rotation keeps lengths, and turning q by m·ω and "
    "k by n·ω changes their dot product only through the difference m − n."
)
claim(
    "q·k depends only on the relative offset: the same q and k placed at (m, n) and at (m + s, n + s) give "
    "the same score.",
    "Su et al. (2021), RoFormer: Enhanced Transformer with Rotary Position Embedding",
)
relative_offset()
claim("RoPE extrapolates better beyond the training length.",
      "Su et al. (2021), RoFormer; contested by Press et al. (2022), Train Short, Test Long (ALiBi), who found "
      "rotary embeddings extrapolate poorly, and by Chen et al. (2023), Extending Context Window of Large Language "
      "Models via Positional Interpolation")
extrapolation()
