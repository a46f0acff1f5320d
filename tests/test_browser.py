"""The real browser: Debian's chromium driven by Playwright opens every page of `streamlit run app.py`.

Skipped where chromium or playwright is missing (.ci/run installs both). Screenshots land in artifacts/screenshots/.
Every request the browser makes is recorded: the app must work offline, so nothing may leave this machine (the last
test checks it).
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pytest

from explorer import Trace
from explorer.export import HEADER_LINES

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
PAGES = ["", "attention", "rope", "norms", "swiglu", "logit_lens", "attribution", "patching", "gradients", "compare", "lesson_rmsnorm", "lesson_kv_cache",
         "lesson_swiglu", "lesson_rope", "lesson_gqa", "lesson_qk_norm", "lesson_residual"]  # "": Model, the default
# Pages whose experiment waits for a toggle or a button show no chart when opened.
MIN_CHARTS = {"lesson_qk_norm": 0, "gradients": 0, "patching": 0}
NO_TRACE = {"lesson_kv_cache", "lesson_qk_norm", "gradients", "patching"}  # pages that read no trace (yet): none to download
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
INLINE_SCHEMES = {"data", "blob", "about"}  # made by the page itself: nothing is sent anywhere
REQUESTS: list[tuple[str, str]] = []  # (where the browser was, URL requested) over the whole module


def is_local(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in INLINE_SCHEMES or parts.hostname in LOCAL_HOSTS


def record_requests(context) -> None:
    """Log every request of `context`'s pages (HTTP, fetch, websocket), with the page's address at the time."""

    def on_page(page) -> None:
        page.on("websocket", lambda ws: REQUESTS.append((page.url, ws.url)))

    def on_request(request) -> None:
        try:
            where = request.frame.url
        except Exception:  # a service worker's request has no frame
            where = ""
        REQUESTS.append((where, request.url))

    context.on("request", on_request)
    context.on("page", on_page)
    for page in context.pages:
        on_page(page)


def new_context(browser, **kwargs):
    context = browser.new_context(**kwargs)
    record_requests(context)
    return context


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(env_extra: dict[str, str] | None = None):
    """`streamlit run app.py` on a free port, offline, until the generator is closed; yields its address."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless",
         "true", "--server.address", "127.0.0.1"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start within 90 s")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def server():
    yield from serve()


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    if not chromium:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


def wait_for_app(page, timeout_ms: int = 90_000) -> None:
    """Until the script has finished its run: the app marks its state on the stApp element."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout_ms)  # every page has a title
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)
    page.wait_for_timeout(1000)


def open_page(browser, url: str):
    page = new_context(browser, viewport={"width": 1400, "height": 2400}).new_page()  # tall: the page scrolls inside
    page.goto(url)
    wait_for_app(page)
    return page


def assert_clean(page, min_charts: int = 1) -> None:
    if min_charts:  # Plotly's code loads lazily, after the script has finished
        page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length >= {min_charts}",
                               timeout=60_000)
        page.wait_for_timeout(1000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert page.locator('[data-testid="stDialog"]').count() == 0  # e.g. Streamlit's "Page not found"
    assert page.locator(".js-plotly-plot").count() >= min_charts


def check_download(download) -> str:
    """A downloaded export is not empty and reads back as what its name says; returns the name."""
    name, path = download.suggested_filename, Path(download.path())
    data = path.read_bytes()
    assert data, name
    if name.endswith(".csv"):
        table = pd.read_csv(path, skiprows=HEADER_LINES)
        assert len(table) and len(table.columns) >= 2, name
        assert data.startswith(b"# model: "), name
    elif name.endswith(".html"):
        assert b"<html>" in data[:200] and b"Plotly.newPlot" in data, name
    elif name.endswith(".svg"):
        assert ElementTree.fromstring(data).tag.endswith("svg"), name
    else:
        assert name.endswith(".safetensors") and Trace.load(path).tokens, name
    return name


def press_every_export(page) -> list[str]:
    """Press every download button of the page: in each chart's Export menu (in every tab and expander too) and in
    the sidebar's Export traces. Checks each file; returns their names."""
    names = []

    def download_each(buttons) -> None:
        for i in range(buttons.count()):
            with page.expect_download(timeout=60_000) as info:
                buttons.nth(i).click()
            names.append(check_download(info.value))

    def press_shown_menus() -> None:
        menus = page.locator('[data-testid="stMain"] [data-testid="stPopoverButton"]:not([data-pressed]):visible')
        while menus.count():
            menu = menus.first.element_handle()  # this button, not whichever is first once it is marked
            menu.evaluate("button => button.setAttribute('data-pressed', '')")  # (downloads cause no rerun)
            menu.click()
            body = page.locator('[data-testid="stPopoverBody"]')
            # Its last button drawn (CSV after HTML; a diagram's SVG alone) before counting: a popover's content can
            # arrive in two renders, and counting early once missed a CSV on a slower machine.
            body.get_by_role("button", name=re.compile(r"Data \(CSV\)|Diagram \(SVG\)")).wait_for()
            download_each(body.locator('[data-testid="stDownloadButton"] button'))
            page.keyboard.press("Escape")
            page.locator('[data-testid="stPopoverBody"]').wait_for(state="detached")

    # Every chart drawn, and no more arriving: a chart still on its way has no Export menu to press yet.
    page.wait_for_function("""() => {
        const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
        const drawn = charts.every((chart) => chart.querySelector('.main-svg'));
        const now = Date.now(), seen = window.__exportWait || (window.__exportWait = {count: -1, since: now});
        if (!drawn || charts.length !== seen.count) { seen.count = drawn ? charts.length : -1; seen.since = now; }
        return drawn && now - seen.since > 1500;
    }""", polling=250, timeout=60_000)
    for closed in page.locator('[data-testid="stMain"] details:not([open]) > summary').all():
        closed.click()
    press_shown_menus()
    for tab in page.locator('[data-testid="stMain"] [role="tab"]').all():
        tab.click()
        press_shown_menus()
    traces = page.locator('[data-testid="stSidebar"] [data-testid="stExpander"]', has_text="Export traces")
    if traces.count():
        traces.locator("summary").click()
        download_each(traces.locator('[data-testid="stDownloadButton"] button'))
    assert page.get_by_text("Failed to generate file").count() == 0  # Streamlit's words when an export raised
    return names


