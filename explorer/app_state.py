"""What every page needs from the shared sidebar: the loaded model, the tokenized prompt, and its shared trace.

With explorer/lesson_ui.py (the lesson pages' helpers), the only module of explorer/ that talks to Streamlit. Models
and traces live in explorer/serving.py's server-wide caches: one copy per distinct request, shared read-only by every
browser session; each session's prompt and edits live in its own st.session_state, so sessions never see each
other's inputs.
"""

import base64
import html
import json
import re
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlparse

import streamlit as st
import torch

from model import Decoder, ModelError, Tokenizer

from .compute import COMPUTE
from .edits import Edits
from . import presenter
from .export import figure_csv, figure_html
from .figures.common import mark_continuation
from .presenter import PRESENTER
from .prompt_trace import PromptTrace
from .serving import CONFIG, DEFAULT_CHOICE, MODELS, ModelChoice, prompt_trace

OTHER_SOURCE = "Hub repo id or local folder…"  # the model menus' entry for typing a source


def source_options() -> list[str]:
    """A model menu's entries: the sources this server offers, and a typed one where its configuration allows."""
    return [*CONFIG.choices(), *([OTHER_SOURCE] if CONFIG.typed else [])]


def typed_source(where, label: str, key: str) -> str:
    """A text box for a source of the visitor's own; what a configured server accepts is its configuration's."""
    example = "Qwen/Qwen3-0.6B or /path/to/folder" if CONFIG.is_open else "a Hub repo id or a model folder's name"
    return where.text_input(label, key=key, placeholder=example).strip()


def load(choice: ModelChoice, token: str | None = None) -> tuple[Decoder, Tokenizer]:
    """The model and tokenizer, with a progress bar while a Hub download runs. Raises ModelError."""
    bar = st.empty()

    def progress(done: int, total: int) -> None:
        if total:
            bar.progress(min(done / total, 1.0), text=f"Downloading {as_text(choice.source)}: {done / 2**20:.0f} of "
                                                      f"{total / 2**20:.0f} MiB")

    try:
        with st.spinner(f"Loading {as_text(choice.source)}…"):
            return MODELS.get(choice, token, progress)
    finally:
        bar.empty()


_MARKDOWN_SYNTAX = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")
_AUTOLINK = re.compile(r"(?i)\b(https?|ftp|www)")


def as_text(text: str) -> str:
    """`text` that a user or a shared link supplied (a model name, a prompt, an error quoting them), escaped for
    Streamlit's Markdown elements so that it shows as typed: `[x](https://…)` or `![t](http://…)` stays characters,
    never a live link or an image every viewer's browser fetches. Streamlit also turns bare addresses into links
    after parsing, escapes or not: a zero-width space after "http", "ftp" or "www" keeps them plain text."""
    return _AUTOLINK.sub("\\1\u200b", _MARKDOWN_SYNTAX.sub(r"\\\1", text))


@dataclass
class Session:
    """The current page's view of the app: model, tokenizer and the token ids of the prompt."""

    model: Decoder
    tokenizer: Tokenizer
    choice: ModelChoice
    prompt: str
    ids: list[int]
    prompt_length: int  # len(ids) unless a generated continuation follows the prompt

    @cached_property
    def tokens(self) -> list[str]:
        """The ids as readable tokens, made once per run: a page may index this list thousands of times (a
        selectbox's labels), and converting the whole prompt each time made the Logit lens take minutes at 8k."""
        return self.tokenizer.tokens(self.ids)

    def trace(self, edits: Edits | None = None) -> PromptTrace:
        """The shared trace of the current ids (and edits): every page reads from the same one."""
        return trace_model(self.choice, self.model, self.tokenizer, self.ids, edits)


def trace_model(choice: ModelChoice, model: Decoder, tokenizer: Tokenizer, ids: list[int],
                edits: Edits | None = None) -> PromptTrace:
    """The shared trace of `ids` through a model loaded with `load(choice)`, its forward run (or queued) now."""
    result = prompt_trace(model, tokenizer, ids, edits)
    with st.spinner("Running the model…"):
        result.base()
    broken = result.first_nonfinite()
    if broken:
        st.warning(f"This forward produced values that are not finite numbers (NaN or ±∞), first at `{broken}`: "
                   "charts leave them out as gaps, and everything after that point is meaningless. The weights may "
                   "be broken, or the dtype too small for them (float16 overflows past 65,504): try float32.",
                   icon=":material/warning:")
    label = choice.source + (f" with {edits}" if edits else "")
    st.session_state.setdefault(PAGE_TRACES, {})[label] = result
    return result


