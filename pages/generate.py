"""Generate: let the model continue the prompt, then inspect prompt + continuation on every page."""

from html import escape

import streamlit as st
import torch

from explorer.analysis.generation import kv_cache_growth, traced_steps
from explorer.analysis.model_facts import format_bytes, kv_cache_bytes
from explorer.app_state import MAX_NEW_TOKENS, as_text, current, generate, remember, show
from explorer.figures.common import axis_labels
from explorer.figures.generation import kv_growth_chart, steps_chart
from model import ModelError

session = current()
config = session.model.config
prompt_ids = session.ids[: session.prompt_length]
# One press generates at most MAX_NEW_TOKENS: a shared server's compute queue is not held for minutes, nor a KV cache
# for the whole context allocated (40,940 tokens of Qwen3-0.6B's context: 9 GB).
context_room = config.max_position_embeddings - len(prompt_ids)
STEPS_SHOWN = 64  # rows of the step-by-step chart at a time
room = min(context_room, MAX_NEW_TOKENS)
value_bytes = session.model.dtype.itemsize
kv_per_position = kv_cache_bytes(config.num_hidden_layers, config.num_key_value_heads, config.head_dim, 1, value_bytes)


def text_box(prompt_text: str, continuation_text: str) -> str:
    """The prompt, then the continuation highlighted, as HTML for st.html: the text is shown as typed, its Markdown
    (a link, an image) never rendered."""
    return ('<div style="white-space: pre-wrap; line-height: 1.7; padding: 0.75rem 1rem; border: 1px solid #dee2e6; '
            f'border-radius: 0.5rem">{escape(prompt_text)}<mark style="background: #d0ebff; padding: 0.1rem 0">'
            f"{escape(continuation_text)}</mark></div>")


def prompt_and_continuation(ids: list[int], prompt_length: int) -> tuple[str, str]:
    """The decoded prompt and the text the new tokens add to it (decoding the whole keeps spacing right)."""
    prompt_text, full_text = session.tokenizer.decode(ids[:prompt_length]), session.tokenizer.decode(ids)
    if full_text.startswith(prompt_text):
        return prompt_text, full_text[len(prompt_text):]
    return prompt_text, session.tokenizer.decode(ids[prompt_length:])


st.title("Generate")
st.markdown(
    "A language model writes one token at a time: it predicts a probability for every next token, picks one, "
    "appends it and repeats, keeping earlier keys and values in a KV cache so each step only processes the new "
    "token. **Temperature** 0 always picks the most likely token (greedy); higher temperatures sample more "
    "adventurously, and **top-k** / **top-p** restrict the sample to the most likely candidates. The **seed** makes "
    "a sampled continuation repeatable."
)
st.info(
    "After you press **Generate**, every other page (attention, norms, logit lens…) inspects the prompt *plus* "
    "the continuation, as one sequence. **Clear continuation** goes back to the prompt alone; changing the prompt "
    "or the model does too. The model only runs again when you press Generate."
)
if room <= 0:
    st.error(f"The prompt already fills this model's context of {config.max_position_embeddings:,} tokens: shorten "
             "it in the sidebar to leave room for new tokens.")
    st.stop()

# Each within what its widget accepts (a kept value may exceed another model's limits), and so also carried by links.
remember("view.generate.max_new_tokens", range(1, room + 1), min(40, room))
remember("view.generate.top_k", range(config.vocab_size + 1), 0)
remember("view.generate.seed", range(2**31), 0)
NOTCHES = [round(0.05 * i, 2) for i in range(41)]  # 0 to 2 in steps of 0.05: the float sliders' values
remember("view.generate.temperature", NOTCHES, 0.0)
remember("view.generate.top_p", NOTCHES[1:21], 1.0)

col_tokens, col_temperature, col_top_k, col_top_p, col_seed = st.columns(5)
max_new_tokens = col_tokens.number_input("New tokens (at most)", min_value=1, max_value=room,
                                         key="view.generate.max_new_tokens",
                                         help=f"At most {room:,}: {MAX_NEW_TOKENS} per press, and no more than "
                                              f"the context has room for ({context_room:,} tokens).")
temperature = col_temperature.slider("Temperature", 0.0, 2.0, step=0.05, key="view.generate.temperature",
                                     help="0 = greedy: always the most likely token.")
sampling = temperature > 0
top_k = col_top_k.number_input("Top-k (0 = off)", min_value=0, max_value=config.vocab_size, key="view.generate.top_k",
                               disabled=not sampling, help="Sample only among the k most likely tokens.")