@pytest.mark.parametrize("page_name", PAGES)
def test_every_page_renders_charts_and_every_export_downloads(browser, server, page_name):
    page = open_page(browser, f"{server}/{page_name}")
    try:
        assert_clean(page, min_charts=MIN_CHARTS.get(page_name, 1))
        names = press_every_export(page)
        charts = page.locator(".js-plotly-plot").count()
        assert sum(n.endswith(".csv") for n in names) == sum(n.endswith(".html") for n in names) == charts
        assert any(n.endswith(".safetensors") for n in names) == (page_name not in NO_TRACE)
    finally:
        page.screenshot(path=str(SHOTS / f"{page_name or 'model'}.png"), full_page=True)
        page.context.close()


def press_and_wait(browser, url: str, button: str, shot: str, *, min_charts: int, timeout_ms: int = 90_000):
    """Open a page, press its main button, wait for the run to finish, check it and keep a screenshot."""
    page = open_page(browser, url)
    page.get_by_role("button", name=button).click()
    page.wait_for_timeout(500)
    wait_for_app(page, timeout_ms=timeout_ms)
    assert_clean(page, min_charts=min_charts)
    page.screenshot(path=str(SHOTS / shot), full_page=True)
    return page


def test_generate_then_the_continuation_is_shown_step_by_step(browser, server):
    page = press_and_wait(browser, f"{server}/generate", "Generate", "generate.png", min_charts=2)
    try:
        assert "Clear continuation" in page.locator('[data-testid="stMain"]').inner_text()
        assert sorted(n for n in press_every_export(page) if n.endswith(".csv")) == [
            "generate-kv_cache.csv", "generate-steps.csv"]
    finally:
        page.context.close()


def test_stability_lab_trains_both_models(browser, server):
    page = press_and_wait(browser, f"{server}/lab", "Train both models", "lab.png", min_charts=2, timeout_ms=300_000)
    try:
        assert sum(n.endswith(".csv") for n in press_every_export(page)) == 3  # loss, largest logit, gradients
    finally:
        page.context.close()


def test_a_shared_link_opens_the_stated_view(browser, server):
    query = "prompt=Tom+had+a+red+ball&layer=2&head=3"
    page = open_page(browser, f"{server}/attention?{query}")
    try:
        assert_clean(page)
        page.screenshot(path=str(SHOTS / "shared-link.png"), full_page=True)
        assert page.locator('[data-testid="stSidebar"] textarea').first.input_value() == "Tom had a red ball"
        main = page.locator('[data-testid="stMain"]').inner_text()
        assert "Every head of layer 2" in main and "head 3 (KV 1)" in main
    finally:
        page.context.close()


