"""A class on one server: N students, each in their own headless-Chromium context, open one workshop link and work
through its pages for M minutes (open a page, move a slider, type a new prompt), with think time between actions.

    python -m benchmarks.bench_classroom                       # 10 students, 3 minutes, the bundled model
    python -m benchmarks.bench_classroom --model qwen3         # the Qwen3-0.6B-shaped checkpoint (built once)
    python -m benchmarks.bench_classroom --students 3 --minutes 0.5   # the CI smoke run

It starts the real server with a class configuration (explorer/server_config.py) and prints, measured in this one
run: the latency of each kind of action (from the click or key press until the rerun finished and every chart was
drawn) as p50 and p95, the errors (exception boxes, error alerts, timeouts), the server's resident memory over the
run, and whether any student ever saw another's prompt. Every student's prompt carries their own marker word; after
each action the bench reads back the prompt box and the address bar's prompt, which must be the student's own.
"""

import argparse
import asyncio
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import TimeoutError as PlaywrightTimeout

from benchmarks.bench_ui import (CHROMIUM_ARGS, DEFAULT_CHECKPOINT, DONE_JS, INIT_SCRIPT, ROOT, STARTED_JS, Server,
                                 build_checkpoint)
from explorer.site_map import PAGES
from explorer.workshop import Workshop, link, make_token

SECRET = "bench-classroom-secret-0123456789"
WORKSHOP_PAGES = ("model", "attention", "rope", "norms", "swiglu", "logit_lens")
TITLES = {page.name: page.title for page in PAGES}
STORY = "Once upon a time, {name} found a little red ball in the garden and wanted to"
TEACHER_PROMPT = STORY.format(name="the teacher")  # the workshop link's starting prompt
ACTION_TIMEOUT_S = 300
# An input that shows no sign of a run within this long was lost: the student does it once more, as a person would.
LOST_AFTER_S = 15
SETTLE_S = 30  # how long the prompt box may take to show the prompt after a run, on a machine this busy
# Each student's page is in front of its student: Chromium must not throttle the timers of the pages it considers in
# the background (Streamlit's widgets send their values from timers).
FOREGROUND = ["--disable-background-timer-throttling", "--disable-renderer-backgrounding",
              "--disable-backgrounding-occluded-windows"]


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # inputs that started no run, done again
    cross_talk: list[str] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, bytes)


def write_config(folder: Path, checkpoint: Path | None) -> Path:
    models = f'folder = "{checkpoint.parent}"\n' if checkpoint else ""
    path = folder / "classroom.toml"
    path.write_text(f'pages = {list(WORKSHOP_PAGES)!r}\n'.replace("'", '"')
                    + f'[models]\nbundled = ["stories260K"]\n{models}[links]\nsecret = "{SECRET}"\nrequired = true\n')
    return path


async def started(page, t0_ms: float, evidence: str) -> bool:
    """Whether, within LOST_AFTER_S, a run began after t0 or the page shows `evidence` (a JS expression) of one.

    A busy browser can take the messages that a short run starts and ends with in one go, and then the page's
    script state never visibly changes: what the run did (the address bar's prompt, another page's title) shows it."""
    try:
        await page.wait_for_function(f"([t0]) => ({STARTED_JS})([t0]) || ({evidence})", arg=[t0_ms],
                                     timeout=LOST_AFTER_S * 1000, polling=50)
        return True
    except PlaywrightTimeout:
        return False


async def wait_done(page, t0_ms: float, quiet_ms: int) -> float:
    """Seconds from t0 until the rerun it started had finished and every chart was drawn (bench_ui's DONE_JS)."""
    done = await page.wait_for_function(DONE_JS, arg=[t0_ms, quiet_ms, False, 0], timeout=ACTION_TIMEOUT_S * 1000,
                                        polling=50)
    return ((await done.json_value())["end"] - t0_ms) / 1000


