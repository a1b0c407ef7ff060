"""The character tokenizer and the train/validation batches of the GPT."""

from __future__ import annotations

import numpy as np
import pytest

from models.char_data import CharDataset, CharTokenizer

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20


def test_encode_decode_round_trip_and_vocabulary():
    tok = CharTokenizer.from_text(TEXT)
    assert tok.chars == sorted(set(TEXT)) and tok.vocab_size == len(set(TEXT))
    ids = tok.encode("hear me")
    assert ids.dtype == np.int64 and ids.shape == (7,)
    assert tok.decode(ids) == "hear me"
    assert tok.decode(ids.tolist()) == "hear me"


def test_tokenizer_survives_a_dict_round_trip():
    tok = CharTokenizer.from_text(TEXT)
    again = CharTokenizer.from_dict(tok.to_dict())
    assert again.chars == tok.chars
    assert np.array_equal(again.encode(TEXT[:50]), tok.encode(TEXT[:50]))


def test_tokenizer_errors():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"character 'z' is not in the vocabulary of 3"):
        tok.encode("abz")
    with pytest.raises(ValueError, match="token id 3 is out of range"):
        tok.decode([0, 3])
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer.from_text("")


def test_split_is_90_10_and_batches_are_shifted_windows():
    data = CharDataset(TEXT, block_size=8)
    n = len(TEXT)
    assert len(data.splits["train"]) == int(n * 0.9) and len(data.splits["val"]) == n - int(n * 0.9)
    x, y = data.get_batch("train", 5, np.random.default_rng(0))
    assert x.shape == y.shape == (5, 8) and x.dtype == y.dtype == np.int64
    assert np.array_equal(x.data[:, 1:], y.data[:, :-1])
    train = data.splits["train"]
    for row_x, row_y in zip(x.data, y.data):  # each row is a window of the train split
        starts = [i for i in range(len(train) - 8) if np.array_equal(train[i:i + 8], row_x)]
        assert any(np.array_equal(train[i + 1:i + 9], row_y) for i in starts)


def test_batches_are_reproducible_with_a_seed():
    data = CharDataset(TEXT, block_size=8)
    a = data.get_batch("val", 4, np.random.default_rng(3))
    b = data.get_batch("val", 4, np.random.default_rng(3))
    c = data.get_batch("val", 4, np.random.default_rng(4))
    assert np.array_equal(a[0].data, b[0].data) and not np.array_equal(a[0].data, c[0].data)


def test_dataset_errors():
    with pytest.raises(ValueError, match="empty"):
        CharDataset("", block_size=8)
    with pytest.raises(ValueError, match=r"has 5 characters, shorter than block_size \+ 1 = 9"):
        CharDataset("abcde", block_size=8)
    with pytest.raises(ValueError, match="the val split has"):
        CharDataset("abcdefghij" * 3, block_size=8)
    data = CharDataset(TEXT, block_size=8)
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        data.get_batch("test", 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="not in the vocabulary"):
        CharDataset("xyz" * 100, block_size=8, tokenizer=CharTokenizer.from_text("xy"))
