"""Facts about one checkpoint: its settings, where its parameters live, its next-token guess and its KV-cache size."""

import torch
from torch import nn

from model import ModelConfig

# Bytes one cached key or value number takes in each storage format the KV-cache calculator offers.
BYTES_PER_VALUE = {"float32": 4, "bfloat16": 2, "float16": 2, "int8": 1}


def attention_kind(num_heads: int, num_kv_heads: int) -> str:
    """MHA (one K/V head per query head), MQA (one K/V head in all) or GQA (groups of query heads share one)."""
    if num_kv_heads == num_heads:
        return "MHA"
    if num_kv_heads == 1:
        return "MQA"
    return "GQA"


def rope_scaling_text(scaling: dict | None) -> str:
    if not scaling:
        return "none"
    details = ", ".join(f"{k} {v}" for k, v in scaling.items() if k != "rope_type")
    return f"{scaling['rope_type']} ({details})" if details else scaling["rope_type"]


def _number(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:g}"


def config_rows(config: ModelConfig) -> list[dict[str, str]]:
    """The settings that shape the network, one row each: setting, value (as text), what it means."""
    c = config
    biases = [name for name, on in (("q/k/v", c.attention_bias), ("o_proj", c.attention_output_bias),
                                    ("MLP", c.mlp_bias)) if on]
    rows = [
        ("model_type", c.model_type, "architecture family"),
        ("vocab_size (V)", _number(c.vocab_size), "how many different tokens the model knows"),
        ("hidden_size (D)", _number(c.hidden_size), "numbers per token in the residual stream"),
        ("intermediate_size (F)", _number(c.intermediate_size), "hidden width of each SwiGLU MLP"),
        ("num_hidden_layers (N)", _number(c.num_hidden_layers), "decoder blocks, one after the other"),
        ("num_attention_heads (Hq)", _number(c.num_attention_heads), "query heads per attention layer"),
        ("num_key_value_heads (Hkv)", _number(c.num_key_value_heads),
         f"{attention_kind(c.num_attention_heads, c.num_key_value_heads)}: {c.group_size} query "
         f"head{'s' * (c.group_size != 1)} per key/value head"),
        ("head_dim (dh)", _number(c.head_dim), "numbers per head in q, k and v"),
        ("max_position_embeddings", _number(c.max_position_embeddings), "context length: most tokens it can read"),
        ("rope_theta", _number(c.rope_theta), "RoPE base: larger means slower rotations"),
        ("rope_scaling", rope_scaling_text(c.rope_scaling), "how RoPE is stretched for long contexts"),
        ("rms_norm_eps", f"{c.rms_norm_eps:g}", "added inside every RMSNorm's square root"),
        ("tie_word_embeddings", "yes" if c.tie_word_embeddings else "no",
         "LM head reuses the embedding matrix"),
        ("biases", ", ".join(biases) or "none", "linear layers that add a learned bias"),
        ("QK-norm", "yes" if c.qk_norm else "no", "RMSNorm of each head's q and k before RoPE"),
        ("sliding_window", _number(c.sliding_window) if c.sliding_window else "none",
         "how far back each token may attend"),
        ("checkpoint dtype", c.dtype, "number format the weights were saved in"),
    ]
    return [dict(setting=s, value=v, meaning=m) for s, v, m in rows]


def _component(name: str) -> str:
    """Which component of the parameter table a parameter (by its checkpoint name) belongs to."""
    if name.startswith("embed_tokens."):
        return "embedding"
    if name.startswith("lm_head."):
        return "LM head (untied)"
    part = name.split(".")
    if len(part) > 3 and part[0] == "layers":
        module, sub = part[2], part[3]
        if module == "self_attn" and sub in ("q_proj", "k_proj", "v_proj", "o_proj"):
            return f"attention {sub}"
        if module == "self_attn" and sub in ("q_norm", "k_norm"):
            return "QK-norm"
        if module == "mlp":
            return "MLP (gate, up, down)"
        if module in ("input_layernorm", "post_attention_layernorm"):
            return "RMSNorm gains"
    if name.startswith("norm."):
        return "RMSNorm gains"
    raise ValueError(f"parameter {name!r} belongs to no known component")