class Student:
    def __init__(self, index: int, context, url: str, results: Results, args):
        self.name = f"Zed{index:02d}"  # the marker word: one token-run no other student's prompt contains
        self.context, self.url, self.results, self.args = context, url, results, args
        self.prompt = TEACHER_PROMPT
        self.rng = random.Random(index)
        self.page = None
        self.where = WORKSHOP_PAGES[0]
        self.typed = 0

    async def act(self, kind: str, action) -> None:
        """Do `action`, wait until the page is done, record the latency, and check the page for errors and for
        another student's prompt."""
        try:
            t0 = await self.page.evaluate("Date.now()")
            evidence = await action()
            if not await started(self.page, t0, evidence):
                self.results.lost.append(f"{self.name} {kind} on {self.where}")
                evidence = await action()
                if not await started(self.page, t0, evidence):
                    raise PlaywrightTimeout(f"no run started within {LOST_AFTER_S} s, twice")
            seconds = await wait_done(self.page, t0, self.args.quiet_ms)
        except Exception as e:  # noqa: BLE001  a timeout or a page that went away: counted, and the student goes on
            self.results.errors.append(f"{self.name} {kind} on {self.where}: {type(e).__name__}: "
                                       f"{(str(e).splitlines() or [''])[0][:120]}")
            return
        self.results.latencies[kind].append(seconds)
        problems = await self.page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count()
        if problems:
            self.results.errors.append(f"{self.name} {kind}: an error box on {self.where}")
        await self.check_own_prompt(kind)

    async def check_own_prompt(self, kind: str) -> None:
        """The prompt box and the address bar must come to show this student's prompt (the box is filled a moment
        after the run ends): another student's marker in either is cross-talk; anything else, an error."""
        from playwright.async_api import expect

        box = self.page.locator('[data-testid="stSidebar"] textarea')
        try:
            await expect(box).to_have_value(self.prompt, timeout=SETTLE_S * 1000)
            await self.page.wait_for_function("p => new URLSearchParams(location.search).get('prompt') === p",
                                              arg=self.prompt, timeout=SETTLE_S * 1000)
            return
        except (AssertionError, PlaywrightTimeout):
            shown = await box.input_value()
            address = await self.page.evaluate("new URLSearchParams(location.search).get('prompt')") or ""
        others = set(re.findall(r"Zed\d\d", shown + address)) - {self.name}
        where = self.results.cross_talk if others else self.results.errors
        where.append(f"{self.name} after {kind}: the prompt box shows {shown!r}, the address bar {address!r}")

    async def open_link(self) -> None:
        self.page = await self.context.new_page()
        self.page.set_default_timeout(ACTION_TIMEOUT_S * 1000)
        await self.act("open the workshop link", self.load)
        await self.act("type a new prompt", self.type_prompt)  # the student's own prompt, with their marker

    async def load(self) -> str:
        await self.page.goto(self.url)
        await self.page.wait_for_selector('[data-testid="stMain"] h1')  # the first run has begun drawing the page
        return "true"

    async def type_prompt(self) -> str:
        self.typed += 1  # each prompt differs from the one before, so that it starts a run
        self.prompt = STORY.format(name=self.name) + f" count to {self.typed}."
        box = self.page.locator('[data-testid="stSidebar"] textarea')
        await box.fill(self.prompt)
        await box.press("Control+Enter")
        return f"new URLSearchParams(location.search).get('prompt') === {json.dumps(self.prompt)}"

    async def open_page(self) -> str:
        self.where = self.rng.choice([name for name in WORKSHOP_PAGES if name != self.where])
        title = self.page.locator('[data-testid="stMain"] h1').first
        before = await title.inner_text() if await title.count() else ""
        await self.page.locator('[data-testid="stSidebarNav"] a', has_text=TITLES[self.where]).first.click()
        return (f"(document.querySelector('[data-testid=\"stMain\"] h1') || {{}}).innerText !== "
                f"{json.dumps(before)}")

    async def move_slider(self) -> str:
        thumb = self.page.locator('[data-testid="stMain"] [data-testid="stSlider"] input[type="range"]').first
        now, top = [float(await thumb.get_attribute(name)) for name in ("value", "max")]
        await thumb.focus()
        await thumb.press("ArrowLeft" if now >= top else "ArrowRight")
        return "window.__bench.chartAt >= t0"  # every page's first slider redraws a chart

    async def run(self, until: float) -> None:
        await self.open_link()
        while time.monotonic() < until:
            await asyncio.sleep(self.rng.uniform(*self.args.think))
            has_slider = await self.page.locator('[data-testid="stMain"] [data-testid="stSlider"]').count()
            choice = self.rng.random()
            if choice < 0.45:
                await self.act("open a page", self.open_page)
            elif choice < 0.85 and has_slider:
                await self.act("move a slider", self.move_slider)
            else:
                await self.act("type a new prompt", self.type_prompt)


