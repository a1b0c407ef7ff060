"""GPT-2's byte-level BPE (models/bpe.py) against Hugging Face's `tokenizers`: the same ids on any text, the
same merges from training, files both read; and our `re` spelling of GPT-2's pattern against the `regex`
package's."""

from __future__ import annotations

import re
import sys
import unicodedata

import numpy as np
import pytest
from conftest import require_data
from hypothesis import given, settings
from hypothesis import strategies as st

from models.bpe import GPT2_PATTERN, BPETokenizer, bytes_to_unicode, character_classes, pretokenizer
from models.char_data import tokenizer_from_dict
from tinygrad_lite import Tensor

tokenizers = pytest.importorskip("tokenizers", reason="tokenizers is in the dev extra: pip install '.[dev]'")
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402 (after the skip)

# texts of every kind the pre-tokeniser treats apart
TRICKY = [
    "Hello world", " leading space", "trailing space ", "   three leading", "a  b   c    d", "\n\n\nnewlines\n",
    "tabs\tand\t\ttabs", "mixed \t\n whitespace \u00a0\u2003 runs", "line\r\nbreaks", "   ", "\t", "",
    "I'm you're we've he'll she'd it's can't WE'RE I'M", "'s 's' ''s quote''", "don't-stop l'amour rock'n'roll",
    "3.14159 1,000,000 2nd 10km ½ ² ³ ⅞ ٣ 四", "naïve café façade coöperate Zürich", "Ελληνικά русский עברית العربية",
    "日本語のテキスト 中文文本 한국어", "emoji 😀😃👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️", "combining e\u0301 a\u0308 \u0301alone",
    "symbols <>[]{}()!?@#$%^&*_+=|\\~` «quotes» “curly” — – …", "control \x00\x01\x07\x1b\x7f\x1c\x1d chars",
    "zero\u200bwidth\u200djoiner \ufeffbom", "CamelCaseWords snake_case_words kebab-case-words",
    "ROMEO:\nBut, soft! what light through yonder window breaks?\n", "<|endoftext|>between<|endoftext|> special",
]

# characters from every Unicode category that Python's unicodedata knows (not the unassigned ones, which each
# library classifies by its own Unicode version)
assigned = st.characters(exclude_categories=("Cn", "Cs"))
pieces = st.sampled_from([*" \t\n'sdtmlrev0123456789.,!?", "'s", "'ll", "'re", "  ", "\n\n", " \n", "😀", "e\u0301"])
texts = st.lists(st.one_of(assigned, pieces), max_size=40).map("".join)


@pytest.fixture(scope="module")
def shakespeare() -> str:
    return require_data("tinyshakespeare/input.txt").read_text(encoding="utf-8")


