"""The classroom load test at a small size, as a smoke test: three students for half a minute against one server.

It checks what the run reports, never how fast: every student opened the workshop link, no page showed an error box,
and no student ever saw another's prompt. Skipped where chromium or playwright is missing, like the browser tests.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]


def test_three_students_for_half_a_minute():
    pytest.importorskip("playwright.async_api")
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    run = subprocess.run([sys.executable, "-m", "benchmarks.bench_classroom", "--students", "3", "--minutes", "0.5"],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert re.search(r"^\| open the workshop link \| 3 \|", out, re.MULTILINE), out
    assert "cross-talk: none" in out and "an error box" not in out, out
    assert re.search(r"server RSS: [\d,]+ MiB at the first sample", out), out
