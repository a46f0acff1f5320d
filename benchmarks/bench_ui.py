"""How fast the app feels in a real browser: page opens, control latencies and chart sizes, end to end.

    python -m benchmarks.bench_ui                       # bundled model and Qwen3-0.6B shape (10-15 min, 2 cores)
    python -m benchmarks.bench_ui --models bundled      # the bundled stories260K only (~5 min)
    python -m benchmarks.bench_ui --models qwen3 --pages attention rope --repeats 2
    python -m benchmarks.bench_ui --long 2048           # a 2048-token prompt: memory and errors per page
    python -m benchmarks.bench_ui --sessions 3          # 3 sessions tracing at once vs one after another

A script, not a test. It starts the real server (`python -m streamlit run app.py`, HF_HUB_OFFLINE=1) on a free port
and drives Debian's headless chromium through Playwright, as a user would: it chooses the model and types the prompt
in the sidebar, opens pages from the sidebar's navigation and moves each page's main controls (found by their label
text, so the page scripts may change under it). Times are wall-clock, measured in the page: from the click (or key
press, or navigation) until the script run has finished, every chart is drawn and nothing in the charts has changed
for --quiet-ms (that quiet wait is not counted). Chart bytes are the Streamlit websocket frames (protobuf ForwardMsgs,
uncompressed: Streamlit does not compress its websocket by default) that carry each plotly chart.

The Qwen3 shape is a checkpoint with Qwen3-0.6B's configuration and random (seeded) weights, built once with
transformers into the ignored artifacts/bench-qwen3-0.6b/, next to a copy of the real Qwen3 tokenizer
(benchmarks/qwen3_tokenizer/), so prompts tokenize exactly as with Qwen/Qwen3-0.6B. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_DIR = Path(__file__).resolve().parent / "qwen3_tokenizer"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
BUNDLED_TOKENIZER = Path("model/bundled/stories260K/tokenizer.json")  # in the app's folder
DEFAULT_CHECKPOINT = ROOT / "artifacts" / "bench-qwen3-0.6b"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OTHER_SOURCE = "Hub repo id or local folder…"  # app.py's "Checkpoint" option for a Hub id or a folder
CUSTOM_SOURCE_LABEL = "Hub repo id or local folder"  # ...and the text input it shows
WIDGET_KINDS = ["stSlider", "stSelectbox", "stRadio", "stCheckbox", "stNumberInput", "stToggle", "stMultiSelect"]


@dataclass(frozen=True)
class Control:
    label: str  # the start of the widget's label (or the button's text)
    name: str = ""  # how the report calls it; the label by default
    button: bool = False  # a button: press it (then `then`, if given, is pressed untimed to undo it)
    then: str = ""
    slow: bool = False  # only with --train-lab

    @property
    def title(self) -> str:
        return self.name or self.label


@dataclass(frozen=True)
class PageSpec:
    path: str  # the URL path ("" for Model, the default page)
    title: str
    controls: tuple[Control, ...] = ()
    traces: bool = True  # False: the page shows nothing of the sidebar's model (opening it is cheap)


# The explore pages in sidebar order, and each one's main controls (by label: the page scripts may change).
PAGES = [
    PageSpec("", "Model", (Control("Number of candidates shown", "top-k slider"),)),
    PageSpec("attention", "Attention", (Control("Layer", "Layer slider"), Control("Head", "Head select"),
                                        Control("Show", "scores/pattern radio"))),
    PageSpec("rope", "RoPE", (Control("Layer", "Layer select"), Control("Query head", "Query head select"),
                              Control("Query token m", "Query token select"), Control("θ", "θ select"))),
    PageSpec("norms", "Norms", (Control("Outlier threshold k", "threshold slider"),
                                Control("Colour by log", "log checkbox"))),
    PageSpec("swiglu", "SwiGLU", (Control("Layer", "Layer select"), Control("Sparsity threshold", "threshold slider"),
                                  Control("Token", "Token select"))),
    PageSpec("logit_lens", "Logit lens", (Control("First position shown", "window slider"),
                                          Control("Position", "Position select"))),
    PageSpec("generate", "Generate", (Control("Generate", "Generate (40 tokens)", button=True,
                                              then="Clear continuation"),)),
    PageSpec("compare", "Llama vs Qwen3", (Control("Layer of model", "Layer slider"),)),
    PageSpec("lab", "Stability lab", (Control("Train both models", "Train both models", button=True, slow=True),),
             traces=False),
]
PAGE_NAMES = {spec.path or "model": spec for spec in PAGES}

# Prompts are cut from this (invented, TinyStories-like) text; prompt i starts at sentence i, so each differs.
SENTENCES = [
    "Once upon a time, there was a little girl named Lily who loved to play outside in the sun.",
    "One day she found a shiny red ball under a big green tree near her house.",
    "She picked it up and ran to show her friend Tom, who lived next door with his old dog Max.",
    "Tom smiled and said, \"Let's play catch in the park before it gets dark!\"",
    "They threw the ball high into the blue sky, and Max barked and jumped every time it came down.",
    "Then a strong wind came and blew the ball into the pond, far from the grass.",
    "Lily was sad, but Tom had an idea: they could use a long stick to pull it back.",
    "They worked together, and after a few tries the ball floated close enough to grab.",
    "Max shook the water off his fur and made them both laugh.",
    "When the sun went down, Lily's mom called her home for dinner.",
    "She ate soup and bread, and told her mom all about the ball, the wind and the pond.",
    "Her mom said that good friends help each other, even when things go wrong.",
    "That night Lily dreamed of red balls floating in the sky like big round birds.",
    "The next morning the birds were singing, and Tom knocked on the door with Max at his side.",
    "\"Can we play again today?\" he asked, holding the ball in both hands.",
    "Lily put on her shoes, took a little bag of apples, and ran outside with a happy smile.",
    "They shared the apples on a bench and watched the ducks swim slowly across the water.",
    "A small duck came close and looked at them, and Lily gave it a piece of her apple.",
    "Tom said it was the best day ever, and Lily agreed with a big nod.",
    "From that day on, they played in the park every morning and never lost the ball again.",
]


# ----------------------------------------------------------------------------------------------- checkpoint, prompts


@functools.cache
def load_tokenizer(path: Path = TOKENIZER_DIR / "tokenizer.json"):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


def make_prompt(tokens: int, variant: int = 0, tokenizer: Path = TOKENIZER_DIR / "tokenizer.json") -> str:
    """`tokens` tokens of story text (Qwen3's tokenizer unless another tokenizer.json is given); variants start at
    different sentences, so their ids differ."""
    tok = load_tokenizer(tokenizer)
    order = SENTENCES[variant % len(SENTENCES):] + SENTENCES[:variant % len(SENTENCES)]
    text, i = "", 0
    if variant >= len(SENTENCES):  # more variants than sentences: a distinct opening word
        text = f"Day {variant}. "
    while len(tok.encode(text).ids) < tokens + 8:
        text += ("" if not text or text.endswith(" ") else " ") + order[i % len(order)]
        i += 1
    ids = tok.encode(text).ids
    cut = tok.decode(ids[:tokens])
    while len(tok.encode(cut).ids) > tokens:  # a cut inside a word can re-tokenize to more tokens
        cut = cut[:-1]
    return cut.rstrip()


def build_checkpoint(folder: Path, *, dtype: str = "bfloat16", seed: int = 0, rebuild: bool = False) -> Path:
    """A Qwen3-0.6B-shaped checkpoint (random weights after manual_seed(seed)) with the real Qwen3 tokenizer.

    Built once; a stamp file records how, so a later run with the same settings reuses it."""
    stamp = {"config": "qwen3-0.6b", "dtype": dtype, "seed": seed, "version": 1}
    stamp_file = folder / "bench_ui.json"
    if not rebuild and stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp:
        if all((folder / f).is_file() for f in ("config.json", "model.safetensors", *TOKENIZER_FILES)):
            return folder
    import torch

    from benchmarks.common import build_hf_model

    print(f"building the Qwen3-0.6B-shaped checkpoint in {folder} ({dtype}, seed {seed}) ...", flush=True)
    started = time.perf_counter()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    hf = build_hf_model("qwen3-0.6b", seed=seed)
    if dtype != "float32":
        hf = hf.to(getattr(torch, dtype))
    hf.save_pretrained(folder, safe_serialization=True)
    del hf
    for name in TOKENIZER_FILES:
        shutil.copyfile(TOKENIZER_DIR / name, folder / name)
    stamp_file.write_text(json.dumps(stamp))
    size = sum(f.stat().st_size for f in folder.iterdir()) / 2**30
    print(f"  built in {time.perf_counter() - started:.0f} s ({size:.2f} GiB)", flush=True)
    return folder


# ------------------------------------------------------------------------------------------------------------ server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m streamlit run app.py` on a free port; its log goes to a file."""

    def __init__(self, app_dir: Path, env_extra: dict[str, str], log_path: Path):
        self.app_dir = app_dir
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", **env_extra}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.ready_at = 0.0  # time.time() when /_stcore/health first answered

    def start(self, timeout: float = 120.0) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address",
             "127.0.0.1", "--server.port", str(port)],
            cwd=self.app_dir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).status == 200:
                    self.ready_at = time.time()
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"streamlit did not answer within {timeout:.0f} s; see {self.log_path}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    # memory, from /proc (Linux)
    def memory(self) -> dict[str, int]:
        """VmRSS, VmHWM (peak RSS) and VmSize in bytes."""
        out = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "VmSize"):
                out[name] = int(value.split()[0]) * 1024
        return out

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (`echo 5 > /proc/<pid>/clear_refs`); False where not allowed."""
        try:
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def limit_address_space(self, extra_bytes: int) -> int | None:
        """Cap the server's address space at its current size + extra_bytes (RLIMIT_AS), so that a page that would
        need far more memory fails with an allocation error inside the app instead of exhausting the machine."""
        import resource

        limit = self.memory()["VmSize"] + extra_bytes
        try:
            resource.prlimit(self.proc.pid, resource.RLIMIT_AS, (limit, limit))
        except (OSError, ValueError):
            return None
        return limit


def server_torch_threads(env: dict[str, str]) -> int:
    """torch's intra-op thread count in a process started with the server's environment."""
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                         env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


# ------------------------------------------------------------------------------------------------- in-page recording

# Installed in every page before its scripts run: when the script state of the app changes, and when anything in or
# around a chart changes (a chart added, redrawn or removed), with Date.now() so Python's time.time() compares.
INIT_SCRIPT = """
(() => {
  if (window.__bench) return;
  const b = window.__bench = {states: [], stateAt: 0, chartAt: 0, firstChartAt: 0, firstFigureAt: 0};
  const CHART = '[data-testid="stPlotlyChart"]';
  const DIAGRAM = '[data-testid="stMain"] img[src^="data:image/svg"]';  // an SVG diagram, e.g. the Model page's
  const isChart = (n) => n.nodeType === 1 && (n.matches(CHART) || n.querySelector(CHART));
  new MutationObserver((records) => {
    const now = Date.now();
    if (!b.firstFigureAt && document.querySelector(DIAGRAM)) b.firstFigureAt = now;
    let chart = false;
    for (const r of records) {
      if (r.type === 'attributes' && r.attributeName === 'data-test-script-state') {
        b.states.push([now, r.target.getAttribute('data-test-script-state')]);
        b.stateAt = now;
        continue;
      }
      const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      if (el && el.closest && el.closest(CHART)) { chart = true; continue; }
      if (r.type === 'childList' && ([...r.addedNodes].some(isChart) || [...r.removedNodes].some(isChart))) {
        chart = true;
      }
    }
    if (chart) {
      b.chartAt = now;
      if (!b.firstChartAt && document.querySelector(CHART + ' .main-svg')) b.firstChartAt = now;
      b.firstFigureAt = b.firstFigureAt || b.firstChartAt;
    }
  }).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
})();
"""

# True (as {end, ...}) once a run that began after t0 has finished, every chart has been drawn and neither the script
# state nor any chart has changed for `quiet` ms. `end` is the last such change: the moment the page was done.
DONE_JS = """
([t0, quiet, needRun, minCharts]) => {
  const b = window.__bench;
  const app = document.querySelector('[data-testid="stApp"]');
  if (!b || !app) return false;
  if (needRun && !b.states.some(([t, s]) => t >= t0)) return false;
  if (app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]');
  if (charts.length < minCharts) return false;
  for (const c of charts) if (!c.querySelector('.main-svg')) return false;
  const end = Math.max(b.stateAt, b.chartAt, t0);
  if (Date.now() - end < quiet) return false;
  return {end, charts: charts.length, firstChartAt: b.firstChartAt, firstFigureAt: b.firstFigureAt};
}
"""
STARTED_JS = "([t0]) => !!window.__bench && window.__bench.states.some(([t, s]) => t >= t0)"


@dataclass
class Phase:
    """One measured step: what was done, how long until the page was done, and what the server sent meanwhile."""

    what: str
    seconds: float | None = None
    bytes_total: int = 0
    charts: list[tuple[str, int, bool]] = field(default_factory=list)  # (chart key, frame bytes, sent by reference)
    error: str = ""
    problems: list[str] = field(default_factory=list)  # exceptions / error boxes seen on the page afterwards
    extra: dict = field(default_factory=dict)

    @property
    def largest_chart(self) -> tuple[str, int] | None:
        full = [(key, n) for key, n, ref in self.charts if not ref]
        return max(full, key=lambda kv: kv[1]) if full else None

    def chart_bytes(self) -> int:
        return sum(n for _, n, _ in self.charts)


class FrameRecorder:
    """Attributes the Streamlit websocket's frames to the current Phase, and plotly charts to their keys."""

    def __init__(self):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self._msg = ForwardMsg
        self.phase: Phase | None = None
        self._hash_key: dict[str, str] = {}  # message hash -> chart key
        self._path_key: dict[tuple, str] = {}  # delta path -> the chart key last sent there
        self.finished_at = 0.0  # time.time() * 1000 when the server last said a run had finished

    def finished_since(self, t0_ms: float) -> bool:
        """Did a run finish after t0? The server's word: on a busy browser a short run's start and end can render
        together, and then the page's data-test-script-state never shows it (see STARTED_JS)."""
        return self.finished_at >= t0_ms

    def attach(self, page) -> None:
        page.on("websocket", self._on_websocket)

    def _on_websocket(self, ws) -> None:
        if "/_stcore/stream" in ws.url:
            ws.on("framereceived", self._on_frame)

    def _on_frame(self, payload) -> None:
        phase = self.phase
        if phase is None:
            return
        if isinstance(payload, str):
            payload = payload.encode()
        phase.bytes_total += len(payload)
        try:
            msg = self._msg.FromString(payload)
        except Exception:  # noqa: BLE001 - not a ForwardMsg: count the bytes, attribute nothing
            return
        kind = msg.WhichOneof("type")
        if kind == "script_finished":
            self.finished_at = time.time() * 1000
        path = tuple(msg.metadata.delta_path)
        if kind == "delta" and msg.delta.WhichOneof("type") == "new_element" \
                and msg.delta.new_element.WhichOneof("type") == "plotly_chart":
            key = chart_key(msg.delta.new_element.plotly_chart.id, list(path))
            if msg.hash:
                self._hash_key[msg.hash] = key
            self._path_key[path] = key
            phase.charts.append((key, len(payload), False))
        elif kind == "ref_hash":  # Streamlit re-sent an element the browser already has, by its hash
            key = self._hash_key.get(msg.ref_hash) or self._path_key.get(path)
            if key:
                phase.charts.append((key, len(payload), True))