def test_the_address_follows_a_control_inside_a_fragment(browser, server):
    page = open_page(browser, f"{server}/attention")
    try:
        assert_clean(page)  # every chart drawn first: a click on a page still rendering once opened no menu (CI)
        box = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').filter(has_text="Head").first
        box.click()
        page.get_by_role("option").nth(5).click()  # head 5: a fragment rerun, which app.py does not see
        page.wait_for_timeout(500)
        wait_for_app(page)
        assert_clean(page)
        page.wait_for_url(re.compile(r"[?&]head=5(&|$)"))  # a teacher copying the address now shares head 5
    finally:
        page.context.close()


def test_a_copied_address_opens_the_same_controls_in_a_fresh_browser(browser, server):
    """Norms: the threshold slider and the log-colour checkbox live in fragments; the link that the sidebar's Copy
    link button copies after moving them opens a new browser context with both as they were."""
    page = new_context(browser, viewport={"width": 1400, "height": 2400},
                       permissions=["clipboard-read", "clipboard-write"]).new_page()
    page.goto(f"{server}/norms")
    wait_for_app(page)
    try:
        slider = page.locator('[data-testid="stSlider"]').filter(has_text="Outlier threshold").locator(
            'input[type="range"]').first
        slider.focus()
        for _ in range(3):  # 4.0 -> 5.5
            slider.press("ArrowRight")
            page.wait_for_url(re.compile(r"[?&]k=(4\.5|5|5\.5)(&|$)"))
        page.wait_for_url(re.compile(r"[?&]k=5\.5(&|$)"))
        page.locator('[data-testid="stCheckbox"]').filter(has_text="Colour by log").locator("label").click()
        page.wait_for_url(re.compile(r"[?&]log=true(&|$)"))
        button = page.locator('[data-testid="stSidebar"] iframe').content_frame.get_by_role("button")
        button.click()
        page.wait_for_function("() => navigator.clipboard.readText().then(text => text.includes('log=true'))")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.url
    finally:
        page.context.close()
    fresh = open_page(browser, copied)
    try:
        assert_clean(fresh)
        slider = fresh.locator('[data-testid="stSlider"]').filter(has_text="Outlier threshold")
        assert slider.locator('input[type="range"]').first.get_attribute("value") == "5.5"
        assert fresh.locator('[data-testid="stCheckbox"]').filter(has_text="Colour by log").locator(
            "input").first.is_checked()
    finally:
        fresh.context.close()


def set_prompt(page, text: str) -> None:
    box = page.locator('[data-testid="stSidebar"] textarea').first
    box.fill(text)
    box.press("Control+Enter")  # Streamlit applies a text area on Ctrl+Enter or blur
    page.wait_for_timeout(500)
    wait_for_app(page)


def test_two_sessions_see_their_own_prompt(browser, server):
    """Two browser sessions at once, each with its own prompt: each page shows only its own tokens."""
    prompts = {"alpha": "The cat sat on the mat", "beta": "Lily went to the park"}
    sessions = {}
    for name in prompts:
        context = new_context(browser, viewport={"width": 1400, "height": 1000})
        sessions[name] = context.new_page()
        sessions[name].goto(server)
        wait_for_app(sessions[name])
    for name, text in prompts.items():
        set_prompt(sessions[name], text)
    # The next-token chart's title names the prompt's last token (stories260K cuts "mat" into "␣m" "at", "park" into
    # "␣p" "ar" "k").
    own = {"alpha": "after “at”", "beta": "after “k”"}
    for name, page in sessions.items():  # checked after both prompts are set, so a leak would show
        # Wait until this session's rerun has drawn its own chart.
        page.wait_for_function("(token) => document.querySelector('[data-testid=\"stMain\"]').textContent"
                               ".includes(token)", arg=own[name], timeout=60_000)
        page.screenshot(path=str(SHOTS / f"session-{name}.png"), full_page=True)
        main = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').textContent")  # with SVG text
        assert page.locator('[data-testid="stSidebar"] textarea').first.input_value() == prompts[name]
        other = own["beta" if name == "alpha" else "alpha"]
        assert other not in main
        page.context.close()


