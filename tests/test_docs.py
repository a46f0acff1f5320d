"""The Python the documentation shows runs: the README's snippets and docs/walkthrough.py."""

import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_snippets_run_in_order():
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:  # later snippets use the names earlier ones defined, as a reader would
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["t"].pattern_by_group(0).shape[:3] == (1, 4, 2)  # stories260K: 8 query heads over 4 KV heads
    assert namespace["pt"].last_logits.shape == (512,)


def test_walkthrough_runs_and_exports(capsys):
    namespace = runpy.run_path(str(ROOT / "docs" / "walkthrough.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert "names, e.g. ['embed'" in printed and "moves" in printed
    written = sorted(p.name for p in namespace["out"].iterdir())
    assert written == ["layer1.csv", "layer1.html", "trace.safetensors"]