def chart_key(element_id: str, delta_path: list[int]) -> str:
    """The user key of a chart's element id ("$$ID-<hash>-chart.attention.head" -> "attention.head"), else its path."""
    match = re.match(r"\$\$ID-[0-9a-f]+-(.+)$", element_id or "")
    if match and match.group(1) != "None":
        return match.group(1).removeprefix("chart.")
    return "chart@" + ".".join(map(str, delta_path))


class Browser:
    """Headless chromium; each session is a browser context with its own Streamlit session."""

    def __init__(self, args):
        from playwright.sync_api import sync_playwright

        chromium = shutil.which("chromium")
        if not chromium:
            sys.exit("Debian's chromium is needed (apt-get install chromium); this script never runs "
                     "`playwright install`.")
        self.args = args
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)

    def session(self) -> "Session":
        context = self.browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(INIT_SCRIPT)
        return Session(context, self.args)

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()


class Session:
    def __init__(self, context, args):
        self.context = context
        self.args = args
        self.page = context.new_page()
        self.page.set_default_timeout(30_000)
        self.recorder = FrameRecorder()
        self.recorder.attach(self.page)

    def close(self) -> None:
        self.context.close()

    # -- waiting
    def wait_done(self, t0_ms: float, *, timeout_s: float | None = None, need_run: bool = True,
                  min_charts: int = 0) -> dict:
        """Wait until a run that began after t0 is done (see DONE_JS); raises playwright's TimeoutError. A run counts as
        begun when the page's script state shows it or the server reports it finished."""
        timeout_s = timeout_s or self.args.timeout
        if need_run:  # a step that starts no run (a no-op) fails fast instead of after the whole timeout
            deadline = time.monotonic() + min(timeout_s, 60)
            while not (self.page.evaluate(STARTED_JS, [t0_ms]) or self.recorder.finished_since(t0_ms)):
                if time.monotonic() > deadline:
                    from playwright.sync_api import TimeoutError as PlaywrightTimeout

                    raise PlaywrightTimeout(f"no run started within {min(timeout_s, 60):.0f} s")
                self.page.wait_for_timeout(50)
            # Seen by the server only: the page's state never flipped, so DONE_JS must not wait for it to.
            need_run = self.page.evaluate(STARTED_JS, [t0_ms])
        handle = self.page.wait_for_function(DONE_JS, arg=[t0_ms, self.args.quiet_ms, need_run, min_charts],
                                             timeout=timeout_s * 1000, polling=50)
        return handle.json_value()

    def measure(self, what: str, action, *, timeout_s: float | None = None, need_run: bool = True,
                t0: float | None = None) -> Phase:
        """Run `action`, then wait for the page to be done; the Phase has the seconds and the frames received."""
        from playwright.sync_api import Error as PlaywrightError

        phase = Phase(what)
        self.recorder.phase = phase
        wall = time.perf_counter()
        try:
            start = time.time() * 1000 if t0 is None else t0
            action_t0 = action()
            if isinstance(action_t0, (int, float)):  # the action says when the timed part began (after a menu opened)
                start = action_t0
            done = self.wait_done(start, timeout_s=timeout_s, need_run=need_run)
            sent = len({key for key, _, _ in phase.charts})
            if done["charts"] < sent:  # the browser had not yet shown every chart the server sent: wait for them
                done = self.wait_done(start, timeout_s=timeout_s, need_run=need_run, min_charts=sent)
            phase.seconds = (done["end"] - start) / 1000
            phase.extra["charts_on_page"] = done["charts"]
            phase.extra["first_chart_at"] = done["firstChartAt"]
            phase.extra["first_figure_at"] = done["firstFigureAt"]
            phase.extra["start"] = start
        except PlaywrightError as e:
            phase.error = str(e).splitlines()[0][:200]
        finally:
            self.recorder.phase = None
        phase.problems = self.problems()
        phase.extra["wall"] = time.perf_counter() - wall
        return phase

    def problems(self) -> list[str]:
        """Exceptions and error boxes on the page now (their first line)."""
        out = []
        for selector, kind in (('[data-testid="stException"]', "exception"),
                               ('[data-testid="stAlertContentError"]', "error")):
            boxes = self.page.locator(selector)
            for i in range(boxes.count()):
                try:
                    text = boxes.nth(i).inner_text(timeout=2000).strip().splitlines()
                except Exception:
                    text = []
                out.append(f"{kind}: {(text[0] if text else '')[:160]}")
        return out

    # -- navigation
    def goto(self, url: str, what: str, **kwargs) -> Phase:
        def action():
            self.page.goto(url, wait_until="commit")

        return self.measure(what, action, **kwargs)

    def open_page(self, path: str, what: str, **kwargs) -> Phase:
        """Open a page from the sidebar's navigation, in this session (raises LookupError without such a link)."""
        links = self.page.locator('[data-testid="stSidebarNav"] a')
        hrefs = links.evaluate_all("els => els.map(e => e.getAttribute('href') || '')")
        for i, href in enumerate(hrefs):
            if urllib.parse.urlparse(href).path.rstrip("/").rsplit("/", 1)[-1] == path:
                link = links.nth(i)
                return self.measure(what, link.click, **kwargs)
        raise LookupError(f"no sidebar link to /{path}")

    # -- widgets, found by label
    def widget(self, label: str, where: str = "stMain"):
        """The first widget in `where` whose label starts with `label`, and its kind (its data-testid)."""
        scope = self.page.locator(f'[data-testid="{where}"]')
        label_re = re.compile(r"^\s*" + re.escape(label))
        candidates = scope.locator(", ".join(f'[data-testid="{k}"]' for k in WIDGET_KINDS)).filter(
            has=self.page.locator('[data-testid="stWidgetLabel"]', has_text=label_re))
        try:  # just after a run the page may still be rendering its widgets
            candidates.first.wait_for(state="attached", timeout=5_000)
        except Exception:  # noqa: BLE001 - not on this page (any more)
            return None, None
        found = candidates.first
        return found, found.get_attribute("data-testid")

    def step(self, control: Control) -> Phase:
        """Move a control one step (the next option, one slider notch, the other radio option, a click)."""
        if control.button:
            button = self.page.locator('[data-testid="stMain"]').get_by_role("button", name=control.label, exact=True)
            if button.count() == 0:
                return Phase(control.title, error="not found")
            phase = self.measure(control.title, button.first.click)
            if control.then:  # undo (untimed), e.g. "Clear continuation"
                undo = self.page.locator('[data-testid="stMain"]').get_by_role("button", name=control.then)
                if undo.count():
                    self.measure("undo", undo.first.click)
            return phase
        widget, kind = self.widget(control.label)
        if widget is None:
            return Phase(control.title, error="not found")
        if kind == "stSlider":
            thumb = widget.locator('input[type="range"]').first
            value, high = (float(thumb.get_attribute(a)) for a in ("value", "max"))
            key = "ArrowRight" if value < high else "ArrowLeft"
            thumb.focus()
            return self.measure(control.title, lambda: thumb.press(key))
        if kind in ("stSelectbox",):
            return self.measure(control.title, lambda: self._select_next(widget))
        if kind == "stRadio":
            other = widget.locator('[data-testid="stRadioOption"]:not([data-selected="true"])').first
            return self.measure(control.title, other.click)
        if kind in ("stCheckbox", "stToggle"):
            return self.measure(control.title, widget.locator("label").first.click)
        if kind == "stNumberInput":
            up = widget.locator('[data-testid="stNumberInputStepUp"]')
            return self.measure(control.title, up.click)
        return Phase(control.title, error=f"cannot drive a {kind}")

    def _open_listbox(self, widget):
        """Open a selectbox's menu; returns its listbox (the element its combobox input controls)."""
        entry = widget.locator('input[role="combobox"]').first
        ways = [lambda: (entry.focus(), self.page.keyboard.press("ArrowDown")),
                lambda: widget.locator("button").first.click(),
                lambda: (entry.click(), self.page.keyboard.press("ArrowDown"))]
        for way in ways:
            way()
            try:
                self.page.wait_for_function(
                    "e => e.getAttribute('aria-expanded') === 'true'", arg=entry.element_handle(), timeout=3_000,
                    polling=50)
                break
            except Exception:  # noqa: BLE001 - a click that landed while the page was busy: try the next way
                self.page.keyboard.press("Escape")
        listbox_id = entry.get_attribute("aria-controls")
        listbox = self.page.locator(f'[id="{listbox_id}"]' if listbox_id else '[role="listbox"] >> visible=true').first
        listbox.wait_for(state="visible", timeout=10_000)
        return listbox

    def _select_next(self, widget) -> float:
        """Open a selectbox and pick a neighbour of the selected option (the next one; the previous one at the end)
        with the keyboard: returns the time (ms) of the Enter, which starts the clock.

        Long menus are virtualized (only some options exist in the DOM), so this follows the highlighted option's
        text rather than positions: opened with ArrowDown, the menu highlights the option after the selected one."""
        current = widget.locator('input[role="combobox"]').first.input_value()
        listbox = self._open_listbox(widget)
        focused = listbox.locator('[role="option"][data-focused]')

        def highlighted() -> str | None:
            return focused.first.inner_text().strip() if focused.count() else None

        for key in ("ArrowDown", "ArrowUp", "ArrowUp"):
            if highlighted() not in (None, current):
                break
            self.page.keyboard.press(key)
        t0 = time.time() * 1000
        self.page.keyboard.press("Enter")
        return t0

    def select_option(self, label: str, option: str, where: str = "stMain") -> float:
        widget, kind = self.widget(label, where)
        if kind != "stSelectbox":
            raise LookupError(f"no selectbox labelled {label!r}")
        listbox = self._open_listbox(widget)
        choice = listbox.locator('[role="option"]', has_text=option)
        if choice.count() == 0:  # a long list may not have rendered it: type to filter
            widget.locator("input").first.fill(option)
            choice = listbox.locator('[role="option"]', has_text=option)
        t0 = time.time() * 1000
        choice.first.click()
        return t0

    def set_prompt(self, text: str) -> Phase:
        box = self.page.locator('[data-testid="stSidebar"] textarea').first

        def action():
            box.fill(text)
            t0 = time.time() * 1000
            box.press("Control+Enter")  # Streamlit applies a text area on Ctrl+Enter or blur
            return t0

        return self.measure("set prompt", action)

    def choose_model(self, source: str) -> Phase:
        """In the sidebar: "Checkpoint" -> "Hub repo id or local folder…", then type `source` and press Enter.
        The Phase is the time from Enter until the current page is done with the new model."""
        self.measure("choose other source", lambda: self.select_option("Checkpoint", OTHER_SOURCE, "stSidebar"))
        entry = self.page.locator('[data-testid="stSidebar"] [data-testid="stTextInput"]').filter(
            has_text=CUSTOM_SOURCE_LABEL).locator("input").first

        def action():
            entry.fill(source)
            t0 = time.time() * 1000
            entry.press("Enter")
            return t0

        return self.measure("first page with the model", action, timeout_s=max(self.args.timeout, 600))

    def screenshot(self, name: str) -> None:
        if self.args.screenshots:
            folder = Path(self.args.screenshots)
            folder.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


