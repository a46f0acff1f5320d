"""Where a model comes from: a bundled name, a local folder, or a Hugging Face Hub repo id."""

import re
from pathlib import Path

from .errors import ModelError
from .hub import download_snapshot

BUNDLED_DIR = Path(__file__).parent / "bundled"
DEFAULT_MODEL = "stories260K"
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def bundled_models() -> list[str]:
    """Names of the models shipped inside the repository, which work offline on a fresh clone."""
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / "config.json").is_file())


def resolve_source(source: str | Path, *, revision=None, token=None, progress=None) -> Path:
    """The local folder that holds `source`'s files, downloading from the Hub when it is a repo id."""
    text = str(source).strip()
    if not text:
        raise ModelError("No model given: name a bundled model, a local folder or a Hub repo id.")
    if text in bundled_models():
        return BUNDLED_DIR / text
    try:
        path = Path(text).expanduser()
        is_dir, exists = path.is_dir(), path.exists()
    except (RuntimeError, OSError):  # "~nosuchuser/x", a name longer than the file system allows, ...
        raise ModelError(f"{text!r} cannot be read as a folder on this server.") from None
    if is_dir:
        return path
    if exists:
        raise ModelError(f"{text} is a file; give the folder that holds config.json and the weights.")
    if _REPO_ID.match(text) and not text.startswith((".", "/", "~")):
        return download_snapshot(text, revision=revision, token=token, progress=progress)
    raise ModelError(
        f"{text!r} is neither a bundled model ({', '.join(bundled_models())}), an existing folder, nor a Hub repo id "
        "of the form owner/name."
    )
