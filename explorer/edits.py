"""Interventions for one traced forward: ablate heads, switch QK-norm, change RoPE, zero neurons, replace anything.

An Edits value describes the change; `edit_functions` turns it into {capture name: tensor -> tensor}, applied by the
trace's capture object inside that one call. The shared model is never modified.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch

from model import ModelConfig, ModelError
from model.rope import inv_freq_scaled


@dataclass(frozen=True)
class Edits:
    # layer -> query heads whose output z is replaced: by zeros, or by its mean over the batch and positions
    ablate_heads: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    ablation: Literal["zero", "mean"] = "zero"
    qk_norm_off: frozenset[int] = frozenset()  # layers that skip Qwen3's q_norm/k_norm
    # layers given a parameter-free per-head RMS normalisation of q and k before RoPE (QK-norm for a Llama)
    qk_norm_add: frozenset[int] = frozenset()
    remove_rope: bool = False  # every rotation angle zero: attention sees no positions
    rope_theta: float | None = None  # re-run with another RoPE base
    # re-run with another long-context scaling ({"rope_type": "llama3" | "linear", ...}), or None for none at all;
    # "model" keeps the model's own
    rope_scaling: dict | None | Literal["model"] = "model"
    zero_neurons: Mapping[int, tuple[int, ...]] = field(default_factory=dict)  # layer -> SwiGLU hidden units
    replace: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] = field(default_factory=dict)  # the general form

    def __bool__(self) -> bool:
        return self != Edits()

    def inv_freq(self, config: ModelConfig, inv_freq: torch.Tensor) -> torch.Tensor:
        """The inverse frequencies this edited forward rotates with."""
        if self.remove_rope:
            return torch.zeros_like(inv_freq)
        if self.rope_theta is None and self.rope_scaling == "model":
            return inv_freq
        theta = config.rope_theta if self.rope_theta is None else self.rope_theta
        scaling = config.rope_scaling if self.rope_scaling == "model" else self.rope_scaling
        return inv_freq_scaled(config.head_dim, theta, scaling).to(inv_freq.device)

    def check(self, config: ModelConfig) -> None:
        """Raise ModelError, naming the edit, for a layer, head or neuron this model does not have, or a RoPE
        setting it cannot rotate with: such an edit would otherwise be ignored without a word, or fail in torch."""
        layers = range(config.num_hidden_layers)

        def within(what: str, values, valid: range) -> None:
            wrong = [v for v in values if v not in valid]
            if wrong:
                raise ModelError(f"This edit names {what} {wrong[0]!r}, but the model has {what}s "
                                 f"{valid.start}–{valid.stop - 1}.")

        within("layer", [*self.ablate_heads, *self.zero_neurons, *self.qk_norm_off, *self.qk_norm_add], layers)
        for heads in self.ablate_heads.values():
            within("query head", heads, range(config.num_attention_heads))
        for neurons in self.zero_neurons.values():
            within("MLP neuron", neurons, range(config.intermediate_size))
        if self.rope_theta is not None or self.rope_scaling != "model":
            theta = config.rope_theta if self.rope_theta is None else self.rope_theta
            scaling = config.rope_scaling if self.rope_scaling == "model" else self.rope_scaling
            try:  # the same checks as a config.json's RoPE settings
                ModelConfig.from_dict({**config.raw, "rope_parameters": None, "rope_theta": theta,
                                       "rope_scaling": scaling})
            except ModelError as e:
                raise ModelError(f"This RoPE edit: {str(e).removeprefix('config.json: ')}") from None

    def functions(self, config: ModelConfig) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
        """{capture name: function} for every edit that acts on a captured quantity."""
        self.check(config)
        fns: dict[str, list[Callable]] = {}
        for layer, heads in self.ablate_heads.items():
            fns.setdefault(f"layers.{layer}.self_attn.z", []).append(_ablate(heads, self.ablation))
        for layer in self.qk_norm_add:
            for q in ("q", "k"):
                fns.setdefault(f"layers.{layer}.self_attn.{q}", []).append(_rms_normalise(config.rms_norm_eps))
        for layer, neurons in self.zero_neurons.items():
            fns.setdefault(f"layers.{layer}.mlp.hidden", []).append(_zero_last_axis(neurons))
        for name, fn in self.replace.items():
            fns.setdefault(name, []).append(fn)
        return {name: _chain(chain) for name, chain in fns.items()}


def _ablate(heads: tuple[int, ...], how: str) -> Callable:
    def ablate(z: torch.Tensor) -> torch.Tensor:  # (B, Hq, T, dh)
        z = z.clone()
        for h in heads:
            z[:, h] = 0.0 if how == "zero" else z[:, h].mean(dim=(0, 1), keepdim=True)
        return z

    return ablate


def _rms_normalise(eps: float) -> Callable:
    def normalise(x: torch.Tensor) -> torch.Tensor:  # (B, H, T, dh): each head's vector to unit RMS, no gain
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)

    return normalise


def _zero_last_axis(indices: tuple[int, ...]) -> Callable:
    def zero(x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        x[..., list(indices)] = 0.0
        return x

    return zero


def _chain(fns: list[Callable]) -> Callable:
    if len(fns) == 1:
        return fns[0]

    def chained(x):
        for fn in fns:
            x = fn(x)
        return x

    return chained