# ------------------------------------------------------------------------------------------------------------ runs


def fmt_s(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def fmt_kb(n: int | None) -> str:
    return "—" if not n else f"{n / 1024:,.0f}"


def median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def describe(phase: Phase) -> str:
    parts = [f"{phase.what}: {fmt_s(phase.seconds)} s"]
    if os.environ.get("BENCH_UI_DEBUG") and "wall" in phase.extra:
        parts.append(f"[step took {phase.extra['wall']:.1f} s]")
    if phase.bytes_total:
        parts.append(f"{phase.bytes_total / 1024:,.0f} KB received")
    largest = phase.largest_chart
    refs = sum(ref for _, _, ref in phase.charts)
    if phase.charts:
        parts.append(f"{len(phase.charts)} charts" + (f" ({refs} re-sent by reference)" if refs else "")
                     + (f", largest {largest[0]} {largest[1] / 1024:,.0f} KB" if largest else ""))
    if phase.error:
        parts.append(f"FAILED: {phase.error}")
    if phase.problems:
        parts.append("PAGE SHOWS " + "; ".join(phase.problems[:3]))
    return "  " + ", ".join(parts)


@dataclass
class PageResult:
    spec: PageSpec
    opens: list[Phase] = field(default_factory=list)
    revisits: list[Phase] = field(default_factory=list)
    controls: dict[str, list[Phase]] = field(default_factory=dict)


@dataclass
class ModelRun:
    name: str
    source: str
    prompt_tokens: str
    first: list[Phase] = field(default_factory=list)
    pages: dict[str, PageResult] = field(default_factory=dict)


def first_figures(phase: Phase, since: str, t0_ms: float) -> list[Phase]:
    """When the first figure (the Model page's diagram) and the first Plotly chart were on screen, from t0."""
    return [Phase(f"{since} → first {what} on `/`", seconds=(phase.extra[key] - t0_ms) / 1000)
            for what, key in (("figure", "first_figure_at"), ("chart", "first_chart_at")) if phase.extra.get(key)]


def run_model(browser: Browser, server: Server, args, name: str, source: str | None, *, first_session: bool) -> ModelRun:
    """Open every selected page `rounds` times on fresh prompts (cold: the traces are new) and once more each round
    on the same prompt (revisit: cached), and move each page's controls --repeats times in the first round."""
    rounds = args.rounds if args.rounds else (2 if source is None else 1)
    # The same story text for both models, cut to --prompt-tokens tokens of the model's own tokenizer.
    tokenizer = TOKENIZER_DIR / "tokenizer.json" if source else args.app_dir / BUNDLED_TOKENIZER
    prompts = [make_prompt(args.prompt_tokens, r, tokenizer) for r in range(rounds)]
    run = ModelRun(name, source or "stories260K", f"{args.prompt_tokens} tokens")
    session = browser.session()
    try:
        url = server.url + "/"
        if first_session:  # the very first page of a fresh server, with the bundled model and the default prompt
            phase = session.goto(url, "server ready → first page `/` done", t0=server.ready_at * 1000,
                                 timeout_s=max(args.timeout, 300))
            run.first += first_figures(phase, "server ready", server.ready_at * 1000)
            run.first.append(phase)
            # What a class sees: the teacher started the server a while ago, a student opens the app in a new browser.
            student = browser.session()
            try:
                phase = student.goto(url, "new browser, warm server → first page `/` done")
                run.first += first_figures(phase, "new browser, warm server", phase.extra.get("start", 0))
            finally:
                student.close()
        else:
            phase = session.goto(url, "open `/` (bundled model)")
        run.first.append(phase)
        if source is not None:
            # The prompt first (cheap on the bundled model), then the model: the Model page of the new model.
            run.first.append(session.set_prompt(make_prompt(args.prompt_tokens, 99, tokenizer)))
            run.first.append(session.choose_model(source))
        for phase in run.first:
            print(describe(phase), flush=True)
        session.screenshot(f"{name}-first")
        specs = [PAGE_NAMES[p] for p in args.pages]
        for r, prompt in enumerate(prompts):
            # Type the round's prompt on a page that traces nothing, so every page's open below is a cold one.
            session.open_page("lab", "open lab")
            phase = session.set_prompt(prompt)
            print(f"round {r + 1}/{rounds}: prompt set ({len(prompt)} characters)" + (
                f" FAILED: {phase.error}" if phase.error else ""), flush=True)
            for spec in specs:
                if not server.alive():
                    raise RuntimeError(f"the server exited ({server.proc.returncode}); see {server.log_path}")
                result = run.pages.setdefault(spec.path, PageResult(spec))
                phase = session.open_page(spec.path, f"open {spec.title}")
                result.opens.append(phase)
                print(describe(phase), flush=True)
                session.screenshot(f"{name}-{spec.path or 'model'}-{r}")
                if r == 0 and not args.no_controls:
                    for control in spec.controls:
                        if control.slow and not args.train_lab:
                            continue
                        steps = 1 if control.button else args.repeats
                        for _ in range(steps):
                            phase = session.step(control)
                            result.controls.setdefault(control.title, []).append(phase)
                            print("  " + describe(phase).strip(), flush=True)
                            if phase.error:
                                break
            for spec in specs:  # again, on the same prompt: everything is cached on the server
                phase = session.open_page(spec.path, f"revisit {spec.title}")
                run.pages[spec.path].revisits.append(phase)
                print(describe(phase), flush=True)
    finally:
        session.close()
    return run


def summary_table(run: ModelRun) -> str:
    lines = [f"**{run.name}** ({run.source}; prompt {run.prompt_tokens})", "",
             "| page | open (s) | revisit (s) | control → latency (s) | largest chart (KB) |",
             "|---|---|---|---|---|"]
    for result in run.pages.values():
        open_s = median([p.seconds for p in result.opens])
        revisit_s = median([p.seconds for p in result.revisits])
        controls = []
        for title, phases in result.controls.items():
            if phases and all(p.error == "not found" for p in phases):
                controls.append(f"{title}: not found")
                continue
            controls.append(f"{title} {fmt_s(median([p.seconds for p in phases]))}")
        largest = max((p.largest_chart for p in result.opens + result.revisits if p.largest_chart),
                      key=lambda kv: kv[1], default=None)
        problems = sorted({x for p in result.opens for x in p.problems})
        page = result.spec.title + (" ⚠ " + "; ".join(problems)[:80] if problems else "")
        lines.append(f"| {page} | {fmt_s(open_s)} | {fmt_s(revisit_s)} | {'; '.join(controls) or '—'} | "
                     f"{fmt_kb(largest[1]) + f' ({largest[0]})' if largest else '—'} |")
    return "\n".join(lines)


def run_long(browser: Browser, server: Server, args, source: str) -> list[dict]:
    """A prompt of --long tokens: open each page; the server's peak memory growth and what the page showed."""
    prompt = make_prompt(args.long, variant=0)
    warm = browser.session()  # load the model first, so the pages' growth is what they add
    phase = warm.goto(f"{server.url}/?" + urllib.parse.urlencode({"model": source, "prompt": "Once upon a time"}),
                      "load the model (short prompt)", timeout_s=max(args.timeout, 600))
    print(describe(phase), flush=True)
    warm.close()
    budget = int(args.memory_budget_gb * 2**30)
    limit = server.limit_address_space(budget)
    print(f"server address space capped at {limit / 2**30:.1f} GiB (now + {args.memory_budget_gb:g} GiB)" if limit
          else "could not cap the server's address space", flush=True)
    rows = []
    session = browser.session()
    try:
        query = urllib.parse.urlencode({"model": source, "prompt": prompt})
        session.goto(f"{server.url}/lab?{query}", "open lab with the long prompt")
        for name in args.pages:
            spec = PAGE_NAMES[name]
            if not server.alive():
                rows.append({"page": spec.title, "error": "server not running"})
                continue
            before = server.memory()
            can_reset = server.reset_peak()
            base = server.memory()["VmRSS"]
            phase = session.open_page(spec.path, f"open {spec.title}", timeout_s=args.long_timeout)
            if server.alive():
                after = server.memory()
                peak = after["VmHWM"] - base if can_reset else None
                retained = after["VmRSS"] - before["VmRSS"]
            else:
                after, peak, retained = {}, None, None
                phase.problems.append(f"server exited with {server.proc.returncode}")
            row = {"page": spec.title, "seconds": phase.seconds, "peak_growth": peak, "retained": retained,
                   "rss_after": after.get("VmRSS"), "error": phase.error, "problems": phase.problems}
            rows.append(row)
            print(describe(phase) + (f"; peak +{peak / 2**20:,.0f} MiB" if peak is not None else "")
                  + (f", RSS {after['VmRSS'] / 2**20:,.0f} MiB" if after else ""), flush=True)
            session.screenshot(f"long-{name}")
            if phase.error:  # a timed-out page may still be running: start a fresh session for the next one
                session.close()
                session = browser.session()
                session.goto(f"{server.url}/lab?{query}", "open lab with the long prompt")
    finally:
        session.close()
    return rows


def long_table(rows: list[dict], tokens: int) -> str:
    mib = lambda n: "—" if n is None else f"{n / 2**20:,.0f}"  # noqa: E731
    lines = [f"Prompt of {tokens} Qwen3 tokens:", "",
             "| page | open (s) | peak RSS growth (MiB) | RSS kept after (MiB) | the page shows |", "|---|---|---|---|---|"]
    for row in rows:
        shown = "; ".join(row.get("problems") or []) or ("timed out / failed: " + row["error"] if row.get("error")
                                                         else "no exception, no error box")
        lines.append(f"| {row['page']} | {fmt_s(row.get('seconds'))} | {mib(row.get('peak_growth'))} | "
                     f"{mib(row.get('retained'))} | {shown[:160]} |")
    return "\n".join(lines)


def run_sessions(browser: Browser, server: Server, args, source: str) -> dict:
    """N sessions open the Model page on N different prompts at once, then N others one after another."""
    n = args.sessions
    page = PAGE_NAMES[args.pages[0]] if args.pages and args.pages != [p for p in PAGE_NAMES] else PAGE_NAMES["model"]

    def url(variant: int) -> str:
        query = urllib.parse.urlencode({"model": source, "prompt": make_prompt(args.prompt_tokens, variant)})
        return f"{server.url}/{page.path}?{query}"

    warm = browser.session()
    print(describe(warm.goto(url(90), "warm-up (loads the model)", timeout_s=max(args.timeout, 600))), flush=True)
    warm.close()

    sessions = [browser.session() for _ in range(n)]
    start = time.time() * 1000
    for i, s in enumerate(sessions):  # start all, then wait for each: the server runs them side by side
        s.recorder.phase = None
        s.page.goto(url(100 + i), wait_until="commit")
    ends = []
    for i, s in enumerate(sessions):
        try:
            done = s.wait_done(start, timeout_s=max(args.timeout, 900))
            ends.append(done["end"])
            print(f"  concurrent session {i + 1}: done {(done['end'] - start) / 1000:.2f} s after the first started"
                  + (f"; PAGE SHOWS {s.problems()}" if s.problems() else ""), flush=True)
        except Exception as e:  # noqa: BLE001
            print(f"  concurrent session {i + 1} FAILED: {str(e).splitlines()[0]}", flush=True)
    concurrent = (max(ends) - start) / 1000 if len(ends) == n else None
    for s in sessions:
        s.close()

    serial_times = []
    for i in range(n):
        s = browser.session()
        phase = s.goto(url(200 + i), f"serial session {i + 1}", timeout_s=max(args.timeout, 600))
        print(describe(phase), flush=True)
        serial_times.append(phase.seconds)
        s.close()
    serial = sum(serial_times) if all(t is not None for t in serial_times) else None
    return {"sessions": n, "page": page.title, "concurrent_s": concurrent, "serial_s": serial,
            "serial_each_s": serial_times,
            "ratio": concurrent / serial if concurrent and serial else None}


# ------------------------------------------------------------------------------------------------------------ main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=["bundled", "qwen3"], default=None,
                   help="which models (default: both; qwen3 only for --long and --sessions)")
    p.add_argument("--pages", nargs="+", choices=list(PAGE_NAMES), default=None,
                   help="which explore pages, in this order (default: all nine)")
    p.add_argument("--rounds", type=int, default=None,
                   help="cold opens per page, each on a new prompt (default: 2 for bundled, 1 for qwen3)")
    p.add_argument("--repeats", type=int, default=3, help="steps per control; the median is reported (default 3)")
    p.add_argument("--no-controls", action="store_true", help="only open the pages")
    p.add_argument("--train-lab", action="store_true", help="also press the lab's 'Train both models' (slow)")
    p.add_argument("--prompt-tokens", type=int, default=128, help="prompt length in Qwen3 tokens (default 128)")
    p.add_argument("--long", type=int, metavar="T", default=None,
                   help="instead: a prompt of T Qwen3 tokens; open each page, report memory and errors")
    p.add_argument("--sessions", type=int, metavar="N", default=None,
                   help="instead: N sessions open the Model page at once vs one after another")
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
                   help=f"where the Qwen3-shaped checkpoint is built (default {DEFAULT_CHECKPOINT.relative_to(ROOT)})")
    p.add_argument("--checkpoint-dtype", choices=["bfloat16", "float32"], default="bfloat16",
                   help="the saved weights' dtype (the app computes in float32 on a CPU either way)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the checkpoint even if it exists")
    p.add_argument("--app-dir", type=Path, default=ROOT,
                   help="run the app in this folder, e.g. an export of another commit (`git archive <commit> | tar -x "
                        "-C DIR`), to compare versions with the same script (default: this repository)")
    p.add_argument("--threads", type=int, default=None,
                   help="OMP_NUM_THREADS for the server (default: torch's choice, one per core)")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for one step (default 300)")
    p.add_argument("--long-timeout", type=float, default=900, help="seconds per page in --long (default 900)")
    p.add_argument("--memory-budget-gb", type=float, default=None,
                   help="--long: cap the server's address space at its size + this (default: half of the memory available at the start)")
    p.add_argument("--quiet-ms", type=int, default=750,
                   help="a page is done when nothing changed for this long (not counted; default 750)")
    p.add_argument("--screenshots", type=Path, default=None, help="save a screenshot after each page here")
    p.add_argument("--json", type=Path, default=None, help="write all measurements here as JSON")
    args = p.parse_args(argv)
    args.app_dir = args.app_dir.resolve()
    if not (args.app_dir / "app.py").is_file():
        p.error(f"no app.py in {args.app_dir}")
    special = args.long is not None or args.sessions is not None
    if args.long is not None and args.sessions is not None:
        p.error("--long and --sessions are separate runs")
    args.models = args.models or (["qwen3"] if special else ["bundled", "qwen3"])
    args.pages = args.pages or ([p for p in PAGE_NAMES if p != "lab"] if args.long else list(PAGE_NAMES))
    if args.sessions is not None and args.pages == list(PAGE_NAMES):
        args.pages = ["model"]
    if args.memory_budget_gb is None:
        available = 8 * 2**30
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
        except OSError:
            pass
        args.memory_budget_gb = round(0.5 * available / 2**30, 1)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        sys.exit("playwright is needed: python -m pip install playwright (from PyPI; chromium comes from apt)")
    source = None
    if "qwen3" in args.models:
        source = str(build_checkpoint(args.checkpoint.resolve(), dtype=args.checkpoint_dtype, rebuild=args.rebuild))
    env_extra = {"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}
    server = Server(args.app_dir, env_extra, ROOT / "artifacts" / "bench-ui-server.log")
    threads = server_torch_threads(server.env)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.app_dir, capture_output=True,
                            text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=args.app_dir,
                           capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    app = "" if args.app_dir == ROOT else f"app in {args.app_dir}, "
    header = (f"{app}commit {commit.strip() or '?'}{' (with uncommitted changes)' if dirty else ''}; "
              f"{os.cpu_count()} CPUs, "
              f"server torch threads {threads}; load average {load:.1f} at the start (other processes may share the "
              f"CPU: the times include their share)")
    print(header, flush=True)
    results: dict = {"header": header, "args": {k: str(v) for k, v in vars(args).items()}}
    tables = []
    browser = Browser(args)
    try:
        server.start()
        if args.long is not None:
            model = source if args.models == ["qwen3"] else "stories260K"
            rows = run_long(browser, server, args, model)
            results["long"] = rows
            tables.append(long_table(rows, args.long))
        elif args.sessions is not None:
            model = source if args.models == ["qwen3"] else "stories260K"
            out = run_sessions(browser, server, args, model)
            results["sessions"] = out
            tables.append(f"{out['sessions']} sessions opening {out['page']} ({args.prompt_tokens}-token prompts): "
                          f"at once {fmt_s(out['concurrent_s'])} s, one after another {fmt_s(out['serial_s'])} s "
                          f"(each {', '.join(fmt_s(t) for t in out['serial_each_s'])}); concurrent / serial = "
                          f"{out['ratio']:.2f}" if out["ratio"] else "sessions: a run failed, no ratio")
        else:
            first = True
            for name in args.models:
                print(f"\n== {name} ==", flush=True)
                run = run_model(browser, server, args, name, None if name == "bundled" else source,
                                first_session=first)
                first = False
                for phase in run.first:
                    if phase.what != "set prompt":
                        tables.append(f"{phase.what}: {fmt_s(phase.seconds)} s")
                tables.append(summary_table(run))
                results.setdefault("models", []).append({
                    "name": run.name, "source": run.source,
                    "first": [vars(p) for p in run.first],
                    "pages": {path: {"opens": [vars(p) for p in r.opens], "revisits": [vars(p) for p in r.revisits],
                                     "controls": {k: [vars(p) for p in v] for k, v in r.controls.items()}}
                              for path, r in run.pages.items()},
                })
    finally:
        browser.close()
        server.stop()
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n# Results ({header}; load average {load_end:.1f} at the end; "
          f"{(time.perf_counter() - started) / 60:.1f} minutes)\n", flush=True)
    print("\n\n".join(tables))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
