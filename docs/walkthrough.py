# %% [markdown]
# # Walkthrough: a trace, an edit, a figure and an export, in Python
#
# The app's pages are thin: everything they show comes from the `model` and `explorer` packages, which work just
# as well in a notebook or a script. This file is both: run it (`python docs/walkthrough.py`, after
# `pip install -e .`), or open it as a notebook (VS Code and Jupyter with jupytext read its `# %%` cells). The tests
# run it (tests/test_docs.py), so what it shows stays true.

# %%
import tempfile
from pathlib import Path

import torch

from explorer import Edits, Trace, trace
from explorer.export import figure_csv, figure_html
from explorer.figures.attention import head_grid
from model import load_model, load_tokenizer

decoder, tok = load_model("stories260K"), load_tokenizer("stories260K")  # the bundled Llama, trained on TinyStories
prompt = "Once upon a time, there was a little cat. The cat"
ids = torch.tensor([tok.encode(prompt)])

# %% [markdown]
# ## A trace: one forward, every internal quantity by name
# `docs/capture-vocabulary.md` lists every name with its shape. `capture=` narrows what is kept (globs work).

# %%
t = trace(decoder, ids, tokenizer=tok)
print(f"{len(t.names())} names, e.g. {t.names()[:4]}")
print("tokens:", t.tokens)
top = t["logits"][0, -1].softmax(-1).topk(3)
print("next token:", [(tok.decode([i]), round(p, 3)) for p, i in zip(top.values.tolist(), top.indices.tolist())])

# %% [markdown]
# ## Grouped-query attention
# stories260K has 8 query heads sharing 4 key/value heads: `pattern_by_group` puts the query heads that read the
# same keys side by side.

# %%
grouped = t.pattern_by_group(1)  # (batch, KV heads, query heads per KV head, T, T)
print("layer 1 pattern, grouped:", tuple(grouped.shape))
rows = grouped[0].sum(-1)
assert torch.allclose(rows, torch.ones_like(rows))  # every query's weights over the keys sum to 1

# %% [markdown]
# ## Edits: change one quantity, everything downstream follows
# An `Edits` value names the common interventions; `{name: function}` replaces any captured quantity.

# %%
ablated = trace(decoder, ids, capture="logits", edits=Edits(ablate_heads={1: (2, 3)}))
silenced_mlp = trace(decoder, ids, capture="logits", edits={"layers.4.mlp.out": torch.zeros_like})


def last_token_shift(edited: Trace) -> float:
    """Total variation distance between the edited and the original next-token distributions."""
    p, q = t["logits"][0, -1].softmax(-1), edited["logits"][0, -1].softmax(-1)
    return 0.5 * float((p - q).abs().sum())


print(f"ablating layer 1's heads 2 and 3 moves {last_token_shift(ablated):.1%} of the next-token probability")
print(f"zeroing the last MLP's output moves {last_token_shift(silenced_mlp):.1%}")

# %% [markdown]
# ## A figure, and the files a teacher takes away
# `explorer.figures` builds Plotly figures from arrays (no Streamlit). `fig.show()` draws one in a notebook.

# %%
fig = head_grid(grouped[0].numpy(), t.tokens, title="Layer 1: each query head's attention, grouped by KV head")
out = Path(tempfile.mkdtemp(prefix="walkthrough-"))
(out / "layer1.html").write_text(figure_html(fig))  # opens offline: plotly.js is inside
# One row per cell: query_pos, query_token, key_pos, key_token, attention_weight, head, kv_head, under three "# "
# lines naming the model, the text and the chart (pandas.read_csv(path, skiprows=3) reads it).
(out / "layer1.csv").write_text(figure_csv(fig, model="stories260K", text=prompt))
t.save(out / "trace.safetensors")  # what the app's "Export traces" downloads
back = Trace.load(out / "trace.safetensors")
assert torch.equal(back["logits"], t["logits"]) and back.tokens == t.tokens
print(f"wrote {sorted(p.name for p in out.iterdir())} to {out}")
