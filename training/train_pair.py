"""Train the bundled controlled pair: a Llama and a Qwen3 that differ only in QK-norm.

    python -m training.train_pair

Same sizes (8 query heads sharing 2 KV heads), same initial weights, data, seed, steps and optimizer; the only
difference is Qwen3's per-head RMSNorm of q and k. The corpus is sampled from the bundled stories260K model, so the
pair shares its tokenizer and domain. Writes model/bundled/pair-llama and model/bundled/pair-qwen3 (Hugging Face
folders that transformers also loads) and training/data/ (the corpus), and prints both validation losses.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from model.sources import BUNDLED_DIR

from .corpus import CORPUS_FILE, load_corpus, sample_corpus, split
from .export import save_hf_folder
from .train import TrainSettings, evaluate, init_decoder, model_config, train

PAIR = {"pair-llama": False, "pair-qwen3": True}  # bundled name -> QK-norm
SIZES = dict(hidden=128, layers=4, heads=8, kv_heads=2, context=256)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--stories", type=int, default=2000, help="stories to sample for the corpus")
    parser.add_argument("--resample", action="store_true", help="sample the corpus again even if it exists")
    parser.add_argument("--out", default=str(BUNDLED_DIR))
    args = parser.parse_args()
    began = time.monotonic()

    if args.resample or not CORPUS_FILE.is_file():
        print(f"Sampling {args.stories} stories from stories260K…", flush=True)
        CORPUS_FILE.parent.mkdir(parents=True, exist_ok=True)
        np.save(CORPUS_FILE, sample_corpus(args.stories))
    train_tokens, val_tokens = split(load_corpus())
    print(f"Corpus: {len(train_tokens):,} training and {len(val_tokens):,} validation tokens", flush=True)

    settings = TrainSettings(steps=args.steps, batch_size=16, seq_len=128, lr=3e-3, probe_every=25)
    results = {}
    for name, qk_norm in PAIR.items():
        torch.manual_seed(settings.seed)
        model = init_decoder(model_config(qk_norm=qk_norm, **SIZES), seed=settings.seed)
        history = train(model, train_tokens, settings, on_step=_report(name, settings.steps))
        val_loss = evaluate(model, val_tokens, settings.seq_len)
        results[name] = {"validation_loss": round(val_loss, 4), "final_train_loss": round(history[-1]["loss"], 4)}
        save_hf_folder(model.eval(), _path(args.out, name))
        print(f"{name}: validation loss {val_loss:.4f}", flush=True)

    minutes = (time.monotonic() - began) / 60
    summary = {"settings": settings.__dict__, "sizes": SIZES, "results": results, "minutes": round(minutes, 1)}
    for name in PAIR:
        (_path(args.out, name) / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def _path(out: str, name: str) -> Path:
    return Path(out) / name


def _report(name: str, steps: int):
    def report(record: dict) -> None:
        if record["step"] % 50 == 0 or record["step"] == steps - 1:
            print(f"  {name} step {record['step']:4d}  loss {record['loss']:.3f}", flush=True)

    return report


if __name__ == "__main__":
    main()
