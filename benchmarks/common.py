"""Shared by the benchmarks: a (ours, transformers) pair with identical weights, and fair interleaved timing.

    ours, hf = same_weights_pair("smollm2-135m", "cpu", torch.float32)
    medians = interleaved_medians({"ours": lambda: ours(ids), "transformers": lambda: hf(ids, use_cache=False)}, 10)

The weights come from transformers itself: the model is built from a config with a fixed seed, saved with
save_pretrained(safe_serialization=True) to a temporary folder, and that folder is read by the project's real loader
(model.load_model) and by transformers' from_pretrained, so each side is set up exactly as its users get it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.benchmark import Timer

# name -> (transformers config class, arguments): the real models' shapes, with random weights.
CONFIGS: dict[str, tuple[str, dict]] = {
    "smollm2-135m": (
        "LlamaConfig",
        dict(
            vocab_size=49152,
            hidden_size=576,
            intermediate_size=1536,
            num_hidden_layers=30,
            num_attention_heads=9,
            num_key_value_heads=3,
            max_position_embeddings=8192,
            rms_norm_eps=1e-5,
            rope_theta=100000.0,
            tie_word_embeddings=True,
            bos_token_id=0,
            eos_token_id=0,
        ),
    ),
    "qwen3-0.6b": (
        "Qwen3Config",
        dict(
            vocab_size=151936,
            hidden_size=1024,
            intermediate_size=3072,
            num_hidden_layers=28,
            num_attention_heads=16,
            num_key_value_heads=8,
            head_dim=128,
            max_position_embeddings=40960,
            rms_norm_eps=1e-6,
            rope_theta=1000000.0,
            tie_word_embeddings=True,
            bos_token_id=151643,
            eos_token_id=151645,
        ),
    ),
}


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str | torch.device) -> torch.dtype:
    """bfloat16 on a GPU (what these models are served in); float32 on a CPU, as model.load_model picks."""
    return torch.float32 if torch.device(device).type == "cpu" else torch.bfloat16


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    dtype = getattr(torch, name.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"not a floating-point torch dtype: {name!r}")
    return dtype


def build_hf_model(config_name: str, *, seed: int = 0, attn_implementation: str = "sdpa"):
    """A float32 transformers model of `config_name`'s shape with random weights drawn after manual_seed(seed)."""
    import transformers

    class_name, kwargs = CONFIGS[config_name]
    config = getattr(transformers, class_name)(**kwargs)
    torch.manual_seed(seed)
    with torch.device("cpu"):
        hf = transformers.AutoModelForCausalLM.from_config(
            config, attn_implementation=attn_implementation, dtype=torch.float32
        )
    return hf.eval()


def same_weights_pair(
    config_name: str,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    *,
    seed: int = 0,
    attn_implementation: str = "sdpa",
    copy_weights: bool = False,
):
    """(ours, hf): the project's Decoder and a transformers model holding identical weights, both in eval mode with
    gradients off, on `device` in `dtype` (defaults: cuda if available, else cpu; bfloat16 on cuda, float32 on cpu).

    A float32 transformers model is built with a fixed seed and saved as safetensors; then each side loads that
    folder the way its users do: ours with model.load_model(folder, device=, dtype=), transformers with
    from_pretrained(folder, dtype=, attn_implementation=). Both cast the same float32 tensors with a plain .to(dtype).
    (Not hf.to(dtype): that would also cast transformers' RoPE inv_freq buffer to bfloat16, which from_pretrained
    keeps in float32, and make transformers look less exact than it is.)

    On a CPU in the checkpoint's dtype the loader's tensors are views of the (private, copy-on-write) memory map that
    safetensors opens, exactly as in real use; the map outlives the deleted temporary file on Linux.
    copy_weights=True copies them into ordinary memory instead, to tell a difference that comes from where the
    weights live from one that comes from the code.
    """
    import transformers

    from model import load_model

    device = torch.device(device or default_device())
    dtype = parse_dtype(dtype) if dtype is not None else default_dtype(device)
    with tempfile.TemporaryDirectory(prefix=f"bench-{config_name}-", ignore_cleanup_errors=True) as folder:
        build_hf_model(config_name, seed=seed, attn_implementation=attn_implementation).save_pretrained(
            folder, safe_serialization=True
        )
        ours = load_model(folder, device=device, dtype=dtype)
        hf = transformers.AutoModelForCausalLM.from_pretrained(
            folder, dtype=dtype, attn_implementation=attn_implementation
        )
    hf = hf.to(device).eval().requires_grad_(False)
    if copy_weights:
        for p in ours.parameters():
            p.data = p.data.clone()
        ours.tie_weights()
    return ours, hf


def random_ids(vocab: int, tokens: int, batch: int = 1, seed: int = 0, device=None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (batch, tokens), generator=g).to(device)


