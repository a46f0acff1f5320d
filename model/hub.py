"""Download just the files the explorer needs from the Hugging Face Hub, into the standard HF cache."""

from pathlib import Path

from huggingface_hub import snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from tqdm.auto import tqdm

from .errors import ModelError

# Weights as safetensors only (never pickles), the shard index, the config and the fast tokenizer.
NEEDED_FILES = [
    "config.json",
    "generation_config.json",
    "*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
]


def download_snapshot(repo_id: str, *, revision=None, token=None, progress=None) -> Path:
    """The cached folder of `repo_id` at `revision`, downloading what is missing.

    `progress(done_bytes, total_bytes)` is called as bytes arrive. `token` (or the HF_TOKEN variable, which
    huggingface_hub reads itself) opens gated repositories. With HF_HUB_OFFLINE=1, or with no network, only the
    cache is used.
    """
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=NEEDED_FILES,
            token=token or None,
            tqdm_class=_progress_class(progress) if progress else None,
        )
    except GatedRepoError:
        raise ModelError(f"{repo_id} is gated: accept its license on the Hub, then give an access token "
                         "(the HF token field, or the HF_TOKEN variable).") from None
    except RevisionNotFoundError:
        raise ModelError(f"{repo_id} has no revision {revision!r}.") from None
    except RepositoryNotFoundError:
        raise ModelError(f"No Hub repository {repo_id!r} (or it is private: give a token that can read it).") from None
    except LocalEntryNotFoundError:
        raise ModelError(f"{repo_id} is not in the local Hugging Face cache and the Hub cannot be reached "
                         "(offline, or HF_HUB_OFFLINE=1). Connect once to download it, or give a local folder.") from None
    return Path(folder)


def _progress_class(progress):
    """A tqdm class that forwards byte counts to `progress` instead of drawing a bar on stderr."""

    class Progress(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = False
            super().__init__(*args, **kwargs, file=_Discard())

        def update(self, n=1):
            super().update(n)
            if self.unit == "B" and not str(self.desc).startswith("Downloading bytes"):
                progress(self.n, self.total or 0)

    return Progress


class _Discard:
    def write(self, _text):
        pass

    def flush(self):
        pass
