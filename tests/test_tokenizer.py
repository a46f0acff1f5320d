"""model/tokenizer.py against the `tokenizers` library and transformers, and its readable token labels.

Two tokenizers: the bundled stories260K one (SentencePiece BPE with byte fallback, adds BOS id 1), and a tiny
byte-level BPE (GPT-2 / Llama 3 / Qwen style) trained here, offline, on a few sentences.
"""

import json
import shutil

import pytest
from tokenizers import AddedToken, decoders, models, pre_tokenizers, processors, trainers
from tokenizers import Tokenizer as HFTokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from model import load_tokenizer
from model.sources import BUNDLED_DIR
from model.tokenizer import Tokenizer

STORIES = BUNDLED_DIR / "stories260K"
TEXTS = [
    "Once upon a time, there was a little girl named Lily.",
    "Hello\nworld  two spaces\n\nand a tab\there",
    "naïve café, 日本語 and an emoji 🙂",
    "x",
]


# --- the bundled SentencePiece tokenizer ---


@pytest.fixture(scope="module")
def stories():
    return load_tokenizer("stories260K")


@pytest.mark.parametrize("text", [*TEXTS, ""])
def test_stories_encode_equals_tokenizers_and_transformers(stories, text):
    ids = stories.encode(text)
    assert ids[0] == 1 and ids.count(1) == 1  # BOS once, at the start
    assert ids == HFTokenizer.from_file(str(STORIES / "tokenizer.json")).encode(text).ids
    assert ids == PreTrainedTokenizerFast(tokenizer_file=str(STORIES / "tokenizer.json"))(text)["input_ids"]
    assert ids == AutoTokenizer.from_pretrained(STORIES)(text)["input_ids"]


@pytest.mark.parametrize("text", TEXTS)
def test_stories_decode_round_trips(stories, text):
    assert stories.decode(stories.encode(text)) == text  # BOS is a special token and is skipped


def test_stories_tokens_make_spaces_and_newlines_visible(stories):
    ids = stories.encode("Once upon\na time")
    assert stories.tokens(ids) == ["<s>", "␣Once", "␣upon", "↵", "a", "␣time"]
    assert stories._tok.id_to_token(ids[3]) == "<0x0A>"  # the newline is a byte-fallback piece


def test_stories_tokens_show_non_ascii_bytes_as_hex(stories):
    ids = stories.encode("日")  # not in the 512-piece vocabulary: three byte-fallback pieces
    assert stories.tokens(ids) == ["<s>", "␣", "<0xE6>", "<0x97>", "<0xA5>"]


def test_stories_labels_never_show_the_raw_metaspace(stories):
    labels = stories.tokens(range(stories.vocab_size))
    assert len(labels) == 512 and not any("▁" in label for label in labels)
    assert labels[:3] == ["<unk>", "<s>", "</s>"]


# --- a tiny byte-level BPE, built offline ---

SPECIAL = ["<|bos|>", "<|eos|>"]
BOS, EOS = 0, 1  # special tokens come first in the trained vocabulary


@pytest.fixture(scope="module")
def byte_level_json(tmp_path_factory):
    """tokenizer.json of a byte-level BPE with two special tokens, one added special token with a non-ASCII
    character, and no post-processor (so nothing adds BOS unless tokenizer_config.json asks for it)."""
    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, so any text encodes
        show_progress=False,
    )
    tok.train_from_iterator(["the cat sat on the mat", "the dog ate the hat\nthen slept", "naïve café"], trainer)
    tok.add_special_tokens([AddedToken("<|café|>", special=True)])
    path = tmp_path_factory.mktemp("byte-level") / "tokenizer.json"
    tok.save(str(path))
    return path


def byte_level_folder(tokenizer_json, folder, settings=None, post_processor=None):
    """A model folder with that tokenizer.json, optionally a post-processor in it, and optionally a
    tokenizer_config.json holding `settings`."""
    folder.mkdir()
    shutil.copy(tokenizer_json, folder / "tokenizer.json")
    if post_processor is not None:
        tok = HFTokenizer.from_file(str(folder / "tokenizer.json"))
        tok.post_processor = post_processor
        tok.save(str(folder / "tokenizer.json"))
    if settings is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(settings))
    return folder


@pytest.fixture
def byte_level(byte_level_json, tmp_path):
    return Tokenizer(byte_level_folder(byte_level_json, tmp_path / "tok"))


def test_byte_level_space_and_newline_are_visible(byte_level):
    ids = byte_level.encode("the cat\nthe hat")
    pieces = [byte_level._tok.id_to_token(i) for i in ids]
    assert pieces == ["the", "Ġcat", "Ċ", "the", "Ġhat"]
    assert byte_level.tokens(ids) == ["the", "␣cat", "↵", "the", "␣hat"]


