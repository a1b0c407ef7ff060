"""Data for the GPT: a character tokenizer built from the text, a 90/10 split, seeded random batches.

`CharDataset` takes any tokenizer with `encode`, `decode` and `vocab_size`: `CharTokenizer` here, or the
byte-level BPE of models/bpe.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from models.bpe import BPETokenizer
from tinygrad_lite import Tensor


class CharTokenizer:
    """One token per distinct character of the text, numbered in sorted order.

    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.decode(tok.encode("hole"))
    'hole'
    """

    def __init__(self, chars: list[str] | str):
        chars = list(chars)
        if not chars:
            raise ValueError("CharTokenizer: the vocabulary is empty (was the text empty?)")
        if len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer: the vocabulary has repeated characters")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        if not text:
            raise ValueError("CharTokenizer.from_text: the text is empty, so there is no vocabulary")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """The token ids of `text` as an int64 array (len(text),)."""
        try:
            return np.fromiter((self.stoi[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as e:
            raise ValueError(f"CharTokenizer.encode: character {e.args[0]!r} is not in the vocabulary of "
                             f"{self.vocab_size} characters") from None

    def decode(self, ids: Any) -> str:
        """The text of a sequence of token ids (a list, an array or a 1-D Tensor)."""
        arr = np.asarray(ids.data if isinstance(ids, Tensor) else ids).reshape(-1)
        bad = arr[(arr < 0) | (arr >= self.vocab_size)]
        if bad.size:
            raise ValueError(f"CharTokenizer.decode: token id {int(bad[0])} is out of range for a vocabulary of "
                             f"{self.vocab_size}")
        return "".join(self.chars[i] for i in arr.tolist())

    def to_dict(self) -> dict[str, str]:
        """For checkpoints: the vocabulary as one string."""
        return {"chars": "".join(self.chars)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> CharTokenizer:
        return cls(list(str(state["chars"])))


def tokenizer_from_dict(state: dict[str, Any]) -> CharTokenizer | BPETokenizer:
    """The tokenizer that a checkpoint stored with `to_dict` (a BPE's state holds its merges)."""
    return BPETokenizer.from_dict(state) if "merges" in state else CharTokenizer.from_dict(state)


def decode_stream(tokenizer: CharTokenizer | BPETokenizer, prompt: Iterable[int],
                  steps: Iterable[np.ndarray]) -> Iterator[str]:
    """The prompt's text, then the text that each new token adds, as the tokens arrive (steps: ids (1,), as
    `GPT.stream` yields them). A character whose UTF-8 bytes span several BPE tokens waits for its last byte."""
    ids = [int(i) for i in prompt]
    text = tokenizer.decode(ids)
    yield text
    shown = len(text)
    for step in steps:
        ids.append(int(step[0]))
        text = tokenizer.decode(ids)
        if not text.endswith("\ufffd"):  # U+FFFD: a character's bytes are not all there yet
            yield text[shown:]
            shown = len(text)
    rest = tokenizer.decode(ids)[shown:]
    if rest:
        yield rest


def print_stream(pieces: Iterable[str]) -> str:
    """Print the pieces of text as they come (then a newline); return the whole text."""
    text = ""
    for piece in pieces:
        print(piece, end="", flush=True)
        text += piece
    print()
    return text


class CharDataset:
    """A text as token ids (one per character by default), split into train (first 90%) and validation (last 10%).

    `get_batch(split, batch_size, rng)` gives inputs x and next-character targets y,
    both int64 Tensors (B, block_size), from random windows of that split.
    """

    def __init__(self, text: str, block_size: int, tokenizer: CharTokenizer | None = None, val_fraction: float = 0.1):
        if not text:
            raise ValueError("CharDataset: the text is empty")
        if block_size < 1:
            raise ValueError(f"CharDataset: block_size must be at least 1, got {block_size}")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"CharDataset: val_fraction must be in (0, 1), got {val_fraction}")
        if len(text) < block_size + 1:
            raise ValueError(f"CharDataset: the text has {len(text)} characters, shorter than block_size + 1 = "
                             f"{block_size + 1} (one window of inputs plus its next-character target)")
        self.tokenizer = tokenizer or CharTokenizer.from_text(text)
        self.block_size = block_size
        data = self.tokenizer.encode(text)
        n_train = int(len(data) * (1.0 - val_fraction))
        self.splits = {"train": data[:n_train], "val": data[n_train:]}
        for name, part in self.splits.items():
            if len(part) < block_size + 1:
                raise ValueError(f"CharDataset: the {name} split has {len(part)} characters but block_size "
                                 f"{block_size} needs at least {block_size + 1} (the text has {len(text)} "
                                 f"characters; use a longer text or a smaller block_size)")

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def get_batch(self, split: str, batch_size: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        """x, y: int64 Tensors (B, block_size), y[b, t] = the character after x[b, t]."""
        if split not in self.splits:
            raise ValueError(f"CharDataset.get_batch: split must be 'train' or 'val', got {split!r}")
        if batch_size < 1:
            raise ValueError(f"CharDataset.get_batch: batch_size must be a positive integer, got {batch_size}")
        data = self.splits[split]
        starts = rng.integers(0, len(data) - self.block_size, size=batch_size)
        windows = starts[:, None] + np.arange(self.block_size + 1)  # (B, block_size + 1)
        chunk = data[windows]
        return Tensor(chunk[:, :-1]), Tensor(chunk[:, 1:])
