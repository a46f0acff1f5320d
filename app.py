"""Modern Blocks Explorer: `streamlit run app.py`. The router: page config, the shared sidebar, navigation.

Streamlit runs this file twice over. As a module it defines `app`, which `streamlit run` finds and serves: its
lifespan warms the server up before the first visitor. As each session's script (`__main__`) it routes the page.
"""

import json
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st
from streamlit.logger import get_logger

from explorer.app_state import (CONTINUATION, CONTINUATION_FROM, DEEP_LINK, EXPORTED_FROM, OTHER_SOURCE, PAGE_TRACES,
                                PENDING_CONTINUATION, PRESENTER, ROUTER_RAN, as_text, continuation_settings,
                                copy_link_button, export_traces, report_queue, source_options, take_link_values,
                                typed_source, view_params)
from explorer import presenter
from explorer.serving import CONFIG, EXAMPLE_PROMPTS, devices, warm_up
from explorer.site_map import CLASS_PAGE, PAGE_NAMES, PAGES
from explorer.workshop import QUERY_PARAMETER, LinkError, Workshop, open_token
from model import ModelError


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

WORKSHOP_TOKEN = "_workshop_token"


def open_workshop() -> Workshop | None:
    """The workshop link this browser session was opened with, checked on every run: a link can expire while a class
    works. Shows why and stops the page for a link that cannot be used."""
    token = st.session_state.setdefault(WORKSHOP_TOKEN, st.query_params.get(QUERY_PARAMETER))
    if token is None:
        return None
    try:
        if not CONFIG.link_secret:
            raise LinkError("This server does not use workshop links: open its address without the link's part "
                            "after the \"?\".")
        return open_token(token, CONFIG.link_secret)
    except LinkError as e:
        st.error(str(e), icon=":material/link_off:")  # our own words: no user text in them
        st.stop()


def sections(workshop: Workshop | None) -> tuple[dict[str, list], str]:
    """The navigation: the pages the workshop link or the server's configuration shows, the first of a workshop's
    pages its landing page; the Workshop links page for the teacher where the configuration has a link secret. And
    the landing page's name, which its address (the server's root) leaves out."""
    allowed = [name for name in PAGE_NAMES if name in (CONFIG.pages or PAGE_NAMES)]
    if workshop:  # within what the configuration shows now: it may have changed since the link was made
        shown = [name for name in workshop.pages if name in allowed] or allowed[:1]
    elif CONFIG.links_required:
        shown = []  # students need a link; the teacher makes them on the Workshop links page
    else:
        shown = allowed
    pages = {}
    for info in sorted((p for p in PAGES if p.name in shown), key=lambda p: shown.index(p.name)):
        page = st.Page(info.script, title=info.title, icon=info.icon, default=info.name == shown[0])
        pages.setdefault(info.section, []).append(page)
    if CONFIG.link_secret and not workshop:
        pages[CLASS_PAGE.section] = [st.Page(CLASS_PAGE.script, title=CLASS_PAGE.title, icon=CLASS_PAGE.icon,
                                             default=not shown)]
    return pages, shown[0] if shown else CLASS_PAGE.name


def restore_from_link(page_path: str, workshop: Workshop | None) -> None:
    """Once per browser session: model, prompt, presenter mode and the page's controls from the URL a teacher shared
    (a workshop link's model and prompt first; the prompt a student has since typed, kept in the URL, wins on reload).
    The controls' values wait for the page's remember(), which keeps only valid ones."""
    if st.session_state.get("_link_restored"):
        return
    st.session_state["_link_restored"] = True
    params = st.query_params
    if workshop:
        st.session_state.model_choice = workshop.model
        st.session_state.prompt = workshop.prompt
    elif "model" in params:
        source = params["model"]
        if source in CONFIG.choices():
            st.session_state.model_choice = source
        elif CONFIG.typed:
            st.session_state.model_choice, st.session_state.model_custom = OTHER_SOURCE, source
        else:
            st.toast(f"This server does not offer {as_text(source)}: showing {as_text(CONFIG.default_model)}.",
                     icon=":material/info:")
    if "prompt" in params:
        st.session_state.prompt = params["prompt"]
    st.session_state[PRESENTER] = params.get(PRESENTER) == "1"  # a projector link opens in presenter mode
    settings = continuation_settings(params.get(CONTINUATION, ""))
    if settings:  # generated again by the first page that reads the prompt
        st.session_state[PENDING_CONTINUATION] = settings
    take_link_values(page_path, {name: value for name, value in params.items() if name not in SESSION_PARAMS})


