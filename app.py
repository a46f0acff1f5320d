"""Modern Blocks Explorer: `streamlit run app.py`. The router: page config, the shared sidebar, navigation.

Streamlit runs this file twice over. As a module it defines `app`, which `streamlit run` finds and serves: its
lifespan warms the server up before the first visitor. As each session's script (`__main__`) it routes the page.
"""

import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st
from streamlit.logger import get_logger

from explorer.app_state import (DEEP_LINK, PAGE_TRACES, PRESENTER, ROUTER_RAN, VIEW_PARAMS, as_text,
                                export_traces, report_queue, view_params)
from explorer.serving import EXAMPLE_PROMPTS, devices, warm_up
from model import DEFAULT_MODEL, ModelError, bundled_models


@asynccontextmanager
async def warm_start(_app):
    """Load the default model and run the default prompt in the background while the server starts answering (its
    health check included), so that the first visitor's first chart needs neither."""
    threading.Thread(target=warm_up_server, name="warm-up", daemon=True).start()
    yield


def warm_up_server() -> None:
    started = time.perf_counter()
    warm_up()
    import streamlit.emojis  # noqa: F401  set_page_config's emoji check compiles this module's regex: 0.7 s, once

    get_logger(__name__).info("Warm: the default model and prompt are ready (%.1f s).", time.perf_counter() - started)


def explain_script_error(error: Exception) -> bool:
    """The page boundary: an error no page caught is shown as one plain sentence, never as a traceback that would
    show server paths to every visitor (Streamlit has already logged it, with its traceback, on the server)."""
    if isinstance(error, ModelError):  # written for the reader: say it
        st.error(as_text(str(error)))
    else:
        st.error(f"Something went wrong on this page ({type(error).__name__}); the server's log has the details. "
                 "Another prompt or model, or reloading the page, usually gets past it.", icon=":material/error:")
    return True  # and no traceback


app = st.App(Path(__file__).name, lifespan=warm_start, on_script_error=explain_script_error)

OTHER_SOURCE = "Hub repo id or local folder…"


def sections() -> dict[str, list]:
    """The navigation's sections; each lesson is a page of its own, so a teacher can share its address."""
    return {
        "Explore": [
            st.Page("pages/model.py", title="Model", icon=":material/account_tree:", default=True),
            st.Page("pages/attention.py", title="Attention", icon=":material/grid_on:"),
            st.Page("pages/rope.py", title="RoPE", icon=":material/rotate_right:"),
            st.Page("pages/norms.py", title="Norms", icon=":material/equalizer:"),
            st.Page("pages/swiglu.py", title="SwiGLU", icon=":material/call_split:"),
            st.Page("pages/logit_lens.py", title="Logit lens", icon=":material/visibility:"),
            st.Page("pages/generate.py", title="Generate", icon=":material/edit_note:"),
            st.Page("pages/compare.py", title="Llama vs Qwen3", icon=":material/compare:"),
            st.Page("pages/lab.py", title="Stability lab", icon=":material/science:"),
        ],
        "Classroom": [
            st.Page("pages/lesson_rmsnorm.py", title="RMSNorm vs LayerNorm", icon=":material/timer:"),
            st.Page("pages/lesson_kv_cache.py", title="KV-cache memory", icon=":material/memory:"),
            st.Page("pages/lesson_swiglu.py", title="SwiGLU", icon=":material/call_split:"),
            st.Page("pages/lesson_rope.py", title="RoPE", icon=":material/rotate_right:"),
            st.Page("pages/lesson_gqa.py", title="GQA", icon=":material/grid_on:"),
            st.Page("pages/lesson_qk_norm.py", title="QK-norm", icon=":material/straighten:"),
        ],
    }


def restore_from_link(page_path: str) -> None:
    """Once per browser session: model, prompt and the page's layer/head/token from the URL a teacher shared."""
    if st.session_state.get("_link_restored"):
        return
    st.session_state["_link_restored"] = True
    params = st.query_params
    if "model" in params:
        source = params["model"]
        st.session_state.model_choice = source if source in bundled_models() else OTHER_SOURCE
        st.session_state.model_custom = "" if source in bundled_models() else source
    if "prompt" in params:
        st.session_state.prompt = params["prompt"]
    for name in VIEW_PARAMS:
        value = params.get(name, "")
        if value.isascii() and value.isdigit():  # str.isdigit() alone accepts "²", which int() refuses
            st.session_state[f"view.{page_path}.{name}"] = int(value)


def link_params(page_path: str) -> dict[str, str]:
    """The query parameters that reproduce what this session shows now."""
    return {"model": st.session_state.model_source, "prompt": st.session_state.get("prompt", ""),
            **view_params(page_path)}


def use_example() -> None:
    st.session_state.prompt = st.session_state.example


def sidebar() -> None:
    st.header("Model")
    st.session_state.setdefault("model_choice", DEFAULT_MODEL)
    choice = st.selectbox("Checkpoint", [*bundled_models(), OTHER_SOURCE], key="model_choice")
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
    st.toggle("Presenter mode", key=PRESENTER, help="Large fonts, full-screen charts, the sidebar tucked away.")


def route() -> None:
    """One run of a session's script: the page config, the sidebar (or presenter mode), then the chosen page."""
    # The icon is an emoji, drawn by the browser: a material icon here would be fetched from the internet.
    st.set_page_config(page_title="Modern Blocks Explorer", page_icon="🔍", layout="wide")

    # Streamlit forgets a widget's value when its page is not shown; re-assigning keeps page controls (keys "view.*")
    # as the user left them when they come back to a page.
    for key in [k for k in st.session_state if str(k).startswith("view.")]:
        st.session_state[key] = st.session_state[key]

    pages = sections()
    all_pages = [page for section in pages.values() for page in section]
    selected = st.navigation(pages, expanded=True)  # all 15 pages: past 12 Streamlit would hide some behind "View more"
    # A page URL that was the server's very first request comes back here as a deep link (see explorer/app_state.py).
    deep_link = st.session_state.pop(DEEP_LINK, None)
    target = next((p for p in all_pages if deep_link and p.url_path == deep_link), selected)
    restore_from_link(target.url_path)
    if st.session_state.get(PRESENTER):
        # The sidebar is hidden, not left out: a widget that is not drawn loses its value in the browser, and turning
        # presenter mode off then showed an empty prompt.
        st.button("Leave presenter mode", icon=":material/close_fullscreen:", key="presenter_exit",
                  on_click=lambda: st.session_state.update({PRESENTER: False}))
        st.html("<style>section[data-testid='stSidebar'], header[data-testid='stHeader'] {display: none;}"
                " html {font-size: 20px;}</style>")
    with st.sidebar:
        sidebar()

    st.query_params.from_dict(link_params(target.url_path))
    report_queue()
    st.session_state[ROUTER_RAN] = True
    st.session_state[PAGE_TRACES] = {}
    if target.url_path != selected.url_path:
        st.switch_page(target, query_params=st.query_params.to_dict())
    selected.run()
    with st.sidebar:
        export_traces()


if __name__ == "__main__":  # a session's run; not the module that `streamlit run` imports to find `app`
    route()
