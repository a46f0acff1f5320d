"""What the lesson pages (pages/lesson_*.py) share: their title and intro, the claim box and the cached
experiment runners.

Like explorer/app_state.py, this is an app-state helper that calls Streamlit (st.info,
st.cache_data), so only page scripts import it. The lessons' pure computations stay in explorer/analysis/lessons.py
and their figures in explorer/figures/lessons.py.
"""

import numpy as np
import streamlit as st

from model import load_model
from training.corpus import load_corpus, split

from .analysis import lessons as analysis
from .app_state import as_text


def lesson_title(title: str, source: str) -> None:
    """The page's title, then what every lesson does, naming the loaded model."""
    st.title(title)
    st.caption(
        "Each lesson explains one block of a modern decoder, shows it at work in the loaded model "
        f"(**{as_text(source)}**, on the sidebar's prompt), and runs an experiment whose result is set beside "
        "what textbooks claim. When the two disagree, the page says so and explains why: a claim always rests on "
        "assumptions, and measuring shows which ones."
    )


def claim(text: str, sources: str) -> None:
    """A textbook claim, with the papers it comes from."""
    st.info(f"**The claim.** {text}\n\n*Sources:* {sources}.", icon=":material/menu_book:")


@st.cache_data(show_spinner="Measuring the pair's loss at every position…", max_entries=4)
def pair_losses(device: str) -> dict[tuple[str, float], np.ndarray]:
    """Mean loss per position of both pair models, with their own RoPE base and a larger one, on held-out text."""
    windows = analysis.held_out_windows(
        split(load_corpus())[1], 2 * analysis.PAIR_TRAINING_LENGTH, analysis.EXTRAPOLATION_WINDOWS
    )
    curves = {}
    for name in analysis.PAIR:
        pair_model = load_model(name, device=device, dtype="float32")
        for theta in analysis.EXTRAPOLATION_THETAS:
            curves[name, theta] = analysis.loss_by_position(pair_model, windows, theta)
    return curves
