"""The interface through which a forward pass exposes, and lets callers edit, its named internal quantities.

The decoder calls its capture object at every point named in the capture vocabulary
(docs/capture-vocabulary.md): `x = capture(name, x)`. The default object records nothing and returns x unchanged,
so a plain forward pays one Python call per point. The explorer's trace passes its own object into one call of
the forward; nothing is stored on the shared model, so concurrent traces of one model cannot see each other.
"""

import torch


class Capture:
    """Does nothing: the behaviour of a plain forward. Subclasses record and edit."""

    def __call__(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Sees quantity `name` and returns what the forward continues with (x itself, or an edited tensor)."""
        return x

    def wants(self, name: str) -> bool:
        """Whether `name` is recorded or edited; lets the forward skip work nobody looks at (e.g. the scores)."""
        return False

    def skip_qk_norm(self, layer: int) -> bool:
        """Whether layer `layer` should leave q and k un-normalised (a QK-norm ablation)."""
        return False

    def rope_inv_freq(self, inv_freq: torch.Tensor) -> torch.Tensor:
        """The inverse frequencies this forward rotates with (an edit may change theta or remove RoPE)."""
        return inv_freq


NO_CAPTURE = Capture()