SESSION_PARAMS = (QUERY_PARAMETER, "model", "prompt", PRESENTER, CONTINUATION)  # the rest: the page's controls


def link_params(page_path: str) -> dict[str, str]:
    """The query parameters that reproduce what this session shows now."""
    workshop = st.session_state.get(WORKSHOP_TOKEN)
    generated = st.session_state.get("generated")
    continued = (generated and generated["prompt"] == st.session_state.get("prompt")
                 and generated["choice"].source == st.session_state.model_source)
    return {**({QUERY_PARAMETER: workshop} if workshop else {}), "model": st.session_state.model_source,
            "prompt": st.session_state.get("prompt", ""),
            **({CONTINUATION: json.dumps(generated["settings"], separators=(",", ":"))} if continued else {}),
            **view_params(page_path), **({PRESENTER: "1"} if st.session_state.get(PRESENTER) else {})}


def use_example() -> None:
    st.session_state.prompt = st.session_state.example


SIDEBAR_KEYS = ("model_choice", "model_custom", "device", "dtype", "prompt", PRESENTER)  # the HF token: not kept longer


def sidebar(workshop: Workshop | None) -> None:
    st.header("Model")
    options = [workshop.model] if workshop else source_options()
    if st.session_state.get("model_choice") not in options:
        st.session_state.model_choice = options[0]
    choice = st.selectbox("Checkpoint", options, key="model_choice")
    if choice == OTHER_SOURCE:
        custom = typed_source(st, "Hub repo id or local folder", "model_custom")
        st.text_input("HF token (gated models only)", key="hf_token", type="password",
                      help="Used for this download only; never shown, logged or saved by the app.")
        st.session_state.model_source = custom or options[0]
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
    st.toggle("Presenter mode", key=PRESENTER, help="Slides for a projector: one figure at a time, large fonts, the "
              "sidebar tucked away; PageDown and PageUp (a clicker's keys) step through figures and pages.")
    copy_link_button()


def route() -> None:
    """One run of a session's script: the page config, the sidebar (or presenter mode), then the chosen page."""
    # The icon is an emoji, drawn by the browser: a material icon here would be fetched from the internet.
    st.set_page_config(page_title="Modern Blocks Explorer", page_icon="🔍", layout="wide")

    # Streamlit forgets a widget's value when its page is not shown; re-assigning keeps page controls (keys "view.*")
    # as the user left them when they come back to a page, and the sidebar's when presenter mode's Next switches page.
    for key in [k for k in st.session_state if str(k).startswith("view.") or k in SIDEBAR_KEYS]:
        st.session_state[key] = st.session_state[key]

    workshop = open_workshop()
    pages, landing = sections(workshop)
    all_pages = [page for section in pages.values() for page in section]
    selected = st.navigation(pages, expanded=True)  # every page: past 12 Streamlit would hide some behind "View more"
    # A page URL that was the server's very first request comes back here as a deep link (see explorer/app_state.py).
    deep_link = st.session_state.pop(DEEP_LINK, None)
    target = next((p for p in all_pages if deep_link and p.url_path == deep_link), selected)
    page_name = target.url_path or landing  # as in the page's "view.<page>.*" keys
    restore_from_link(page_name, workshop)
    presenting = st.session_state.get(PRESENTER)
    page_names = [page.url_path or landing for page in all_pages]
    switch = presenting and presenter.take_switch()  # Next past a page's last figure: the next page (see below)
    if switch and switch != page_name:
        target = all_pages[page_names.index(switch)]
    if presenting:
        # The sidebar is hidden, not left out: a widget that is not drawn loses its value in the browser, and turning
        # presenter mode off then showed an empty prompt.
        st.html(presenter.STYLE)
        slides_bar = st.container()
        presenter.start_run(page_name)
    with st.sidebar:
        sidebar(workshop)

    st.query_params.from_dict(link_params(page_name))
    report_queue()
    st.session_state[ROUTER_RAN] = True
    st.session_state[PAGE_TRACES] = {}
    for per_run in (CONTINUATION_FROM, EXPORTED_FROM):  # current() sets them again for the page it serves
        st.session_state.pop(per_run, None)
    if target.url_path != selected.url_path:
        st.switch_page(target, query_params=st.query_params.to_dict())
    selected.run()
    if presenting:
        presenter.navigation(slides_bar, page_name, page_names)
    with st.sidebar:
        export_traces()


if __name__ == "__main__":  # a session's run; not the module that `streamlit run` imports to find `app`
    route()
