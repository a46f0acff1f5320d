"""The app's pages as data: app.py builds its navigation from this, a server configuration and a workshop link name
pages by their `name` (the last part of the page's address), and the Class page lists them."""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PageInfo:
    section: str
    script: str  # relative to the repository root
    title: str
    icon: str

    @property
    def name(self) -> str:
        """The page's address, as Streamlit derives it from the script: pages/logit_lens.py -> "logit_lens"."""
        return Path(self.script).stem


PAGES = [
    PageInfo("Explore", "pages/model.py", "Model", ":material/account_tree:"),
    PageInfo("Explore", "pages/attention.py", "Attention", ":material/grid_on:"),
    PageInfo("Explore", "pages/rope.py", "RoPE", ":material/rotate_right:"),
    PageInfo("Explore", "pages/norms.py", "Norms", ":material/equalizer:"),
    PageInfo("Explore", "pages/swiglu.py", "SwiGLU", ":material/call_split:"),
    PageInfo("Explore", "pages/logit_lens.py", "Logit lens", ":material/visibility:"),
    PageInfo("Explore", "pages/attribution.py", "Attribution", ":material/account_balance:"),
    PageInfo("Explore", "pages/patching.py", "Patching", ":material/healing:"),
    PageInfo("Explore", "pages/gradients.py", "Gradients", ":material/south:"),
    PageInfo("Explore", "pages/generate.py", "Generate", ":material/edit_note:"),
    PageInfo("Explore", "pages/compare.py", "Llama vs Qwen3", ":material/compare:"),
    PageInfo("Explore", "pages/lab.py", "Stability lab", ":material/science:"),
    # Each lesson is a page of its own, so a teacher can share its address.
    PageInfo("Classroom", "pages/lesson_rmsnorm.py", "RMSNorm vs LayerNorm", ":material/timer:"),
    PageInfo("Classroom", "pages/lesson_kv_cache.py", "KV-cache memory", ":material/memory:"),
    PageInfo("Classroom", "pages/lesson_swiglu.py", "SwiGLU", ":material/call_split:"),
    PageInfo("Classroom", "pages/lesson_rope.py", "RoPE", ":material/rotate_right:"),
    PageInfo("Classroom", "pages/lesson_gqa.py", "GQA", ":material/grid_on:"),
    PageInfo("Classroom", "pages/lesson_qk_norm.py", "QK-norm", ":material/straighten:"),
    PageInfo("Classroom", "pages/lesson_residual.py", "The residual stream", ":material/stacked_line_chart:"),
]
# The teacher's page for workshop links: offered only by a server whose configuration has a link secret.
CLASS_PAGE = PageInfo("Teacher", "pages/workshop_links.py", "Workshop links", ":material/link:")
PAGE_NAMES = [page.name for page in PAGES]


def described(names) -> str:
    """Page names with their titles, for messages: "attention (Attention), rope (RoPE)"."""
    titles = {page.name: f"{page.section} › {page.title}" for page in PAGES}
    return ", ".join(f"{name} ({titles[name]})" for name in names)
