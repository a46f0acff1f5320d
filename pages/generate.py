"""Generate: let the model continue the prompt, then inspect prompt + continuation on every page."""

from html import escape

import streamlit as st
import torch

from explorer.app_state import as_text, current, remember
from explorer.compute import COMPUTE
from model import ModelError

session = current()
config = session.model.config
prompt_ids = session.ids[: session.prompt_length]
# One press generates at most MAX_NEW_TOKENS: a shared server's compute queue is not held for minutes, nor a KV cache
# for the whole context allocated (40,940 tokens of Qwen3-0.6B's context: 9 GB).
MAX_NEW_TOKENS = 512
context_room = config.max_position_embeddings - len(prompt_ids)
room = min(context_room, MAX_NEW_TOKENS)


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
    settings = dict(temperature=temperature, top_k=top_k or None, top_p=top_p if top_p < 1 else None, seed=seed)
    live = st.empty()

    def show_so_far(tokens: torch.Tensor) -> None:
        # Each new token redraws the text. A press elsewhere on the page reruns the script, and Streamlit then
        # raises inside this call: generation stops there and the compute queue is freed.
        live.html(text_box(*prompt_and_continuation(tokens[0].tolist(), len(prompt_ids))))

    try:
        with st.spinner(f"Generating up to {max_new_tokens} tokens…"), COMPUTE.slot():
            full = session.model.generate(torch.tensor([prompt_ids]), int(max_new_tokens), on_token=show_so_far,
                                          **(settings if sampling else {}))
    except ModelError as e:
        st.error(f"Generation failed: {as_text(str(e))}")
        st.stop()
    st.session_state["generated"] = {"prompt": session.prompt, "choice": session.choice, "ids": full[0].tolist()}
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
               f"{stopped} Every page now inspects these {len(session.ids)} tokens.")
else:
    st.markdown("No continuation yet: choose the settings and press **Generate**.")