def sample_rss(server: Server, results: Results, stop: threading.Event, start: float) -> None:
    while not stop.wait(2.0):
        if server.alive():
            results.rss.append((time.monotonic() - start, server.memory()["VmRSS"]))


async def run_class(url: str, args, results: Results) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS + FOREGROUND)
        contexts = []
        for _ in range(args.students):
            context = await browser.new_context(viewport={"width": 1400, "height": 1000})
            await context.add_init_script(INIT_SCRIPT)
            contexts.append(context)
        until = time.monotonic() + args.minutes * 60
        students = [Student(i, c, url, results, args) for i, c in enumerate(contexts)]
        await asyncio.gather(*(s.run(until) for s in students))
        await browser.close()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def report(results: Results, args, model: str, seconds: float) -> None:
    print(f"\n{args.students} students, {args.minutes:g} min, think time {args.think[0]:g}-{args.think[1]:g} s, "
          f"{model}; the run took {seconds:.0f} s\n")
    print("| action | count | p50 (s) | p95 (s) |\n|---|---:|---:|---:|")
    for kind, values in sorted(results.latencies.items()):
        print(f"| {kind} | {len(values)} | {statistics.median(values):.2f} | {percentile(values, 95):.2f} |")
    rss = [b for _, b in results.rss]
    if rss:
        print(f"\nserver RSS: {rss[0] / 2**20:,.0f} MiB at the first sample, peak {max(rss) / 2**20:,.0f} MiB, "
              f"{rss[-1] / 2**20:,.0f} MiB at the end ({len(rss)} samples, every 2 s)")
    print(f"inputs that showed no sign of a run within {LOST_AFTER_S} s (done again): {len(results.lost)}")
    for line in results.lost[:20]:
        print("  " + line)
    print(f"errors: {len(results.errors)}")
    for line in results.errors[:20]:
        print("  " + line)
    print("cross-talk: " + ("none" if not results.cross_talk else f"{len(results.cross_talk)} cases"))
    for line in results.cross_talk[:20]:
        print("  " + line)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--think", type=float, nargs=2, default=(2.0, 6.0), metavar=("MIN_S", "MAX_S"),
                        help="each student waits a random time in this range between actions")
    parser.add_argument("--model", choices=["bundled", "qwen3"], default="bundled",
                        help="bundled: stories260K; qwen3: a Qwen3-0.6B-shaped random checkpoint with the real "
                             "Qwen3 tokenizer (built once into artifacts/)")
    parser.add_argument("--quiet-ms", type=int, default=300, help="a page is done when nothing changed for this long")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not shutil.which("chromium"):
        sys.exit("Debian's chromium is needed (apt-get install chromium); this script never runs playwright install.")
    checkpoint = build_checkpoint(DEFAULT_CHECKPOINT) if args.model == "qwen3" else None
    model = checkpoint.name if checkpoint else "stories260K"
    with tempfile.TemporaryDirectory() as folder:
        server = Server(ROOT, {"MBE_CONFIG": str(write_config(Path(folder), checkpoint))}, Path(folder) / "server.log")
        server.start()
        url = link(server.url, make_token(Workshop(model, TEACHER_PROMPT, WORKSHOP_PAGES), SECRET))
        results, stop, start = Results(), threading.Event(), time.monotonic()
        sampler = threading.Thread(target=sample_rss, args=(server, results, stop, start), daemon=True)
        sampler.start()
        try:
            asyncio.run(run_class(url, args, results))
        finally:
            stop.set()
            sampler.join()
            server.stop()
    report(results, args, model, time.monotonic() - start)
    return 1 if results.cross_talk else 0


if __name__ == "__main__":
    sys.exit(main())