COMPONENT_ORDER = ("embedding", "attention q_proj", "attention k_proj", "attention v_proj", "attention o_proj",
                   "QK-norm", "MLP (gate, up, down)", "RMSNorm gains", "LM head (untied)")


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameters per component, in COMPONENT_ORDER, components the model lacks left out.

    named_parameters() yields a tied LM head once (as the embedding), so the counts add up to the model's unique
    parameters; biases count with the projection they belong to.
    """
    counts = dict.fromkeys(COMPONENT_ORDER, 0)
    for name, p in model.named_parameters():
        counts[_component(name)] += p.numel()
    return {k: v for k, v in counts.items() if v}


def top_next_tokens(logits: torch.Tensor, k: int) -> tuple[list[int], list[float]]:
    """The k most likely next tokens from one position's logits (V,): ids and softmax probabilities."""
    probs = logits.float().softmax(-1)
    top = probs.topk(min(k, probs.numel()))
    return top.indices.tolist(), top.values.tolist()


def kv_cache_bytes(layers: int, kv_heads: int, head_dim: int, tokens: int, bytes_per_value: int,
                   batch: int = 1) -> int:
    """Memory of a KV cache: a key and a value vector (2) per layer, KV head, token and sequence."""
    return 2 * layers * kv_heads * head_dim * tokens * bytes_per_value * batch


def kv_cache_variants(config: ModelConfig, tokens: int, bytes_per_value: int, batch: int = 1) -> list[dict]:
    """This model's KV cache next to the same model with MHA (Hkv = Hq) and MQA (Hkv = 1), most KV heads first."""
    c = config
    rows = []
    for kv_heads in sorted({c.num_attention_heads, c.num_key_value_heads, 1}, reverse=True):
        mine = kv_heads == c.num_key_value_heads
        label = f"{attention_kind(c.num_attention_heads, kv_heads)}: {kv_heads} KV head{'s' * (kv_heads != 1)}"
        rows.append(dict(
            label=label + (" (this model)" if mine else ""),
            kv_heads=kv_heads,
            this_model=mine,
            bytes=kv_cache_bytes(c.num_hidden_layers, kv_heads, c.head_dim, tokens, bytes_per_value, batch),
        ))
    return rows


def format_bytes(n: int) -> str:
    """Bytes in binary units: 2147483648 -> '2 GiB', 67108864 -> '64 MiB', 1536 -> '1.5 KiB'."""
    if n < 1024:
        return f"{n} B"
    units = ("KiB", "MiB", "GiB", "TiB")
    power = min(len(units), (int(n).bit_length() - 1) // 10)
    return f"{n / 1024**power:.4g} {units[power - 1]}"


def diagram_labels(config: ModelConfig) -> dict[str, str]:
    """The text of each box of the block diagram, with this model's numbers (<br> breaks lines)."""
    c = config
    kind = attention_kind(c.num_attention_heads, c.num_key_value_heads)
    attention = [f"<b>Self-attention</b> ({kind})", f"{c.num_attention_heads} query heads",
                 f"{c.num_key_value_heads} KV head{'s' * (c.num_key_value_heads != 1)}",
                 f"head_dim {c.head_dim}", f"RoPE θ = {_number(c.rope_theta)}"]
    if c.rope_scaling:
        attention.append(f"scaling: {c.rope_scaling['rope_type']} ×{_number(c.rope_scaling.get('factor', 1))}")
    if c.qk_norm:
        attention.append("QK-norm on q, k")
    if c.sliding_window:
        attention.append(f"window {_number(c.sliding_window)} tokens")
    D, F, V = (_number(n) for n in (c.hidden_size, c.intermediate_size, c.vocab_size))
    return dict(
        embedding=f"<b>Embedding</b><br>V × D<br>{V} × {D}",
        attn_norm=f"<b>RMSNorm</b><br>eps {c.rms_norm_eps:g}",
        attention="<br>".join(attention),
        mlp_norm=f"<b>RMSNorm</b><br>eps {c.rms_norm_eps:g}",
        mlp=f"<b>SwiGLU MLP</b><br>D → F → D<br>{D} → {F} → {D}<br>silu(gate) · up",
        final_norm="<b>Final</b><br><b>RMSNorm</b>",
        lm_head=f"<b>LM head</b><br>D × V<br>{D} × {V}<br>" + ("tied to<br>embedding" if c.tie_word_embeddings
                                                             else "own weights"),
        repeat=f"× {c.num_hidden_layers} decoder blocks (same structure, different weights)",
        stream=f"residual stream: {D} numbers per token",
    )
