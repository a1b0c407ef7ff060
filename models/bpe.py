"""GPT-2's byte-level BPE tokenizer: the ids of Hugging Face's `tokenizers` from vocab.json + merges.txt.

    text ── special tokens split off (<|endoftext|>) ── pre-tokenised by GPT-2's regex into chunks
         ── each chunk's UTF-8 bytes as printable characters (bytes_to_unicode: a space is 'Ġ')
         ── the adjacent pair of lowest merge rank merged, again and again ── tokens ── ids (vocab.json)

    >>> tok = BPETokenizer.from_pretrained("gpt2")            # a folder or a model name
    >>> tok.decode(tok.encode("Hello world"))                 # ids [15496, 995]
    'Hello world'
    >>> small = BPETokenizer.train(text, vocab_size=512)     # 256 bytes + 256 merges, as in minbpe

GPT-2's pattern needs the Unicode classes \\p{L} (letters) and \\p{N} (numbers), which Python's `re`
lacks: `pretokenizer()` builds them from `unicodedata` instead of depending on the `regex` package. On
every character assigned in Python's Unicode version the two agree exactly (and with `tokenizers`);
characters assigned since are classified by each library's own tables, which differ among them too.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from models.hub import pretrained_dir, pretrained_file
from tinygrad_lite import Tensor

# GPT-2's pre-tokenisation, as written for the `regex` package (openai/gpt-2, encoder.py)
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# Unicode's White_Space property: the `regex` package's \s (Python's re adds \x1c-\x1f)
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table from the 256 byte values to printable characters: printable Latin-1 bytes map to
    themselves, the others (controls, space, ...) to U+0100 onwards, so no token holds whitespace."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@lru_cache(maxsize=1)
def character_classes() -> dict[str, str]:
    """The bodies of `re` character classes for \\p{L} ("L": every code point whose Unicode category is a
    letter's), \\p{N} ("N": a number's) and \\s ("S": WHITESPACE), as ranges."""
    classes = {"L": [], "N": []}
    first = 0
    initials = (category[0] for category in map(unicodedata.category, map(chr, range(sys.maxunicode + 1))))
    for initial, run in itertools.groupby(initials):
        last = first + sum(1 for _ in run) - 1
        if initial in classes:
            classes[initial].append(f"{re.escape(chr(first))}-{re.escape(chr(last))}")
        first = last + 1
    return {**{initial: "".join(ranges) for initial, ranges in classes.items()}, "S": WHITESPACE}


@lru_cache(maxsize=1)
def pretokenizer() -> re.Pattern[str]:
    """GPT2_PATTERN for Python's `re`: \\p{L}, \\p{N} and \\s spelled out as classes (built once, ~0.5 s)."""
    letters, numbers, space = (character_classes()[name] for name in "LNS")
    return re.compile(rf"""'s|'t|'re|'ve|'m|'ll|'d| ?[{letters}]+| ?[{numbers}]+| ?[^{space}{letters}{numbers}]+"""
                      rf"""|[{space}]+(?![^{space}])|[{space}]+""")


