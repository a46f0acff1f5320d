"""The attention mask that one forward builds once and every layer shares."""

import pytest
import torch

from model.mask import AttentionMask


def reference_allowed(T: int, start: int, window: int | None) -> torch.Tensor:
    """By the definition: query at position p sees key j when j <= p and, with a window, j > p - window."""
    allowed = torch.zeros(T, start + T, dtype=torch.bool)
    for i in range(T):
        p = start + i
        for j in range(start + T):
            allowed[i, j] = j <= p and (window is None or j > p - window)
    return allowed


@pytest.mark.parametrize("T, start, window", [(5, 0, None), (1, 7, None), (3, 4, None), (6, 0, 3), (2, 5, 3)])
def test_bias_is_zero_where_allowed_and_minus_inf_elsewhere(T, start, window):
    mask = AttentionMask(T, start, window, "cpu")
    expected = reference_allowed(T, start, window)
    if mask.allowed is not None:
        assert torch.equal(mask.allowed, expected)
    bias = mask.bias(groups=3, dtype=torch.float32)
    assert bias.shape == (3 * T, start + T)
    for g in range(3):  # the T rows repeat once per query head of a KV group
        rows = bias[g * T : (g + 1) * T]
        assert torch.equal(rows == 0, expected) and torch.all(rows[~expected] == float("-inf"))


def test_sdpa_gets_the_causal_flag_only_where_it_means_the_same():
    assert AttentionMask(5, 0, None, "cpu").is_causal  # a fresh prompt
    assert not AttentionMask(1, 7, None, "cpu").is_causal  # one new query sees every cached key: no mask at all
    assert AttentionMask(3, 4, None, "cpu").allowed is not None  # queries after a cache: a tensor


def test_the_bias_is_built_once_per_forward():
    mask = AttentionMask(4, 0, None, "cpu")
    assert mask.bias(2, torch.bfloat16) is mask.bias(2, torch.bfloat16)
    assert mask.bias(2, torch.bfloat16).dtype == torch.bfloat16
