"""A training corpus sampled from the bundled stories260K model, so that trained models share its tokenizer and
its domain (children's stories), and nothing has to be downloaded."""

from pathlib import Path

import numpy as np
import torch

from model import load_model

CORPUS_FILE = Path(__file__).parent / "data" / "stories260K-samples.npy"
BOS, EOS = 1, 2


def sample_corpus(n_stories: int, *, story_tokens: int = 256, batch: int = 128, seed: int = 0,
                  temperature: float = 1.0) -> np.ndarray:
    """Token ids of `n_stories` stories sampled from stories260K, each starting with BOS, ended at EOS."""
    teacher = load_model("stories260K", device="cpu")
    # A 260K-parameter model's matrices are too small to share between threads: one thread is fastest, and far
    # faster than two when other programs compete for the cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    stories = []
    try:
        for start in range(0, n_stories, batch):
            rows = min(batch, n_stories - start)
            bos = torch.full((rows, 1), BOS, dtype=torch.long)
            out = teacher.generate(bos, story_tokens, temperature=temperature, seed=seed + start)
            for row in out.tolist():
                stories.extend(row[: row.index(EOS)] if EOS in row else row)
    finally:
        torch.set_num_threads(threads)
    return np.asarray(stories, dtype=np.uint16)


def load_corpus() -> torch.Tensor:
    """The bundled corpus as a LongTensor of token ids (see training/train_pair.py for how it is made)."""
    return torch.from_numpy(np.load(CORPUS_FILE).astype(np.int64))


def split(tokens: torch.Tensor, validation_fraction: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    cut = int(len(tokens) * (1 - validation_fraction))
    return tokens[:cut], tokens[cut:]
