"""The checkpoint's own tokenizer (tokenizer.json, run by the `tokenizers` library) and readable token labels."""

import json
from functools import cache
from pathlib import Path

from tokenizers import Tokenizer as _HFTokenizer

from .errors import ModelError
from .sources import resolve_source

# Signs that make invisible characters visible on an axis: a space, a newline, a tab.
VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


class Tokenizer:
    def __init__(self, folder: Path):
        path = folder / "tokenizer.json"
        if not path.is_file():
            raise ModelError(f"No tokenizer.json in {folder}: the explorer needs the fast-tokenizer file.")
        self._tok = _HFTokenizer.from_file(str(path))
        self._byte_level = "ByteLevel" in json.dumps(json.loads(path.read_text()).get("decoder"))
        settings = _read_json(folder / "tokenizer_config.json")
        bos = settings.get("bos_token")
        bos = bos.get("content") if isinstance(bos, dict) else bos
        self.bos_id = self._tok.token_to_id(bos) if bos else None
        self._add_bos = settings.get("add_bos_token")  # None: trust tokenizer.json's post-processor
        self.vocab_size = self._tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, with BOS at the start exactly when the checkpoint's tokenizer adds it."""
        ids = self._tok.encode(text).ids
        if self._add_bos and self.bos_id is not None and ids[:1] != [self.bos_id]:
            ids = [self.bos_id, *ids]
        elif self._add_bos is False and self.bos_id is not None and ids[:1] == [self.bos_id]:
            ids = ids[1:]
        return ids

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=True)

    def tokens(self, ids: list[int]) -> list[str]:
        """One readable string per id, for axis labels: spaces and newlines made visible, raw bytes as <0x..>."""
        return [self._readable(int(i)) for i in ids]

    def _readable(self, token_id: int) -> str:
        piece = self._tok.id_to_token(token_id)
        if piece is None:
            return f"<{token_id}>"
        if self._byte_level:
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
    return json.loads(path.read_text()) if path.is_file() else {}


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
    if any(ch not in decoder for ch in piece):  # an added token such as <|im_start|>
        return piece
    raw = bytes(decoder[ch] for ch in piece)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(f"<0x{b:02X}>" for b in raw)