def test_byte_level_partial_utf8_shows_bytes_and_whole_characters_show_text(byte_level):
    ids = byte_level.encode("naïve 日")
    # 'ï' (2 bytes) was learned as part of 'naïve'; '日' (3 bytes) was never seen, so each byte is its own piece.
    assert byte_level.tokens(ids) == ["naïve", "␣", "<0xE6>", "<0x97>", "<0xA5>"]
    assert byte_level.decode(ids) == "naïve 日"


def test_byte_level_special_tokens_are_shown_as_is(byte_level):
    ids = byte_level.encode("<|bos|>the<|café|><|eos|>")
    assert ids[0] == BOS and ids[-1] == EOS
    # <|café|> is stored as plain text; read as byte-level characters its 'é' would become a stray byte.
    assert byte_level.tokens(ids) == ["<|bos|>", "the", "<|café|>", "<|eos|>"]
    assert byte_level.decode(ids) == "the"  # special tokens are skipped when decoding


@pytest.mark.parametrize("text", ["the cat sat", " leading space", "tab\tand  spaces\n", "日本語 🙂"])
def test_byte_level_decode_round_trips(byte_level, text):
    assert byte_level.decode(byte_level.encode(text)) == text


# --- add_bos_token / add_eos_token in tokenizer_config.json ---

BOS_FIRST = processors.TemplateProcessing(single="<|bos|> $A", special_tokens=[("<|bos|>", BOS)])

# name -> (tokenizer_config.json or None for no file, post-processor in tokenizer.json, whether BOS is added)
BOS_CASES = {
    "no-config": (None, None, False),
    "no-flag": ({"bos_token": "<|bos|>"}, None, False),
    "no-flag-post-processor-adds": ({"bos_token": "<|bos|>"}, BOS_FIRST, True),
    "flag-true": ({"add_bos_token": True, "bos_token": "<|bos|>"}, None, True),
    "flag-false": ({"add_bos_token": False, "bos_token": "<|bos|>"}, None, False),
    "flag-false-overrides-post-processor": ({"add_bos_token": False, "bos_token": "<|bos|>"}, BOS_FIRST, False),
    "flag-true-bos-as-added-token-dict": (
        {"add_bos_token": True, "bos_token": {"__type": "AddedToken", "content": "<|bos|>", "special": True}},
        None,
        True,
    ),
    "flag-true-without-bos-token": ({"add_bos_token": True}, None, False),  # nothing to add
}


@pytest.mark.parametrize("case", BOS_CASES)
def test_add_bos_token(byte_level_json, tmp_path, case):
    settings, post_processor, adds_bos = BOS_CASES[case]
    tok = Tokenizer(byte_level_folder(byte_level_json, tmp_path / "tok", settings, post_processor))
    plain = HFTokenizer.from_file(str(byte_level_json)).encode("the cat").ids
    assert tok.encode("the cat") == ([BOS] if adds_bos else []) + plain
    assert tok.encode("") == ([BOS] if adds_bos else [])
    assert tok.decode(tok.encode("the cat")) == "the cat"


@pytest.mark.parametrize(
    "settings",
    [
        {"add_bos_token": True, "bos_token": "<|bos|>"},
        {"add_bos_token": False, "bos_token": "<|bos|>"},
        {"add_bos_token": True, "add_eos_token": True, "bos_token": "<|bos|>", "eos_token": "<|eos|>"},
        {"add_bos_token": False, "add_eos_token": True, "bos_token": "<|bos|>", "eos_token": "<|eos|>"},
    ],
)
@pytest.mark.parametrize("post_processor", [None, BOS_FIRST], ids=["no-post-processor", "post-processor-adds-bos"])
def test_flags_match_transformers_given_the_same_flags(byte_level_json, tmp_path, settings, post_processor):
    """An explicit flag decides, as it does for transformers' fast tokenizer constructed with it (and for
    transformers 4's Llama tokenizer loaded from the folder): even a literal <|bos|> in the text is kept."""
    folder = byte_level_folder(byte_level_json, tmp_path / "tok", settings, post_processor)
    ours = Tokenizer(folder)
    theirs = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), **settings)
    for text in ["the cat", "<|bos|>the cat", ""]:
        assert ours.encode(text) == theirs(text)["input_ids"], text
    ids = ours.encode("the cat")
    assert (ids[0] == BOS) == settings["add_bos_token"]
    assert (ids[-1] == EOS) == settings.get("add_eos_token", False)


@pytest.mark.parametrize("post_processor", [None, BOS_FIRST], ids=["no-post-processor", "post-processor-adds-bos"])
def test_without_flags_tokenizer_json_decides_as_in_transformers(byte_level_json, tmp_path, post_processor):
    folder = byte_level_folder(byte_level_json, tmp_path / "tok", {"bos_token": "<|bos|>"}, post_processor)
    ours, theirs = Tokenizer(folder), AutoTokenizer.from_pretrained(folder)
    for text in ["the cat", "<|bos|>the cat", ""]:
        assert ours.encode(text) == theirs(text)["input_ids"], text
