"""Lesson: KV-cache memory. The book's numbers against the formula, the loaded model's cache, and a calculator."""

import streamlit as st

from explorer.analysis import lessons as analysis
from explorer.analysis import model_facts as facts
from explorer.app_state import as_text, current, remember, show
from explorer.figures import lessons as figures
from explorer.figures.model import kv_cache_bar
from explorer.lesson_ui import claim, lesson_title

CALCULATOR = dict(layers=32, heads=32, kv_heads=8, head_dim=128, tokens=4096, batch=1)  # the book's GQA-8 model
LABELS = dict(
    layers="Layers", heads="Query heads", kv_heads="KV heads", head_dim="head_dim", tokens="Tokens",
    batch="Sequences (batch)",
)

session = current()
config = session.model.config


@st.fragment
def kv_calculator() -> None:
    st.subheader("Calculator")
    for name, value in CALCULATOR.items():
        remember(f"view.lesson_kv_cache.{name}", range(1, 2**53), value)  # what number_input(min_value=1) takes
    remember("view.lesson_kv_cache.dtype", list(facts.BYTES_PER_VALUE), "float16")
    columns = st.columns(7)
    values = {
        name: column.number_input(label, min_value=1, step=1, key=f"view.lesson_kv_cache.{name}")
        for column, (name, label) in zip(columns, LABELS.items())
    }
    dtype = columns[-1].selectbox("Stored as", list(facts.BYTES_PER_VALUE), key="view.lesson_kv_cache.dtype")
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


lesson_title("KV-cache memory", session.choice.source)
st.markdown(
    "When a model generates text it keeps, for every earlier token, the key and value vectors of every layer and "
    "KV head, so that each new token only computes its own: the **KV cache**. It grows by one entry per token, "
    "and for long texts it can take more memory than the weights. Per sequence, "
    "**bytes = 2 (K and V) · layers · KV heads · head_dim · tokens · bytes per value**. Multi-head attention "
    "(MHA) keeps one KV head per query head; grouped-query (GQA) and multi-query attention (MQA) share them."
)
claim(
    "A 7B model (32 layers, 32 heads, head_dim 128) at 4K tokens in fp16 needs about 4 GB with MHA, 1 GB with "
    "GQA-8 and 0.125 GB with MQA.",
    "Pope et al. (2022), Efficiently Scaling Transformer Inference; Shazeer (2019), Fast Transformer Decoding; "
    "Ainslie et al. (2023), GQA",
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
        list(book["variant"]), list(book["claimed (GB)"]), list(book["formula (bytes)"] / 2**30), list(book["formula"])
    ),
    key="lesson_kv_cache.claim",
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

st.subheader(f"The loaded model: {as_text(session.choice.source)}")
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
    key="lesson_kv_cache.model",
)
kv_calculator()
