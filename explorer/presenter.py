"""Presenter mode: the page as slides for a projector, one figure at a time, stepped with buttons or a clicker.

A page draws its charts through app_state.show(), which asks on_slide() whether this chart is the one on screen.
The page's controls and text stay (a teacher changes the layer while the class looks), the other charts are left
out, and every font inside the figure grows. After the page has run, app.py fills the navigation bar at its top:
"Figure 2 of 5", Previous and Next (also PageUp and PageDown, the keys a presentation clicker sends); past the last
figure Next opens the next page.

Like app_state, this talks to Streamlit; only app.py and app_state import it.
"""

import streamlit as st

PRESENTER = "presenter"  # the sidebar toggle's key

# The sidebar and header tucked away, the page's prose and captions too: on a projector the figure (its title the
# one-line takeaway) and the controls that change it are the slide, and the teacher does the talking.
STYLE = ("<style>section[data-testid='stSidebar'], header[data-testid='stHeader'], [data-testid='stMain'] "
         "[data-testid='stMarkdown'], [data-testid='stMain'] [data-testid='stCaptionContainer'] {display: none;}"
         " html {font-size: 20px;}</style>")
SLIDES = "_presenter_slides"  # the chart keys of the page, in the order its last full run drew them
SLIDE = "_presenter_slide"  # page -> index of the figure on screen (-1: the last one)
COUNTS = "_presenter_counts"  # page -> how many figures its last full run had
ON_SCREEN = "_presenter_page"  # the page being presented this run
SWITCH_TO = "_presenter_switch"  # the page Next or Previous stepped onto, for app.py to open


def start_run(page: str) -> None:
    """Called by app.py before a full run of `page` in presenter mode."""
    st.session_state[ON_SCREEN] = page
    st.session_state[SLIDES] = []


def current_index(page: str) -> int:
    """The figure on screen, within the figures the page had the last time it ran (a layer change may drop one)."""
    index = st.session_state.setdefault(SLIDE, {}).get(page, 0)
    count = st.session_state.setdefault(COUNTS, {}).get(page)
    if count is None:
        return max(index, 0)
    return count - 1 if index < 0 or index >= count else index


def on_slide(key: str) -> bool:
    """Whether the chart `key` is the figure on screen; registers it among the page's figures on a full run (a
    fragment's rerun finds it already there)."""
    slides = st.session_state.setdefault(SLIDES, [])
    if key not in slides:
        slides.append(key)
    return slides.index(key) == current_index(st.session_state.get(ON_SCREEN, ""))


def scale_fonts(fig, factor: float = 1.6, *, base: int = 20) -> None:
    """Every text of `fig` larger, for the back of a classroom: the base font, the title, and each size a builder
    set explicitly (annotations such as subplot titles and head labels, cell text, colour bar and tick labels)."""
    def grow(font) -> None:
        if font is not None and font.size:
            font.size = round(font.size * factor)

    fig.update_layout(font_size=base, title_font_size=round(base * 1.3))
    for annotation in fig.layout.annotations:
        annotation.font.size = round((annotation.font.size or 12) * factor)
    for trace in fig.data:
        grow(getattr(trace, "textfont", None))
        colorbar = getattr(trace, "colorbar", None)
        if colorbar is not None:
            grow(colorbar.tickfont)
    for axis in [value for name, value in fig.layout.to_plotly_json().items() if name.startswith(("xaxis", "yaxis"))]:
        size = axis.get("tickfont", {}).get("size")
        if size:
            axis["tickfont"]["size"] = round(size * factor)
    fig.update_layout(height=max(fig.layout.height or 0, 720))


def navigation(bar, page: str, pages: list[str]) -> None:
    """Fill `bar` (a container at the top of the page) after the page ran: where we are and the two steps. `pages`:
    the names of the pages shown, in navigation order."""
    count = len(st.session_state.get(SLIDES, []))
    st.session_state.setdefault(COUNTS, {})[page] = count
    index = current_index(page)
    here = pages.index(page) if page in pages else 0

    def step(by: int) -> None:
        slides = st.session_state[SLIDE]
        if 0 <= index + by < count:
            slides[page] = index + by
        elif 0 <= here + by < len(pages):  # past either end: the neighbouring page, at its first or last figure
            slides[pages[here + by]] = 0 if by > 0 else -1
            st.session_state[SWITCH_TO] = pages[here + by]

    leave, where, previous, following = bar.columns([3, 3, 2, 2], vertical_alignment="center")
    leave.button("Leave presenter mode", icon=":material/close_fullscreen:", key="presenter_exit",
                 on_click=lambda: st.session_state.update({PRESENTER: False}))
    where.subheader(f"Figure {index + 1} of {count}" if count else "No figure on this page")
    previous.button("Previous", icon=":material/arrow_back:", key="presenter_previous", shortcut="PageUp",
                    on_click=step, args=(-1,), disabled=index == 0 and here == 0, width="stretch")
    following.button("Next", icon=":material/arrow_forward:", key="presenter_next", shortcut="PageDown",
                     on_click=step, args=(1,), disabled=index >= count - 1 and here == len(pages) - 1,
                     width="stretch")


def take_switch() -> str | None:
    """The page a step went past the end onto, once."""
    return st.session_state.pop(SWITCH_TO, None)