SECRET = "a-browser-test-secret-of-length"


@pytest.fixture(scope="module")
def class_server(tmp_path_factory):
    """A class server: two bundled models, four pages, workshop links signed with SECRET."""
    config = tmp_path_factory.mktemp("class") / "classroom.toml"
    config.write_text('pages = ["model", "attention", "rope", "norms"]\n[models]\nbundled = ["stories260K", '
                      f'"pair-qwen3"]\n[links]\nsecret = "{SECRET}"\n')
    yield from serve({"MBE_CONFIG": str(config)})


def test_a_workshop_link_opens_its_state_and_an_expired_one_says_so(browser, class_server):
    from playwright.sync_api import expect

    from explorer.workshop import Workshop, link, make_token

    pinned = Workshop("pair-qwen3", "Tom and Sam went to the park.", ("rope", "attention"))
    page = open_page(browser, link(class_server, make_token(pinned, SECRET)))
    assert_clean(page)
    page.screenshot(path=str(SHOTS / "workshop-link.png"))
    assert page.locator('[data-testid="stMain"] h1').first.inner_text().startswith("RoPE")  # its first page
    nav = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
    assert [text.split()[-1] for text in nav] == ["RoPE", "Attention"]  # each after its icon's ligature name
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.locator("textarea").input_value() == pinned.prompt
    checkpoint = sidebar.locator('[data-testid="stSelectbox"]').first
    assert "pair-qwen3" in checkpoint.inner_text() + checkpoint.locator("input").first.input_value()
    page.reload()  # the link stays in the address: a reload is still the workshop
    wait_for_app(page)
    assert page.locator('[data-testid="stMain"] h1').first.inner_text().startswith("RoPE")
    page.context.close()

    expired = Workshop("pair-qwen3", "x", ("rope",), datetime(2026, 1, 1, tzinfo=UTC))
    page = new_context(browser).new_page()
    page.goto(link(class_server, make_token(expired, SECRET)))
    expect(page.locator('[data-testid="stAlertContentError"]')).to_contain_text("expired on 2026-01-01")
    page.context.close()


def test_no_request_leaves_this_machine(browser, server):
    """Every request the browser made in this module (every page, generation, training, two sessions) went to the
    local server or stayed inside the page (data:, blob:): no CDN, font, analytics or telemetry host."""
    visited = {urllib.parse.urlsplit(where).path.strip("/") for where, _ in REQUESTS}
    for page_name in PAGES:  # run on its own (pytest -k), this test first goes through every page itself
        if page_name not in visited:
            page = open_page(browser, f"{server}/{page_name}")
            try:
                assert_clean(page, min_charts=MIN_CHARTS.get(page_name, 1))
            finally:
                page.context.close()
    assert any(url.startswith(server) for _, url in REQUESTS), "no request was recorded: the recording is broken"
    foreign = sorted({f"{url} (from {where or 'the browser'})" for where, url in REQUESTS if not is_local(url)})
    assert not foreign, "requests to other hosts:\n" + "\n".join(foreign)


def test_presenter_mode_steps_with_a_clickers_keys_onto_the_next_page_and_leaves_with_everything_kept(browser, server):
    prompt = "Tom had a red ball. He threw it to his dog."
    page = open_page(browser, f"{server}/attention?presenter=1&prompt={urllib.parse.quote(prompt)}")
    try:
        assert_clean(page)
        assert page.locator(".js-plotly-plot").count() == 1 and not page.locator('[data-testid="stSidebar"]').is_visible()
        expect = page.get_by_text("Figure 5 of 5")
        for _ in range(4):
            page.keyboard.press("PageDown")
            page.wait_for_timeout(300)
            wait_for_app(page)
        expect.wait_for()
        page.keyboard.press("PageDown")  # past the last figure: the next page
        page.wait_for_url(re.compile(r"/rope\?"))
        wait_for_app(page)
        assert_clean(page)
        assert page.locator(".js-plotly-plot").count() == 1 and page.get_by_text("Figure 1 of").count() == 1
        page.get_by_role("button", name="Leave presenter mode").click()
        page.wait_for_function("() => !new URL(location).searchParams.has('presenter')")
        wait_for_app(page)
        assert page.locator('[data-testid="stSidebar"] textarea').first.input_value() == prompt
        assert page.locator(".js-plotly-plot").count() > 1 and "/rope" in page.url
    finally:
        page.context.close()