def query_window(t: PromptTrace, key: str) -> tuple[int, int] | None:
    """Which queries the attention views of `t` show: None for all of them; for a prompt too long to hold one
    layer's whole matrices, (start, stop) of a window chosen with a slider, the last queries first."""
    if t.explicit:
        return None
    T, rows = len(t.tokens), t.max_query_window()
    st.info(f"At {T:,} tokens one layer's attention matrices are more than this server holds at once, so these views "
            f"show {rows:,} queries at a time, each against every key it sees. Slide to move the window.",
            icon=":material/view_week:")
    st.session_state.setdefault(key, T - rows)
    st.session_state[key] = min(st.session_state[key], T - rows)
    start = st.slider("First query shown", 0, T - rows, key=key)
    return start, start + rows


def report_queue() -> None:
    """From now on in this run, model work that must wait for other sessions' says so at the top of the page."""
    slot = st.empty()

    def on_wait(ahead: int) -> None:
        if ahead:
            slot.info(f"Queued behind {ahead} other model job{'s' * (ahead > 1)} on this server…",
                      icon=":material/hourglass_top:")
        else:
            slot.empty()

    COMPUTE.report_waits(on_wait)


# A continuation travels in links as the settings that reproduce it (greedy, or seeded sampling, is repeatable):
# {"n": new tokens, "temperature", "top_k" (0: off), "top_p" (1: off), "seed"}. The link's waits here until current().
CONTINUATION, PENDING_CONTINUATION = "continuation", "_pending_continuation"
MAX_NEW_TOKENS = 512  # per press of Generate, or per link: the compute queue is not held for minutes
PAGE_TRACES = "_page_traces"  # the traces this run of the page drew from, offered for download by app.py
CONTINUATION_FROM = "_continuation_from"  # this run's: the position of the first generated token, if any
EXPORTED_FROM = "_exported_from"  # this run's: (model, text) that the header of a CSV export names
# A page control's value in a shared link is a query parameter named after its key, "view.<page>.<name>" -> <name>.
# Values a link brings wait here until the page's remember() checks them against the control's options; controls
# that remember() guards are the ones a link carries (LINKABLE), so a crafted link can only ever pick a valid option.
LINK_VALUES, LINKABLE = "_link_values", "_linkable"


def take_link_values(page: str, params: dict[str, str]) -> None:
    """Keep the query parameters that may be this page's controls, parsed (JSON, else the text itself)."""
    st.session_state[LINK_VALUES] = {f"view.{page}.{name}": _parse(text) for name, text in params.items()}


