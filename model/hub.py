"""Download just the files the explorer needs from the Hugging Face Hub, into the standard HF cache.

huggingface_hub does the work (cache layout, HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE, HF_TOKEN, resumed downloads);
this module picks the files, reports progress and turns its exceptions into a ModelError that says what to do.
"""

import threading
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import httpx2
from fnmatch import fnmatchcase

from huggingface_hub import HfApi, constants, get_cached_repo_tree, snapshot_download
from huggingface_hub.errors import (
    CachedRepoTreeNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import tqdm as hf_tqdm

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
# The patterns match across "/", so this keeps subfolders (onnx/, original/, ...) from being downloaded.
IN_SUBFOLDERS = ["*/*"]
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
POLL_SECONDS = 0.1
SNAPSHOT_BYTES_GROUP = "huggingface_hub.snapshot_download"  # see _ByteCounter


def download_snapshot(repo_id: str, *, revision=None, token=None, progress=None, max_bytes=None) -> Path:
    """The cached folder of `repo_id` at `revision` (a branch, tag or commit), downloading what is missing.

    `progress(done_bytes, total_bytes)` is called on the calling thread while bytes arrive; total_bytes grows as
    each file's download starts, and the last call has done == total. Nothing is reported for cached files.
    `token` (else the HF_TOKEN variable or a stored login, which huggingface_hub reads itself) opens gated and
    private repos; it is only ever sent to the Hub; token=False sends none, not even the server's own login.
    With HF_HUB_OFFLINE=1, or with no network, only the cache is used.

    With `max_bytes`, a repo whose needed files add up to more is refused before any is downloaded; when their size
    cannot be asked (the Hub out of reach), only what is already cached is used.
    """
    revision = (revision or "").strip() or None  # an empty text field means the default branch
    if isinstance(token, str):
        token = token.strip() or None  # no token: huggingface_hub then looks for one itself
    try:
        cache_only = max_bytes is not None and not constants.is_offline_mode() and not _fits(
            repo_id, revision, token, max_bytes)
        folder = Path(_download(repo_id, revision=revision, token=token, progress=progress, cache_only=cache_only))
    except GatedRepoError:  # before RepositoryNotFoundError, its parent class
        raise ModelError(f"{repo_id} is gated: accept its license on its Hub page, then give an access token of that "
                         "account (the HF token field, or the HF_TOKEN variable).") from None
    except RevisionNotFoundError:
        raise ModelError(f"{repo_id} has no revision {revision!r}: give an existing branch, tag or commit hash, "
                         "or leave the revision empty for main.") from None
    except RepositoryNotFoundError:
        raise ModelError(f"No Hub repository {repo_id!r}: check the spelling (owner/name). If it is private, give a "
                         "token that can read it.") from None
    except LocalEntryNotFoundError:  # also raised for a partly cached snapshot (IncompleteSnapshotError)
        missing = f"{repo_id} is not (fully) in the local Hugging Face cache"
        if constants.is_offline_mode():
            raise ModelError(f"{missing} and offline mode is on (HF_HUB_OFFLINE=1): unset HF_HUB_OFFLINE and connect "
                             "once to download it, or give a local folder.") from None
        raise ModelError(f"{missing} and the Hub cannot be reached: check the network (or proxy) and try again, or "
                         "give a local folder.") from None
    except HfHubHTTPError as e:  # e.g. 401 for a token the Hub rejects, 403 for one without read access
        hint = "check the token" if e.response.status_code in (401, 403) else "try again later"
        raise ModelError(f"The Hub answered HTTP {e.response.status_code} for {repo_id}: {hint}.") from None
    except HFValidationError:
        raise ModelError(f"{repo_id!r} is not a valid Hub repo id (owner/name) or revision.") from None
    except (httpx2.HTTPError, OSError) as e:  # the connection dropped mid-download, the disk is full, ...
        raise ModelError(f"Downloading {repo_id} failed ({type(e).__name__}: {e}). Try again: the files that "
                         "arrived stay in the cache.") from None
    _refuse_pickles(repo_id, folder)
    return folder


def _fits(repo_id, revision, token, max_bytes) -> bool:
    """True when the repo's needed files fit in `max_bytes`; False when the Hub cannot be asked. Raises ModelError
    for a repo that is too large, and the Hub's own errors (unknown repo, gated, ...) for download_snapshot to
    explain."""
    try:  # one request (repo info with file sizes); a file listing would retry for a minute with the Hub away
        info = HfApi().model_info(repo_id, revision=revision, token=token, files_metadata=True)
    except httpx2.TransportError:  # no connection: the download could not happen either
        return False
    size = sum(f.size or 0 for f in info.siblings or [] if "/" not in f.rfilename
               and any(fnmatchcase(f.rfilename, pattern) for pattern in NEEDED_FILES))
    if size > max_bytes:
        raise ModelError(f"{repo_id} is {size / 2**20:,.0f} MiB, more than this server downloads "
                         f"({max_bytes / 2**20:,.0f} MiB): choose a smaller model, or ask whoever runs the server.")
    return True


def _download(repo_id, *, revision, token, progress, cache_only=False) -> str:
    kwargs = dict(revision=revision, token=token, allow_patterns=NEEDED_FILES, ignore_patterns=IN_SUBFOLDERS,
                  local_files_only=cache_only)
    if progress is None:
        return snapshot_download(repo_id, **kwargs)
    # snapshot_download reports bytes from its worker threads. Callers such as Streamlit can only update the page
    # from their own thread, so the download runs in a thread and this one forwards the counts as they change.
    counter = _ByteCounter()
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(snapshot_download, repo_id, tqdm_class=counter.bar_class(), **kwargs)
    try:
        reported = (0, 0)
        while True:
            finished = not wait([future], timeout=POLL_SECONDS).not_done
            counts = counter.counts()
            if counts != reported:
                progress(*counts)
                reported = counts
            if finished:
                return future.result()
    finally:
        # If `progress` raised (Streamlit does so to stop a script on a rerun), return at once: the download goes on
        # in the background and a later call finds its files in the cache (huggingface_hub locks each file).
        pool.shutdown(wait=False)


class _ByteCounter:
    """Sums the bytes snapshot_download reports through its `tqdm_class`, drawing nothing.

    The bar to follow is the one of huggingface_hub's progress-bar group "huggingface_hub.snapshot_download" (the
    group names are public: `huggingface_hub.utils.disable_progress_bars(name)` takes them), which counts the bytes
    written to the files, its total growing by each file's size as its download starts. A subclass of
    huggingface_hub's own tqdm is given each bar's group name; its other bars (files fetched, bytes received, which
    for Xet transfers counts compressed bytes against a guessed total) are ignored.
    """

    def __init__(self):
        self._lock = threading.Lock()  # updates come from several download threads
        self._bar = None

    def counts(self) -> tuple[int, int]:
        with self._lock:
            bar = self._bar
            return (0, 0) if bar is None else (int(bar.done), int(bar.total or 0))

    def bar_class(self):
        counter = self

        class Bar(hf_tqdm):
            def __init__(self, *args, **kwargs):
                self.counts_bytes = kwargs.get("name") == SNAPSHOT_BYTES_GROUP
                super().__init__(*args, **{**kwargs, "disable": True})  # keeps `total`, draws nothing
                self.done = 0
                if self.counts_bytes:
                    counter._bar = self

            def update(self, n=1):
                if self.counts_bytes and n:
                    with counter._lock:
                        self.done += n

        return Bar


def _refuse_pickles(repo_id: str, folder: Path) -> None:
    """Explain a repo whose weights exist only as pickles, which were deliberately not downloaded.

    loading.py refuses pickles it finds in a folder, but a snapshot never holds them, so without this the error would
    only say that the weights are missing. The repo's file list is cached next to the snapshot by snapshot_download.
    """
    if any(folder.glob("*.safetensors")):
        return
    try:
        files = [f.path for f in get_cached_repo_tree(repo_id, revision=folder.name)]
    except CachedRepoTreeNotFoundError:
        return  # file list unknown (e.g. a cache filled by an older huggingface_hub): loading reports what is missing
    pickles = [name for name in files if "/" not in name and name.endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise ModelError(
            f"{repo_id} has only pickled weights ({', '.join(sorted(pickles))}), so they were not downloaded: "
            "unpickling can run arbitrary code. Choose a repo or revision with model.safetensors, or convert them once "
            "in a trusted environment: load the model with transformers and call "
            "model.save_pretrained(folder, safe_serialization=True), then load that folder."
        )