def interleaved_times(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    *,
    warmup: int = 2,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] | None = None,
    time_limit: float | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each function, `repeats` samples each, taken in interleaved rounds.

    Every round runs each function once (A B, then B A, then A B, ...: the starting function rotates so that none
    always runs right after another's allocations), so slow drifts of the machine (frequency, other load, thermal)
    hit all of them alike. `warmup` untimed rounds come first. Everything runs under torch.inference_mode. Each
    sample is one torch.utils.benchmark.Timer measurement, whose default clock waits for the accelerator (CUDA,
    MPS) before starting and before stopping.

    `clock` (instead of that wall clock), e.g. time.process_time, the CPU seconds this process used: on a CPU
    shared with other busy processes, with torch.set_num_threads(1), that is far steadier, as time slices lost to
    others do not count. (With several threads it also counts the threads' spin-waiting, so keep it to one thread.)
    Never use it on a GPU, whose work it does not see.

    `time_limit` (wall seconds, warm-up included) ends the timing early, after a complete round, once it is spent and
    at least 3 rounds are done: the samples may then number fewer than `repeats`.
    """
    names = list(fns)
    timers = {name: Timer("fn()", globals={"fn": fn}, **({"timer": clock} if clock else {}))
              for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in names}
    started = time.perf_counter()
    with torch.inference_mode():
        for _ in range(warmup):
            for name in names:
                fns[name]()
        for r in range(repeats):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                times[name].append(timers[name].timeit(1).median)
            if progress:
                progress(r + 1, repeats)
            if time_limit is not None and r + 1 >= 3 and time.perf_counter() - started > time_limit:
                break
    return times


def interleaved_medians(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    *,
    warmup: int = 2,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] | None = None,
    time_limit: float | None = None,
) -> dict[str, float]:
    """Median seconds per call of each function; see interleaved_times."""
    times = interleaved_times(fns, repeats, warmup=warmup, progress=progress, clock=clock, time_limit=time_limit)
    return {name: statistics.median(ts) for name, ts in times.items()}


def add_run_arguments(
    p: argparse.ArgumentParser, *, repeats_cpu: int = 15, repeats_gpu: int = 50, time_limit_cpu: float = 60.0
) -> argparse.ArgumentParser:
    """The flags every benchmark shares: --model --device --dtype --tokens --repeats --warmup --time-limit --threads
    --clock --seed --copy-weights. Turn the parsed values into settings with `run_settings`."""
    p.add_argument("--model", choices=sorted(CONFIGS), default="smollm2-135m", help="model shape (random weights)")
    p.add_argument("--device", default=None, help="cuda if available, else cpu")
    p.add_argument("--dtype", default=None, help="bfloat16 on cuda, float32 on cpu")
    p.add_argument("--tokens", type=int, nargs="+", default=[128, 512], help="sequence lengths T (batch 1)")
    p.add_argument("--repeats", type=int, default=None,
                   help=f"timed runs per function and T (default: {repeats_cpu} on cpu, {repeats_gpu} on a GPU)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed rounds per T first (default: 2 on cpu, 5 on a GPU)")
    p.add_argument("--time-limit", type=float, default=None,
                   help=f"wall seconds per T after which timing stops early (at least 3 rounds); default "
                        f"{time_limit_cpu:g} on cpu, none on a GPU; 0 for none")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: CPU seconds of this process instead of wall time; steadier on a busy machine, "
                        "meaningful only with --threads 1 and on --device cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--copy-weights", action="store_true",
                   help="copy our loaded weights out of the safetensors memory map into ordinary memory")
    p.set_defaults(_repeats_cpu=repeats_cpu, _repeats_gpu=repeats_gpu, _time_limit_cpu=time_limit_cpu)
    return p


@dataclass
class RunSettings:
    device: torch.device
    dtype: torch.dtype
    repeats: int
    warmup: int
    time_limit: float | None  # None: no limit
    clock: Callable[[], float] | None  # None: Timer's wall clock, which waits for the accelerator
    clock_name: str  # "wall" or "cpu"

    def describe(self) -> str:
        return (f"{self.device} {str(self.dtype).removeprefix('torch.')}, {torch.get_num_threads()} threads, "
                f"{self.repeats} repeats after {self.warmup} warm-up rounds, {self.clock_name} clock")

    def timing_kwargs(self) -> dict:
        """The keyword arguments of interleaved_times / interleaved_medians these settings stand for."""
        return {"warmup": self.warmup, "clock": self.clock, "time_limit": self.time_limit}


def run_settings(args: argparse.Namespace) -> RunSettings:
    """Device, dtype, repeats, clock... from flags added by add_run_arguments; applies --threads.
    Raises ValueError for --clock cpu without --device cpu and --threads 1 (it would not measure the work)."""
    device = torch.device(args.device or default_device())
    dtype = parse_dtype(args.dtype) if args.dtype else default_dtype(device)
    on_cpu = device.type == "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and not (on_cpu and torch.get_num_threads() == 1):
        raise ValueError("--clock cpu needs --device cpu and --threads 1")
    time_limit = args.time_limit if args.time_limit is not None else (args._time_limit_cpu if on_cpu else None)
    return RunSettings(
        device=device,
        dtype=dtype,
        repeats=args.repeats or (args._repeats_cpu if on_cpu else args._repeats_gpu),
        warmup=args.warmup if args.warmup is not None else (2 if on_cpu else 5),
        time_limit=time_limit or None,
        clock=time.process_time if args.clock == "cpu" else None,
        clock_name=args.clock,
    )


def warn_if_busy(clock_name: str = "wall") -> None:
    """CPU timings mean little when other processes compete for the cores; say so rather than mislead."""
    if not hasattr(os, "getloadavg"):
        return
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load <= 0.75 * cores:
        return
    if clock_name == "cpu":
        print(f"note: load average {load:.1f} on {cores} cores: CPU-clock times still vary by a few percent (other "
              "processes share caches and memory bandwidth); compare ratios and paired ratios, not absolute times",
              flush=True)
    else:
        print(f"warning: load average {load:.1f} on {cores} cores: other processes compete for the CPU, so absolute "
              "times are inflated and noisy, and multi-threaded wall times can be off by several times; "
              "prefer --threads 1 --clock cpu", flush=True)


def progress_printer(label: str) -> Callable[[int, int], None]:
    """A `progress` callback for interleaved_times that prints about five lines per run."""

    def progress(done: int, total: int) -> None:
        if done == total or done % max(1, total // 5) == 0:
            print(f"  {label}: {done}/{total}", flush=True)

    return progress
