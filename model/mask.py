"""Which keys each query may attend to, built once per forward and shared by every layer."""

import torch


class AttentionMask:
    """The causal (and, for Mistral, sliding-window) mask of one forward's T queries at positions start.. over its
    start + T keys.

    The fused path gives SDPA `allowed`, or its is_causal flag when that says the same; the explicit path adds
    `bias(...)`, the same mask as 0 / -inf, which the first layer that asks builds and later layers reuse. One
    object per forward call, so concurrent forwards never share it.
    """

    def __init__(self, T: int, start: int, window: int | None, device):
        self.T, self.S = T, start + T
        self.allowed = allowed_keys(T, start, window, device)
        self.device = device
        self._bias: torch.Tensor | None = None

    @property
    def is_causal(self) -> bool:
        """Whether SDPA's is_causal flag stands for the mask (a fresh prompt; a single query sees every key)."""
        return self.allowed is None and self.T > 1

    def bias(self, groups: int, dtype: torch.dtype) -> torch.Tensor:
        """(groups * T, S): 0 where a query may attend and -inf where it may not, the T rows repeated `groups` times
        to match G query heads stacked along the rows. Adding it is much cheaper than a boolean masked_fill."""
        if self._bias is None or self._bias.shape[0] != groups * self.T or self._bias.dtype != dtype:
            if self.allowed is None:  # plain causal, the T queries at the end of the S keys
                bias = torch.full((self.T, self.S), float("-inf"), device=self.device).triu_(self.S - self.T + 1)
            else:
                bias = torch.zeros(self.T, self.S, device=self.device).masked_fill_(~self.allowed, float("-inf"))
            self._bias = bias.to(dtype).repeat(groups, 1)
        return self._bias


def allowed_keys(T: int, start: int, window: int | None, device) -> torch.Tensor | None:
    """Which keys each of the T queries at positions start.. may see: (T, start + T) booleans, True to attend.

    None when no tensor is needed: a fresh prompt (SDPA's is_causal) or a single new query that sees every cached
    key. Mistral's sliding window also hides keys `window` or more positions back, as transformers does.
    """
    total = start + T
    if (window is None or total <= window) and (start == 0 or T == 1):
        return None
    query_pos = torch.arange(start, total, device=device)[:, None]
    key_pos = torch.arange(total, device=device)[None, :]
    mask = key_pos <= query_pos
    if window is not None:
        mask &= key_pos > query_pos - window
    return mask
