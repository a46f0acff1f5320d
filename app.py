"""Modern Blocks Explorer: `streamlit run app.py`. The router: page config, the shared sidebar, navigation."""

import streamlit as st
import torch

from explorer.app_state import DEEP_LINK, ROUTER_RAN
from model import DEFAULT_MODEL, bundled_models

EXAMPLE_PROMPTS = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside.",
    "Tom and Sam went to the park. Tom had a red ball. Sam said, \"Can I play with your ball?\"",
    "The cat sat on the mat. The dog sat on the log. The cat",
    "One day, a big dog saw a small bird in the tree. The dog wanted to",
]
OTHER_SOURCE = "Hub repo id or local folder…"
PAGES = [
    st.Page("pages/model.py", title="Model", icon=":material/account_tree:", default=True),
    st.Page("pages/attention.py", title="Attention", icon=":material/grid_on:"),
    st.Page("pages/rope.py", title="RoPE", icon=":material/rotate_right:"),
    st.Page("pages/norms.py", title="Norms", icon=":material/equalizer:"),
    st.Page("pages/swiglu.py", title="SwiGLU", icon=":material/call_split:"),
    st.Page("pages/logit_lens.py", title="Logit lens", icon=":material/visibility:"),
    st.Page("pages/generate.py", title="Generate", icon=":material/edit_note:"),
]

st.set_page_config(page_title="Modern Blocks Explorer", page_icon=":material/neurology:", layout="wide")

# Streamlit forgets a widget's value when its page is not shown; re-assigning keeps page controls (keys "view.*")
# as the user left them when they come back to a page.
for key in [k for k in st.session_state if str(k).startswith("view.")]:
    st.session_state[key] = st.session_state[key]


def devices() -> list[str]:
    found = ["cpu"]
    if torch.cuda.is_available():
        found.insert(0, "cuda")
    if torch.backends.mps.is_available():
        found.insert(0, "mps")
    return found


def use_example() -> None:
    st.session_state.prompt = st.session_state.example


with st.sidebar:
    st.header("Model")
    choice = st.selectbox("Checkpoint", [*bundled_models(), OTHER_SOURCE], key="model_choice",
                          index=bundled_models().index(DEFAULT_MODEL))
    if choice == OTHER_SOURCE:
        custom = st.text_input("Hub repo id or local folder", key="model_custom",
                               placeholder="Qwen/Qwen3-0.6B or /path/to/folder")
        st.text_input("HF token (gated models only)", key="hf_token", type="password",
                      help="Used for this download only; never shown, logged or saved by the app.")
        st.session_state.model_source = custom.strip() or DEFAULT_MODEL
    else:
        st.session_state.model_source = choice
    col_device, col_dtype = st.columns(2)
    col_device.selectbox("Device", devices(), key="device")
    col_dtype.selectbox("dtype", ["auto", "float32", "bfloat16", "float16"], key="dtype",
                        help="auto: the checkpoint's dtype on a GPU, float32 on a CPU.")

    st.header("Prompt")
    st.session_state.setdefault("prompt", EXAMPLE_PROMPTS[0])
    st.text_area("Prompt", key="prompt", height=120, label_visibility="collapsed")
    st.selectbox("Examples", EXAMPLE_PROMPTS, index=None, key="example", placeholder="Try an example…",
                 on_change=use_example, label_visibility="collapsed")

st.session_state[ROUTER_RAN] = True
selected = st.navigation(PAGES)
deep_link = st.session_state.pop(DEEP_LINK, None)
if deep_link:  # a page URL that was the server's very first request (see explorer/app_state.py)
    target = next((p for p in PAGES if p.url_path == deep_link), None)
    if target is not None and target.url_path != selected.url_path:
        st.switch_page(target)
selected.run()