def _parse(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _format(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def view_params(page: str) -> dict[str, str]:
    """This page's remembered controls as query parameters, as they are now."""
    prefix, linkable = f"view.{page}.", st.session_state.get(LINKABLE, set())
    return {key.removeprefix(prefix): _format(st.session_state[key]) for key in sorted(linkable)
            if key.startswith(prefix) and key in st.session_state}


def show(fig, *, key: str, container=st) -> None:
    """A chart in `container` (the page, a column, a placeholder), and under it an Export menu: the figure as
    standalone HTML and its data as CSV (whose header names what describe_exports() last said), both made only
    when clicked.

    Where the page inspects a generated continuation, a line marks where it begins on every positional heatmap.
    In presenter mode only the figure on screen is drawn (see explorer.presenter), every font in it grown and the
    chart filling the screen, for a projector at the back of a classroom.
    """
    if st.session_state.get(PRESENTER):
        if not presenter.on_slide(key):
            return
        presenter.scale_fonts(fig)
    if st.session_state.get(CONTINUATION_FROM):
        mark_continuation(fig, st.session_state[CONTINUATION_FROM])
    container.plotly_chart(fig, key=f"chart.{key}")
    with container.popover("Export", icon=":material/download:"):
        name = key.replace(".", "-")
        st.download_button("Figure (HTML)", lambda: figure_html(fig), f"{name}.html", "text/html",
                           key=f"export.html.{key}", on_click="ignore")
        model, text = st.session_state.get(EXPORTED_FROM, ("", ""))
        st.download_button("Data (CSV)", lambda: figure_csv(fig, model=model, text=text), f"{name}.csv", "text/csv",
                           key=f"export.csv.{key}", on_click="ignore")


# The address bar is the link: remember() keeps it current even after a fragment's rerun, which no element drawn by the
# full run could follow. So the button reads it in the browser. The clipboard needs a secure context (https or
# localhost); on a classroom server over plain http the link is shown selected instead, for Ctrl+C.
COPY_LINK_HTML = """<button id="copy" style="font: 14px 'Source Sans Pro', sans-serif; padding: 6px 12px;
 width: 100%; border: 1px solid rgba(49, 51, 63, 0.2); border-radius: 8px; background: white; cursor: pointer">Copy
 link to this view</button>
<input id="link" readonly aria-label="Link to this view" style="display: none; width: 95%; margin-top: 4px">
<script>
const button = document.getElementById("copy"), field = document.getElementById("link");
button.onclick = async () => {
  const link = window.parent.location.href;
  try {
    await navigator.clipboard.writeText(link);
    button.textContent = "Copied: paste it anywhere";
  } catch (error) {
    field.style.display = "block"; field.value = link; field.select();
    button.textContent = "Selected below: press Ctrl+C";
  }
};
</script>"""


def copy_link_button() -> None:
    """A button that copies the address of the view as it is now (model, prompt, every control, presenter mode)."""
    st.iframe(COPY_LINK_HTML, height=80)  # our own fixed HTML, no user text in it


def experiment_toggle(page: str, label: str) -> bool:
    """A switch that runs a page's costly experiment (a backward, an ablation), off until asked for, so opening the
    page stays instant; links carry it as run=true."""
    key = f"view.{page}.run"
    remember(key, [False, True], False)
    return st.toggle(label, key=key)


def describe_exports(model: str, text: str) -> None:
    """What the CSV exports of this run's charts say they show: current() names the sidebar's model and the text
    the page inspects; a page that draws other models' data says so itself."""
    st.session_state[EXPORTED_FROM] = (model, text)


DIAGRAM_MIN_PX = 880


def show_drawing(svg: str, *, key: str, alt: str) -> None:
    """A diagram (SVG markup) as an image, and under it an Export menu with the SVG file.

    The image fills the column but never shrinks below DIAGRAM_MIN_PX: on a narrow screen it scrolls sideways rather
    than shrinking its text below reading size."""
    url = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    st.markdown(f'<div style="overflow-x:auto"><img src="{url}" alt="{html.escape(alt)}" '
                f'style="width:100%;min-width:{DIAGRAM_MIN_PX}px"></div>', unsafe_allow_html=True)
    with st.popover("Export", icon=":material/download:"):
        st.download_button("Diagram (SVG)", svg, f"{key.replace('.', '-')}.svg", "image/svg+xml",
                           key=f"export.svg.{key}", on_click="ignore")


def remember(key: str, options, default) -> None:
    """Give a page control (key "view.*") the value a shared link brought, or else keep its remembered value, or else
    `default`: whichever is first valid among `options` (a list value, from a multiselect, must lie within them). A
    value another prompt or model made invalid falls back the same way. The control then travels in links.

    The controls themselves take no default: app.py re-assigns "view.*" keys, and Streamlit warns when a widget gets
    a value both ways."""
    st.session_state.setdefault(LINKABLE, set()).add(key)
    linked = st.session_state.get(LINK_VALUES, {}).pop(key, None)
    valid = [v for v in (_valid(value, options, default) for value in (linked, st.session_state.get(key)))
             if v is not None]
    st.session_state[key] = (valid or [default])[0]
    # Into the address bar now: app.py writes it on every full run, but a fragment's rerun (a control inside one
    # changed) skips app.py, and the address a teacher copies after choosing a head must open that head.
    name, text = key.split(".", 2)[2], _format(st.session_state[key])
    if st.query_params.get(name) != text:
        st.query_params[name] = text


class _AnyText:
    """remember()'s options for a free text box: any text of a sane length; the page checks what it means (a typed
    model source, for one, goes through the server's configuration like any other)."""

    def __contains__(self, value) -> bool:
        return isinstance(value, str) and len(value) <= 10_000  # a prompt, not a book


ANY_TEXT = _AnyText()


def _valid(value, options, default):
    """`value` if it is among `options` and of the default's own type (a link's `true` is not layer 1, nor `3.0`
    layer 3, and `[{}]` is no list of pairs), else None. A float is matched to the option it rounds to: a float
    slider's value comes back from the browser as 0.35000000000000003 for the notch 0.35."""
    if isinstance(default, list):
        kind = type(default[0]) if default else int
        fits = isinstance(value, list) and all(type(item) is kind for item in value) and set(value) <= set(options)
        return value if fits else None
    if type(value) is not type(default):
        return None
    if isinstance(value, float):
        return next((option for option in options if abs(option - value) < 1e-9), None)
    return value if value in options else None


def export_traces() -> None:
    """Download buttons for the traces this page used, as safetensors files that explorer.Trace.load reads."""
    traces = st.session_state.get(PAGE_TRACES) or {}
    if not traces:
        return
    with st.expander("Export traces", icon=":material/download:"):
        for i, (label, t) in enumerate(traces.items()):
            st.download_button(f"{as_text(label)} ({t.nbytes() / 2**20:.1f} MiB)", lambda t=t: t.to_trace().to_bytes(),
                               f"trace-{i}.safetensors",
                               "application/octet-stream", key=f"export.trace.{i}", on_click="ignore")


ROUTER_RAN = "_router_ran"  # set by app.py on every run, taken by ensure_router(): was this run routed by app.py?
DEEP_LINK = "_deep_link"


def ensure_router() -> None:
    """Hand a page opened without app.py back to the router.

    Because the project keeps its page scripts in pages/, Streamlit runs a page directly (without app.py and its
    sidebar) while a fresh server has not yet seen st.navigation: a page URL as its first request, or a click on
    the folder-based page list it showed before. Remember the address and let app.py open that page properly.
    Every page calls this (through current(), or directly when it needs no prompt) once per run: it takes the
    flag app.py set for this run.
    """
    if not st.session_state.pop(ROUTER_RAN, False):
        st.session_state[DEEP_LINK] = urlparse(st.context.url or "").path.rstrip("/").rsplit("/", 1)[-1]
        st.switch_page("app.py", query_params=st.query_params.to_dict())  # a shared link's state goes along


def continuation_settings(text: str) -> dict | None:
    """The settings a link's continuation parameter names, if they are well-formed; the model checks their range."""
    try:
        settings = json.loads(text)
    except ValueError:
        return None
    kinds = {"n": int, "temperature": (int, float), "top_k": int, "top_p": (int, float), "seed": int}
    if not isinstance(settings, dict) or set(settings) != set(kinds):
        return None
    if any(isinstance(settings[k], bool) or not isinstance(settings[k], kind) for k, kind in kinds.items()):
        return None
    return settings if 1 <= settings["n"] <= MAX_NEW_TOKENS and 0 <= settings["seed"] < 2**31 else None


def generate(model: Decoder, prompt_ids: list[int], settings: dict, on_token=None) -> list[int]:
    """Prompt + continuation with the Generate page's settings, through the compute queue. Raises ModelError."""
    # top_k 0 and top_p 1 mean "off"; temperature 0 is greedy, which ignores the rest (the model still checks them).
    with COMPUTE.slot():
        full = model.generate(torch.tensor([prompt_ids]), settings["n"], temperature=settings["temperature"],
                              top_k=settings["top_k"] or None,
                              top_p=settings["top_p"] if settings["top_p"] != 1 else None, seed=settings["seed"],
                              on_token=on_token)
    return full[0].tolist()


def generate_from_link(model: Decoder, choice: ModelChoice, prompt: str, ids: list[int], settings: dict) -> None:
    """The continuation a shared link names, generated again for this session (every page then reads it)."""
    try:
        with st.spinner(f"Generating the link's continuation ({settings['n']} tokens at most)…"):
            full = generate(model, ids, settings)
    except ModelError as e:
        st.warning(f"The link's continuation could not be generated again: {as_text(str(e))}")
        return
    st.session_state["generated"] = {"prompt": prompt, "choice": choice, "ids": full, "settings": settings}


def current() -> Session:
    """The session for this rerun, from the sidebar's widgets; shows an error and stops the page on bad input."""
    ensure_router()
    state = st.session_state
    choice = ModelChoice(state.get("model_source", DEFAULT_CHOICE.source), state.get("device", DEFAULT_CHOICE.device),
                         state.get("dtype", DEFAULT_CHOICE.dtype))
    try:
        model, tokenizer = load(choice, state.get("hf_token"))
    except ModelError as e:
        st.error(f"Could not load **{as_text(choice.source)}**: {as_text(str(e))}")
        st.stop()
    prompt = state.get("prompt", "")
    try:
        ids = tokenizer.encode(prompt)
        if not prompt.strip() or not ids:
            raise ModelError("The prompt is empty: type some text in the sidebar.")
        model.check_input(torch.tensor([ids]), 0)
    except ModelError as e:
        st.error(as_text(str(e)))
        st.stop()
    if PENDING_CONTINUATION in state:
        generate_from_link(model, choice, prompt, ids, state.pop(PENDING_CONTINUATION))
    generated = state.get("generated")
    if generated and generated["prompt"] == prompt and generated["choice"] == choice:
        st.session_state[CONTINUATION_FROM] = len(ids)
        describe_exports(choice.source, tokenizer.decode(generated["ids"]))
        return Session(model, tokenizer, choice, prompt, generated["ids"], len(ids))
    describe_exports(choice.source, prompt)
    return Session(model, tokenizer, choice, prompt, ids, len(ids))
