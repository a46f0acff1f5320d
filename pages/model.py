"""Model: what this checkpoint is built from, what it predicts next, and what its KV cache costs."""

import pandas as pd
import streamlit as st

from explorer.analysis import model_facts as facts
from explorer.app_state import as_text, current, remember, show, show_drawing
from explorer.figures.model import block_diagram, kv_cache_bar, parameter_bar, token_chips, top_k_bar

session = current()
config = session.model.config
st.title(f"Model: {as_text(session.choice.source)}")
st.markdown(
    "A decoder-only language model turns each token into a vector (the **embedding**), passes those vectors "
    f"through {config.num_hidden_layers} identical **blocks** that each add what attention and an MLP computed "
    "back onto a running sum (the **residual stream**), and finally scores every word of its vocabulary as the "
    "next token (the **LM head**). The diagram below is this checkpoint, with its own numbers; the other pages "
    "open each box."
)
show_drawing(block_diagram(facts.diagram_labels(config)), key="model.diagram",
             alt=f"Block diagram: embedding, {config.num_hidden_layers} decoder blocks of RMSNorm, self-attention, "
                 "RMSNorm and SwiGLU MLP on the residual stream, final RMSNorm, LM head")

col_config, col_params = st.columns([3, 2])
with col_config:
    st.subheader("Configuration")
    rows = facts.config_rows(config)
    st.dataframe(pd.DataFrame(rows), hide_index=True, height=35 * (len(rows) + 1) + 3,  # every row, no scrolling
                 column_config=dict(setting=st.column_config.TextColumn(width=190),
                                    value=st.column_config.TextColumn(width="small"),
                                    meaning=st.column_config.TextColumn(width="large")))
with col_params:
    st.subheader("Parameters")
    counts = facts.parameter_counts(session.model)
    show(parameter_bar(list(counts), list(counts.values())), key="model.parameters")
    st.caption("Biases count with their projection. A tied LM head reuses the embedding matrix, so it adds nothing.")

st.subheader("The prompt as tokens")
generated = len(session.ids) - session.prompt_length
st.markdown(f"The tokenizer cut the prompt into **{session.prompt_length} tokens**"
            + (f", followed by **{generated} generated tokens** (from the Generate page)." if generated else ".")
            + " The model only ever sees the ids; ␣ marks a space.")
st.html(token_chips(session.tokens, session.prompt_length))
with st.expander(f"Every token with its id ({len(session.ids):,})", icon=":material/table:"):
    # One row per token: a long prompt scrolls down instead of growing thousands of columns.
    st.dataframe(pd.DataFrame({"token": session.tokens, "id": session.ids},
                              index=pd.RangeIndex(len(session.ids), name="position")),
                 height=min(400, 35 * (len(session.ids) + 1) + 3))

logits = session.trace().last_logits


@st.fragment
def next_token() -> None:
    st.subheader("What comes next?")
    st.markdown("The LM head gives a score to every token of the vocabulary; softmax turns the scores into "
                "probabilities. These are the most likely tokens to follow the last one.")
    remember("view.model.top_k", range(1, min(50, config.vocab_size) + 1), 10)
    k = st.slider("Number of candidates shown (k)", 1, min(50, config.vocab_size), key="view.model.top_k")
    ids, probs = facts.top_next_tokens(logits, k)
    show(top_k_bar(session.tokenizer.tokens(ids), probs, position_token=session.tokens[-1]), key="model.next_token")


@st.fragment
def kv_cache() -> None:
    st.subheader("KV-cache memory")
    st.markdown(
        "While generating, the model keeps every earlier token's keys and values so it does not recompute them: the "
        "**KV cache**. It grows with every token. Grouped-query attention (GQA) lets several query heads share one "
        "key/value head, and multi-query attention (MQA) lets all of them share a single one, which shrinks the cache "
        "compared with classic multi-head attention (MHA)."
    )
    if st.session_state.get("kv_calculator_model") != session.choice.source:  # a new model: start from its context
        st.session_state["kv_calculator_model"] = session.choice.source
        st.session_state.pop("view.model.kv_tokens", None)
        st.session_state.pop("view.model.kv_dtype", None)
    remember("view.model.kv_tokens", range(1, 2**53), config.max_position_embeddings)  # what number_input takes
    remember("view.model.kv_dtype", list(facts.BYTES_PER_VALUE),
             config.dtype if config.dtype in facts.BYTES_PER_VALUE else "bfloat16")
    remember("view.model.kv_batch", range(1, 2**53), 1)
    col_tokens, col_dtype, col_batch = st.columns(3)
    tokens = col_tokens.number_input("Tokens cached per sequence", min_value=1, step=256, key="view.model.kv_tokens",
                                     help=f"This model's context length is {config.max_position_embeddings:,}.")
    dtype = col_dtype.selectbox("Stored as", list(facts.BYTES_PER_VALUE), key="view.model.kv_dtype")
    batch = col_batch.number_input("Sequences (batch)", min_value=1, key="view.model.kv_batch")
    bytes_per_value = facts.BYTES_PER_VALUE[dtype]
    rows = facts.kv_cache_variants(config, tokens, bytes_per_value, batch)
    show(kv_cache_bar([r["label"] for r in rows], [r["bytes"] for r in rows],
                      [facts.format_bytes(r["bytes"]) for r in rows], [r["this_model"] for r in rows],
                      subtitle=f"{tokens:,} tokens × {batch} sequence{'s' * (batch > 1)}, {dtype}"),
         key="model.kv_cache")
    mine = next(r["bytes"] for r in rows if r["this_model"])
    weights = sum(counts.values()) * bytes_per_value
    st.markdown(
        f"bytes = 2 (a key and a value) · {config.num_hidden_layers} layers · {config.num_key_value_heads} KV "
        f"heads · {config.head_dim} head_dim · {tokens:,} tokens · {bytes_per_value} bytes · {batch} = "
        f"**{mine:,} bytes ({facts.format_bytes(mine)})**. For comparison, the weights take "
        f"{facts.format_bytes(weights)} in {dtype}."
    )


next_token()
kv_cache()
