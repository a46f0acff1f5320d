"""Lesson: grouped-query attention. The KV-cache saving against the MHA twin, and the heads that share keys."""

import streamlit as st

from explorer.analysis import lesson_ablations as ablations
from explorer.analysis import lessons as analysis
from explorer.analysis import model_facts as facts
from explorer.analysis.attention import pattern_by_group
from explorer.app_state import current, experiment_toggle, query_window, remember, show
from explorer.figures.attention import head_grid
from explorer.figures.lessons import loss_bar
from explorer.lesson_ui import claim, lesson_title

session = current()
config, tokens, model = session.model.config, session.tokens, session.model
L, G = config.num_hidden_layers, config.group_size


@st.fragment
def group_view() -> None:
    t = session.trace()
    remember("view.lesson_gqa.layer", range(L), 0)
    layer = st.slider("Layer", 0, L - 1, key="view.lesson_gqa.layer") if L > 1 else 0
    rows = query_window(t, "view.lesson_gqa.first_query")
    show(
        head_grid(pattern_by_group(t, layer, rows), tokens if rows is None else tokens[rows[0] : rows[1]],
                  key_tokens=tokens[: rows[1]] if rows else None,
                  title=f"Attention patterns of layer {layer}, one row per shared KV head"),
        key="lesson_gqa.heads",
    )
    st.caption(
        "Heads in one row read the same keys: where they put their weight can still differ, because each has "
        "its own query. The Attention page shows every head up close."
    )


def conversion() -> None:
    """The loaded model's KV heads mean-pooled into fewer, without retraining: the prompt's loss against the cache."""
    options = ablations.kv_head_options(config.num_key_value_heads)
    if not options:
        st.info("This model already has a single KV head (MQA): there are no fewer to pool it into.")
        return
    if len(session.ids) < 2:
        st.info("The prompt needs at least two tokens to measure how well the model predicts it.")
        return
    baseline = ablations.prompt_loss(session.trace())
    labels, losses, rows = [f"{config.num_key_value_heads} KV heads (as trained)"], [baseline.loss], []
    for kv_heads in options:
        pool = config.num_key_value_heads // kv_heads
        converted = ablations.prompt_loss(session.trace(ablations.kv_pooling_edit(L, pool)))
        change, agreement = ablations.quality_cost(baseline, converted)
        labels.append(f"{kv_heads} KV head{'s' * (kv_heads > 1)} (cache {pool}× smaller)")
        losses.append(converted.loss)
        rows.append((kv_heads, pool, change, agreement))
    show(loss_bar(labels, losses, title="The prompt's loss with the KV heads mean-pooled into fewer"),
         key="lesson_gqa.conversion")
    st.markdown(ablations.gqa_verdict(baseline.loss, rows))


lesson_title("Grouped-query attention (GQA)", session.choice.source)
st.markdown(
    "Each query head compares its query with the keys of earlier tokens and reads their values. In **GQA**, "
    "query heads come in groups that share one key/value head: each group looks at the same keys and values "
    "through different queries. The KV cache shrinks by the group size G, at a small cost in quality. "
    f"This model has {config.num_attention_heads} query heads and {config.num_key_value_heads} KV heads "
    f"(G = {G}); below, each row of maps is one group."
)
claim(
    "GQA shrinks the KV cache by the number of query heads per KV head, compared with multi-head attention "
    "of the same size, at a small cost in quality.",
    "Ainslie et al. (2023), GQA: Training Generalized Multi-Query Transformer Models from Multi-Head Checkpoints; "
    "Shazeer (2019), Fast Transformer Decoding: One Write-Head is All You Need (MQA)",
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
st.subheader("The cost in quality: fewer KV heads by mean-pooling")
st.markdown(
    "A model with fewer KV heads can be made from this one the way Ainslie et al. did it: each group of "
    "neighbouring KV heads is replaced by one whose key and value projections are their mean, and the query heads "
    "of the whole group read it. Here each conversion runs the sidebar's prompt (an edit at every layer's k and v), "
    "and its next-token loss on that prompt is set against the model as trained."
)
if experiment_toggle("lesson_gqa", "Run the conversions (one forward each)"):
    conversion()
