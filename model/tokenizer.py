"""The checkpoint's own tokenizer (tokenizer.json, run by the `tokenizers` library) and readable token labels."""

import json
from functools import cache
from pathlib import Path

from tokenizers import Tokenizer as _HFTokenizer
from tokenizers.processors import TemplateProcessing

from .errors import ModelError
from .sources import resolve_source

# Signs that make invisible characters visible on an axis: a space, a newline, a tab.
VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


class Tokenizer:
    def __init__(self, folder: Path):
        path = folder / "tokenizer.json"
        if not path.is_file():
            raise ModelError(f"No tokenizer.json in {folder}: the explorer needs the fast-tokenizer file.")
        try:
            self._tok = _HFTokenizer.from_file(str(path))
        except Exception as e:  # the Rust library raises a bare Exception for a malformed file
            raise ModelError(f"{path} is not a readable tokenizer.json ({e}): download it again.") from None
        self._byte_level = "ByteLevel" in json.dumps(json.loads(path.read_text(encoding="utf-8")).get("decoder"))
        # Added tokens (<|im_start|>, <s>, ...) are stored as plain text, not in the byte-level alphabet.
        self._added = {i: t.content for i, t in self._tok.get_added_tokens_decoder().items()}
        settings = _read_json(folder / "tokenizer_config.json")
        self.bos_id = self._token_id(settings.get("bos_token"))
        eos_id = self._token_id(settings.get("eos_token"))
        if "add_bos_token" in settings or "add_eos_token" in settings:
            # An explicit flag replaces tokenizer.json's post-processor, as transformers' tokenizer does when it is
            # given add_bos_token / add_eos_token: BOS and EOS are added exactly when their flag is true.
            bos_id = self.bos_id if settings.get("add_bos_token") else None
            eos_id = eos_id if settings.get("add_eos_token") else None
            self._tok.post_processor = _template(self._tok, bos_id, eos_id)
        self.vocab_size = self._tok.get_vocab_size()

    def _token_id(self, token) -> int | None:
        """The id of a special token as tokenizer_config.json names it: a string, an AddedToken dict, or null."""
        token = token.get("content") if isinstance(token, dict) else token
        return self._tok.token_to_id(token) if isinstance(token, str) else None

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, with BOS at the start exactly when the checkpoint's tokenizer adds it."""
        return self._tok.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=True)

    def tokens(self, ids: list[int]) -> list[str]:
        """One readable string per id, for axis labels: spaces and newlines made visible, raw bytes as <0x..>."""
        return [self._readable(int(i)) for i in ids]

    def _readable(self, token_id: int) -> str:
        piece = self._tok.id_to_token(token_id)
        if piece is None:
            return f"<{token_id}>"
        if token_id in self._added:
            text = self._added[token_id]
        elif self._byte_level:
            text = _from_byte_level(piece)
        elif piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:  # SentencePiece byte fallback
            byte = int(piece[3:5], 16)
            text = chr(byte) if byte < 128 and (chr(byte).isprintable() or chr(byte) in VISIBLE) else piece
        else:
            text = piece.replace("▁", " ")
        return "".join(VISIBLE.get(ch, ch) for ch in text)


def load_tokenizer(source: str | Path, *, revision=None, token=None, progress=None) -> Tokenizer:
    return Tokenizer(resolve_source(source, revision=revision, token=token, progress=progress))


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{path} is not valid JSON ({e}): download it again.") from None
    if not isinstance(settings, dict):
        raise ModelError(f"{path} must hold a JSON object of settings, not a {type(settings).__name__}.")
    return settings


def _template(tok: _HFTokenizer, bos_id: int | None, eos_id: int | None) -> TemplateProcessing:
    """A post-processor that writes [BOS] text [EOS], each special token only where its id is given."""
    bos = [tok.id_to_token(bos_id)] if bos_id is not None else []
    eos = [tok.id_to_token(eos_id)] if eos_id is not None else []
    special = {tok.id_to_token(i): i for i in (bos_id, eos_id) if i is not None}  # BOS and EOS may be one token
    return TemplateProcessing(single=[*bos, "$A", *eos], special_tokens=list(special.items()))


@cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's map from the printable characters byte-level BPE writes back to the bytes they stand for."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def _from_byte_level(piece: str) -> str:
    """'Ġthe' -> ' the'; a piece that is only part of a UTF-8 character shows its bytes, e.g. '<0xE2><0x80>'."""
    decoder = _byte_decoder()
    if any(ch not in decoder for ch in piece):  # not in the byte-level alphabet: show it as it is
        return piece
    raw = bytes(decoder[ch] for ch in piece)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(f"<0x{b:02X}>" for b in raw)
