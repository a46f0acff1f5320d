"""What the page tests share: the app opened on a page under AppTest, and the charts it drew, read back."""

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app.py"
OTHER_SOURCE = "Hub repo id or local folder…"  # app.py's sidebar entry for a folder or Hub id


def open_page(page: str, source: Path | str | None = None) -> AppTest:
    """The app on `page` ("pages/<name>.py"), with the bundled model or, chosen through the sidebar, a local
    checkpoint folder or Hub id."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    if source is not None:
        at.selectbox(key="model_choice").set_value(OTHER_SOURCE).run()
        at.text_input(key="model_custom").set_value(str(source)).run()
    at.switch_page(page)
    return at.run()


def chart_specs(at: AppTest) -> list[dict]:
    """The Plotly JSON of every chart on the page, in page order."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def chart_titles(at: AppTest) -> list[str]:
    """Every chart's title, "" for a chart without one."""
    return [spec["layout"].get("title", {}).get("text", "") for spec in chart_specs(at)]


def array(value) -> np.ndarray:
    """A plotly JSON array of numbers: a list (None, plotly's gap, becomes NaN), or numpy data as {"dtype",
    "bdata" (base64), "shape"}."""
    if not isinstance(value, dict):
        return np.asarray(value, dtype=float)
    flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return flat.reshape([int(n) for n in value.get("shape", str(flat.size)).split(",")])