top_p = col_top_p.slider("Top-p (1 = off)", 0.05, 1.0, step=0.05, key="view.generate.top_p", disabled=not sampling,
                         help="Sample only among the most likely tokens whose probabilities add up to p.")
seed = col_seed.number_input("Seed", min_value=0, max_value=2**31 - 1, key="view.generate.seed",
                             disabled=not sampling)

has_continuation = len(session.ids) > session.prompt_length
col_generate, col_clear, _ = st.columns([1, 1, 4])
if col_generate.button("Generate", type="primary", key="generate"):
    settings = dict(n=int(max_new_tokens), temperature=temperature, top_k=int(top_k), top_p=top_p, seed=int(seed))
    live, progress = st.empty(), st.empty()

    def show_so_far(tokens: torch.Tensor) -> None:
        # Each new token redraws the text. A press elsewhere on the page reruns the script, and Streamlit then
        # raises inside this call: generation stops there and the compute queue is freed.
        live.html(text_box(*prompt_and_continuation(tokens[0].tolist(), len(prompt_ids))))
        step = tokens.shape[1] - len(prompt_ids)
        cached = tokens.shape[1] - 1  # every token but the newest has been through the model
        progress.caption(f"Token {step} of at most {max_new_tokens} · KV cache: {cached:,} positions, "
                         f"{format_bytes(cached * kv_per_position)}")

    try:
        with st.spinner(f"Generating up to {max_new_tokens} tokens…"):
            full = generate(session.model, prompt_ids, settings, on_token=show_so_far)
    except ModelError as e:
        st.error(f"Generation failed: {as_text(str(e))}")
        st.stop()
    # The settings reproduce the continuation: links carry them, and a link's opener generates it again.
    st.session_state["generated"] = {"prompt": session.prompt, "choice": session.choice, "ids": full,
                                     "settings": settings}
    st.rerun()  # so that this page, like every other, reads the new sequence through current()
col_clear.button("Clear continuation", key="clear_generated", disabled=not has_continuation,
                 on_click=lambda: st.session_state.pop("generated", None))


if has_continuation:
    new_ids = session.ids[session.prompt_length:]
    prompt_text, continuation_text = prompt_and_continuation(session.ids, session.prompt_length)
    st.subheader("Prompt and continuation")
    st.html(text_box(prompt_text, continuation_text))
    stopped = " It stopped at the end-of-sequence token." if new_ids[-1] in config.eos_token_ids else ""
    st.caption(f"Highlighted: {len(new_ids)} generated tokens after the {session.prompt_length}-token prompt."
               f"{stopped} Every page now inspects these {len(session.ids)} tokens, a dashed red line on its "
               "heatmaps where the continuation begins.")

    st.subheader("Step by step")
    steps = traced_steps(session.trace(), session.prompt_length)
    top_choices = sum(s.rank == 1 for s in steps)
    st.markdown(
        f"At each step the model gave every token of its vocabulary a probability. It wrote its most likely token "
        f"at **{top_choices} of {len(steps)}** steps"
        + (" (greedy decoding always does)." if top_choices == len(steps) else
           "; at the others, sampling picked a less likely one (orange).")
        + " Probabilities are the model's own, before temperature, top-k or top-p reshaped them for sampling; they "
          "come from one forward over the whole text, which computes what each step computed with its KV cache.")
    shown = steps
    if len(steps) > STEPS_SHOWN:  # one row per token: a long continuation is read a window at a time
        remember("view.generate.first_step", range(len(steps) - STEPS_SHOWN + 1), 0)
        first = st.slider(f"First generated token shown ({STEPS_SHOWN} at a time)", 0, len(steps) - STEPS_SHOWN,
                          key="view.generate.first_step")
        shown = steps[first: first + STEPS_SHOWN]
    show(steps_chart(shown, lambda token: session.tokenizer.tokens([token])[0]), key="generate.steps")
    growth = kv_cache_growth(config, session.prompt_length, len(steps), value_bytes)
    labels = axis_labels([session.tokens[s.position] for s in steps], first=session.prompt_length)
    show(kv_growth_chart(growth, session.prompt_length, labels, kv_per_position), key="generate.kv_cache")
    st.caption(f"To choose each token the model reads the keys and values of every position before it: "
               f"{format_bytes(growth[0])} for the prompt's {session.prompt_length} positions, then "
               f"{format_bytes(kv_per_position)} more per generated token (2 · {config.num_hidden_layers} layers · "
               f"{config.num_key_value_heads} KV heads · {config.head_dim} head_dim · {value_bytes} bytes of "
               f"{session.model.dtype}). Without the cache, each step would run every earlier token through the model "
               "again.")
else:
    st.markdown("No continuation yet: choose the settings and press **Generate**.")