def hf_tokenizer(vocab_size: int, corpus: list[str], special: list[str] = ()) -> Tokenizer:
    """GPT-2's kind of tokenizer from `tokenizers`: byte-level pre-tokeniser and decoder, BPE trained on corpus."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=list(special), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    return tok


@pytest.fixture(scope="module")
def trained(shakespeare, tmp_path_factory) -> tuple[Tokenizer, BPETokenizer]:
    """A 1,000-token BPE trained by `tokenizers` on Tiny Shakespeare, with <|endoftext|>, and ours reading its
    files (vocab.json, merges.txt, tokenizer.json for the special token)."""
    folder = tmp_path_factory.mktemp("bpe")
    theirs = hf_tokenizer(1000, [shakespeare], special=["<|endoftext|>"])
    theirs.model.save(str(folder))
    theirs.save(str(folder / "tokenizer.json"))
    return theirs, BPETokenizer.from_pretrained(folder)


# ---- the same ids as tokenizers ----------------------------------------------------------------------------------

def test_ids_on_shakespeare(trained, shakespeare):
    theirs, ours = trained
    rng = np.random.default_rng(0)
    for start in [0, *rng.integers(0, len(shakespeare) - 3000, 20)]:
        window = shakespeare[start:start + 3000]
        assert ours.encode(window).tolist() == theirs.encode(window).ids
        assert ours.decode(ours.encode(window)) == window


@pytest.mark.parametrize("text", TRICKY)
def test_ids_on_tricky_text(trained, text):
    theirs, ours = trained
    ids = ours.encode(text)
    assert ids.dtype == np.int64 and ids.tolist() == theirs.encode(text).ids
    assert ours.decode(ids) == text == theirs.decode(theirs.encode(text).ids, skip_special_tokens=False)


@settings(max_examples=300)
@given(texts)
def test_ids_on_any_text(trained, text):
    theirs, ours = trained
    assert ours.encode(text).tolist() == theirs.encode(text).ids
    assert ours.decode(ours.encode(text)) == text


def test_special_tokens_are_never_split(trained):
    theirs, ours = trained
    ids = ours.encode("to be<|endoftext|>or not")
    assert ours.special_tokens == {"<|endoftext|>": 0} and ids.tolist().count(0) == 1
    assert ids.tolist() == theirs.encode("to be<|endoftext|>or not").ids
    assert ours.decode(ids) == "to be<|endoftext|>or not"


def test_decode_of_a_cut_character_and_bad_ids(trained):
    _, ours = trained
    ids = ours.encode("😀").tolist()  # four bytes, several tokens
    assert len(ids) > 1 and ours.decode(ids[:1]) == "\ufffd" and ours.decode(Tensor(np.array(ids))) == "😀"
    with pytest.raises(ValueError, match="BPETokenizer.decode: token id 5000 is not in the vocabulary of 1000"):
        ours.decode([1, 5000])


# ---- GPT-2's pattern in Python's re ---------------------------------------------------------------------------------

def test_gpt2_pattern_splits_as_the_regex_package(trained):
    regex = pytest.importorskip("regex", reason="the regex package comes with transformers (dev extra)")
    pattern = regex.compile(GPT2_PATTERN)
    for text in TRICKY:
        assert pretokenizer().findall(text) == pattern.findall(text), text


@settings(max_examples=300)
@given(texts)
def test_gpt2_pattern_splits_any_text_as_the_regex_package(text):
    regex = pytest.importorskip("regex", reason="the regex package comes with transformers (dev extra)")
    assert pretokenizer().findall(text) == regex.findall(GPT2_PATTERN, text)


def test_letters_numbers_and_spaces_are_the_regex_packages_on_every_assigned_character():
    regex = pytest.importorskip("regex", reason="the regex package comes with transformers (dev extra)")
    chars = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if unicodedata.category(c) not in ("Cn", "Cs"))
    for name, theirs in (("L", r"\p{L}"), ("N", r"\p{N}"), ("S", r"\s")):
        ours = re.compile(f"[{character_classes()[name]}]")
        assert ours.findall(chars) == regex.findall(theirs, chars), name


def test_bytes_to_unicode_is_gpt2s_table():
    table = bytes_to_unicode()
    chars = list(table.values())
    assert sorted(table) == list(range(256)) and len(set(chars)) == 256
    assert not any(c.isspace() or unicodedata.category(c)[0] == "C" for c in chars)  # printable, no whitespace
    assert table[ord("A")] == "A" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"  # GPT-2's 'Ġ' for a space


# ---- training -------------------------------------------------------------------------------------------------------

def test_training_learns_the_merges_of_tokenizers_trainer(shakespeare):
    text = shakespeare[:200_000]
    ours = BPETokenizer.train(text, 600)
    theirs = hf_tokenizer(600, [text])
    assert len(ours.merges) == 600 - 256 and ours.vocab_size == 600
    assert ours.vocab == theirs.get_vocab()
    assert ours.encode(shakespeare[-5000:]).tolist() == theirs.encode(shakespeare[-5000:]).ids


@settings(max_examples=100)
@given(st.text(st.sampled_from(list("ab c\n'sé")), max_size=60), st.integers(256, 300))
def test_training_on_small_texts_ties_as_tokenizers(text, vocab_size):
    """Small alphabets make many pairs of equal count: both break ties by the pair of smaller ids."""
    ours = BPETokenizer.train(text, vocab_size)
    assert ours.vocab == hf_tokenizer(vocab_size, [text]).get_vocab()


def test_a_trained_tokenizer_is_read_by_tokenizers_and_transformers(shakespeare, tmp_path):
    ours = BPETokenizer.train(shakespeare[:50_000], 400)
    ours.save_pretrained(tmp_path)
    theirs = Tokenizer(models.BPE.from_file(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt")))
    theirs.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    sample = shakespeare[100_000:104_000] + TRICKY[19]
    assert ours.encode(sample).tolist() == theirs.encode(sample).ids
    transformers = pytest.importorskip("transformers", reason="transformers is in the dev extra")
    gpt2_tokenizer = transformers.GPT2TokenizerFast.from_pretrained(tmp_path)
    assert ours.encode(sample).tolist() == gpt2_tokenizer(sample)["input_ids"]
    again = BPETokenizer.from_pretrained(tmp_path)
    assert (again.vocab, again.merges) == (ours.vocab, ours.merges)


def test_checkpoint_state_round_trip(trained):
    _, ours = trained
    again = tokenizer_from_dict(ours.to_dict())
    assert isinstance(again, BPETokenizer)
    assert (again.vocab, again.merges, again.special_tokens) == (ours.vocab, ours.merges, ours.special_tokens)


# ---- errors ---------------------------------------------------------------------------------------------------------

def test_errors(tmp_path):
    with pytest.raises(ValueError, match="BPETokenizer.train: vocab_size must be at least 256"):
        BPETokenizer.train("abc", 100)
    with pytest.raises(ValueError, match=r"1 merges make tokens that are not in the vocabulary, e.g. 'ab'"):
        BPETokenizer({"a": 0, "b": 1}, [("a", "b")])
    (tmp_path / "vocab.json").write_text('{"a": 0}')
    with pytest.raises(FileNotFoundError, match=r"BPETokenizer.from_pretrained: .* has no merges.txt; it holds "
                                                r"\['vocab.json'\]"):
        BPETokenizer.from_pretrained(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b c\n")
    with pytest.raises(ValueError, match=r"merges line 2: expected two tokens separated by a space, got 'a b c'"):
        BPETokenizer.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"the token 'z' \(from 'z'\) is not in the vocabulary"):
        BPETokenizer({"a": 0}, []).encode("z")