class BPETokenizer:
    """Byte-level BPE: `vocab` maps token strings (bytes as bytes_to_unicode characters) to ids, `merges`
    lists the merged pairs by rank (first = merged first), `special_tokens` maps texts like <|endoftext|>
    that are never split to their ids."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]],
                 special_tokens: dict[str, int] | None = None):
        self.vocab = dict(vocab)
        self.merges = [tuple(pair) for pair in merges]
        self.special_tokens = dict(special_tokens or {})
        missing = [a + b for a, b in self.merges if a + b not in self.vocab]
        if missing:
            raise ValueError(f"BPETokenizer: {len(missing)} merges make tokens that are not in the vocabulary, "
                             f"e.g. {missing[0]!r}")
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self.decoder = {i: t for t, i in self.vocab.items()}
        self.special_ids = {i: t for t, i in self.special_tokens.items()}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        by_length = sorted(self.special_tokens, key=len, reverse=True)  # the longest match first
        self._special = re.compile("|".join(map(re.escape, by_length))) if by_length else None
        self._chunks: dict[str, list[int]] = {}  # chunk -> ids, as GPT-2's encoder caches them

    @property
    def vocab_size(self) -> int:
        """One more than the largest id (tokens and special tokens)."""
        return max([*self.decoder, *self.special_ids]) + 1

    # ---- encoding -------------------------------------------------------------------------------------------

    def encode(self, text: str) -> np.ndarray:
        """The token ids of `text` as an int64 array (N,)."""
        ids: list[int] = []
        for piece, special in self._split_special(text):
            if special:
                ids.append(self.special_tokens[piece])
                continue
            for chunk in pretokenizer().findall(piece):
                ids.extend(self._chunks.get(chunk) or self._encode_chunk(chunk))
        return np.array(ids, dtype=np.int64)

    def _split_special(self, text: str) -> Iterator[tuple[str, bool]]:
        """(piece, is_special) in order: the special tokens and the text between them."""
        start = 0
        for m in self._special.finditer(text) if self._special else ():
            yield text[start:m.start()], False
            yield m.group(), True
            start = m.end()
        yield text[start:], False

    def _encode_chunk(self, chunk: str) -> list[int]:
        """Merge the chunk's byte characters by rank: the lowest-ranked adjacent pair, everywhere, until none is
        left in the merges."""
        parts = [self.byte_encoder[b] for b in chunk.encode("utf-8")]
        while len(parts) > 1:
            pair = min(zip(parts, parts[1:]), key=lambda p: self.ranks.get(p, len(self.ranks)))
            if pair not in self.ranks:
                break
            parts = replace_pair(parts, pair, pair[0] + pair[1])
        try:
            ids = [self.vocab[p] for p in parts]
        except KeyError as e:
            raise ValueError(f"BPETokenizer.encode: the token {e.args[0]!r} (from {chunk!r}) is not in the "
                             f"vocabulary (does it lack some of the 256 byte tokens?)") from None
        self._chunks[chunk] = ids
        return ids

    # ---- decoding -------------------------------------------------------------------------------------------

    def decode(self, ids: Any) -> str:
        """The text of a sequence of ids (a list, an array or a 1-D Tensor); broken UTF-8 becomes U+FFFD."""
        arr = np.asarray(ids.data if isinstance(ids, Tensor) else ids).reshape(-1)
        text, pending = [], bytearray()
        for i in arr.tolist():
            if i in self.special_ids:
                text.append(pending.decode("utf-8", errors="replace") + self.special_ids[i])
                pending.clear()
            elif i in self.decoder:
                pending.extend(self.byte_decoder[c] for c in self.decoder[i])
            else:
                raise ValueError(f"BPETokenizer.decode: token id {i} is not in the vocabulary of {self.vocab_size}")
        return "".join(text) + pending.decode("utf-8", errors="replace")

    # ---- training -------------------------------------------------------------------------------------------

    @classmethod
    def train(cls, text: str, vocab_size: int) -> BPETokenizer:
        """A byte-level BPE learned from `text`: the 256 byte tokens, then merges of the most frequent adjacent
        pair within the pre-tokenised chunks (ties: the pair of smaller ids), until `vocab_size` tokens.

        Ids follow `tokenizers`' BpeTrainer (the bytes in the order of their characters, then each new token),
        and so do the merges; it stops early when no pair is left.
        """
        if vocab_size < 256:
            raise ValueError(f"BPETokenizer.train: vocab_size must be at least 256 (one token per byte), "
                             f"got {vocab_size}")
        alphabet = sorted(bytes_to_unicode().values())
        tokens = list(alphabet)  # id -> token string
        ids = {t: i for i, t in enumerate(tokens)}
        encoder = bytes_to_unicode()
        chunk_counts = Counter(pretokenizer().findall(text))
        words = [[ids[encoder[b]] for b in chunk.encode("utf-8")] for chunk in chunk_counts]
        counts = list(chunk_counts.values())
        pair_counts: Counter[tuple[int, int]] = Counter()
        where: dict[tuple[int, int], set[int]] = {}  # pair -> the words that hold it (or once did)
        for w, word in enumerate(words):
            for pair in zip(word, word[1:]):
                pair_counts[pair] += counts[w]
                where.setdefault(pair, set()).add(w)
        heap = [(-n, pair) for pair, n in pair_counts.items()]
        heapq.heapify(heap)
        merges: list[tuple[str, str]] = []
        while len(tokens) < vocab_size and heap:
            negative, pair = heapq.heappop(heap)
            if -negative != pair_counts[pair]:  # counts only fall, so a stale entry goes back with its count
                if pair_counts[pair] > 0:
                    heapq.heappush(heap, (-pair_counts[pair], pair))
                continue
            merged = tokens[pair[0]] + tokens[pair[1]]
            if merged not in ids:  # two merges can spell the same token
                ids[merged] = len(tokens)
                tokens.append(merged)
            merges.append((tokens[pair[0]], tokens[pair[1]]))
            for w in where.pop(pair):
                new_pairs = _merge_in_word(words, w, pair, ids[merged], counts[w], pair_counts)
                for new_pair in new_pairs:
                    where.setdefault(new_pair, set()).add(w)
                    heapq.heappush(heap, (-pair_counts[new_pair], new_pair))
        return cls(ids, merges)

    # ---- files ----------------------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path_or_name: str | os.PathLike) -> BPETokenizer:
        """GPT-2's tokenizer files: vocab.json, merges.txt, and the special tokens of tokenizer.json if there is
        one. `path_or_name`: a folder, or a model name downloaded with huggingface_hub (see models/hub.py)."""
        op = "BPETokenizer.from_pretrained"
        folder = pretrained_dir(path_or_name, op)
        vocab = json.loads(pretrained_file(folder, "vocab.json", op).read_text(encoding="utf-8"))
        merges = _parse_merges(pretrained_file(folder, "merges.txt", op).read_text(encoding="utf-8"), op)
        special = {}
        if (folder / "tokenizer.json").is_file():
            added = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8")).get("added_tokens") or []
            special = {t["content"]: t["id"] for t in added}
        return cls(vocab, merges, special)

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write vocab.json and merges.txt (GPT-2's format, which transformers and tokenizers read)."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        vocab = self.vocab | self.special_tokens
        (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (folder / "merges.txt").write_text(_merges_text(self.merges), encoding="utf-8")

    def to_dict(self) -> dict[str, str]:
        """For checkpoints: the vocabulary, merges and special tokens as strings."""
        return {"vocab": json.dumps(self.vocab, ensure_ascii=False), "merges": _merges_text(self.merges),
                "special_tokens": json.dumps(self.special_tokens, ensure_ascii=False)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> BPETokenizer:
        merges = _parse_merges(str(state["merges"]), "BPETokenizer.from_dict")
        return cls(json.loads(str(state["vocab"])), merges, json.loads(str(state["special_tokens"])))


def replace_pair(parts: list, pair: tuple, merged: Any) -> list:
    """parts with every occurrence of the adjacent `pair` replaced by `merged`, left to right (aaa -> [aa, a])."""
    out, i = [], 0
    while i < len(parts):
        if i + 1 < len(parts) and parts[i] == pair[0] and parts[i + 1] == pair[1]:
            out.append(merged)
            i += 2
        else:
            out.append(parts[i])
            i += 1
    return out


def _merges_text(merges: Iterable[tuple[str, str]]) -> str:
    """merges.txt: a version line, then one pair per line separated by a space (no token holds a space)."""
    return "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)


def _parse_merges(text: str, op: str) -> list[tuple[str, str]]:
    lines = text.split("\n")
    start = 1 if lines[0].startswith("#version") else 0
    merges = []
    for number, line in enumerate(lines[start:], start=start + 1):
        if not line:
            continue
        pair = line.split(" ")
        if len(pair) != 2:
            raise ValueError(f"{op}: merges line {number}: expected two tokens separated by a space, got {line!r}")
        merges.append((pair[0], pair[1]))
    return merges


def _merge_in_word(words: list[list[int]], w: int, pair: tuple[int, int], new: int, count: int,
                   pair_counts: Counter[tuple[int, int]]) -> set[tuple[int, int]]:
    """Replace every `pair` in words[w] (left to right) by `new`, updating the pair counts by the word's `count`;
    return the pairs with `new` in it, whose counts rose."""
    word = words[w]
    merged = replace_pair(word, pair, new)
    if len(merged) == len(word):
        return set()  # the pair had left this word through an earlier merge
    for p in zip(word, word[1:]):
        pair_counts[p] -= count
    for p in zip(merged, merged[1:]):
        pair_counts[p] += count
    words[w] = merged
    return {p for p in zip(merged, merged[1:]) if new in p}
