"""Datasets and batches, as `torch.utils.data`: `Dataset`, `TensorDataset`, `DataLoader`, `random_split`.

    >>> loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=Generator().manual_seed(0))
    >>> for xb, yb in loader:          # xb: (64, ...) Tensors, the last batch smaller unless drop_last
    ...     ...

Shuffling draws a new order for every pass from `generator` (an int seed or a Generator), else from the
global generator (`manual_seed`). Samples are loaded in this process (there are no worker processes).
"""

from __future__ import annotations

import collections.abc
import itertools
import math
import numbers
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .random import get_generator
from .tensor import Tensor


class Dataset:
    """Base class of map-style datasets: implement `__getitem__(index)` and `__len__()`."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")


class TensorDataset(Dataset):
    """Sample i is `(t[i] for t in tensors)`; every tensor has the same first dimension."""

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} is a {type(t).__name__}, not a Tensor "
                                f"(wrap arrays with tinygrad_lite.from_numpy)")
            if t.ndim == 0 or len(t) != len(tensors[0]):
                shapes = ", ".join(str(t.shape) for t in tensors)
                raise ValueError(f"TensorDataset: size mismatch between tensors: shapes {shapes} need one common "
                                 f"first dimension")
        self.tensors = tensors

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Dataset, lengths: Sequence[int | float], generator: Any = None) -> list[Subset]:
    """Split `dataset` into non-overlapping random Subsets of the given lengths, or of the given fractions
    (summing to 1; the samples left over by rounding down go one each to the first subsets)."""
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        sizes = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        for i, size in enumerate(sizes):
            if size == 0:
                warnings.warn(f"random_split: length of split at index {i} is 0: it will be empty", stacklevel=2)
    else:
        sizes = list(lengths)
    if any(not isinstance(k, int | np.integer) or k < 0 for k in sizes):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions summing to 1, got {lengths}")
    if sum(sizes) != n:
        raise ValueError(f"random_split: the lengths {list(lengths)} sum to {sum(sizes)}, the dataset has {n} samples")
    order = get_generator(generator, "random_split").permutation(n).tolist()
    return [Subset(dataset, order[end - size:end]) for end, size in zip(itertools.accumulate(sizes), sizes)]


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, field by field, as torch's default_collate.

    Tensors and arrays are stacked along a new first dimension, keeping their dtype; Python floats give
    float64, ints int64, bools bool; tuples and lists of fields give lists, dicts dicts; strings stay as given.
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return Tensor.stack(batch)
    if isinstance(elem, np.ndarray | np.generic):
        stacked = np.stack(batch)
        if stacked.dtype.kind not in "fiub":
            raise TypeError(f"default_collate: batch must contain tensors, arrays, numbers, dicts or lists; "
                            f"found an array of dtype {stacked.dtype}")
        return Tensor(stacked, dtype=stacked.dtype)
    if isinstance(elem, bool):
        return Tensor(np.array(batch, dtype=np.bool_))
    if isinstance(elem, numbers.Integral):
        return Tensor(np.array(batch, dtype=np.int64))
    if isinstance(elem, numbers.Real):
        return Tensor(np.array(batch, dtype=np.float64), dtype=np.float64)
    if isinstance(elem, str | bytes):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple keeps its type
        return type(elem)(*(default_collate(field) for field in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of equal size")
        return [default_collate(field) for field in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, arrays, numbers, dicts or lists; "
                    f"found {type(elem).__name__}")


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size`: in order, or reshuffled on every pass.

    The last batch is smaller when the length is not a multiple of `batch_size`, unless `drop_last`.
    `collate_fn` turns a list of samples into a batch (default: `default_collate`).
    """

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False, *,
                 collate_fn: Callable[[list[Any]], Any] | None = None, drop_last: bool = False,
                 generator: Any = None):
        if not isinstance(batch_size, int | np.integer) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size should be a positive integer value, got {batch_size!r}")
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(f"DataLoader: the dataset must have __getitem__ and __len__, "
                            f"got {type(dataset).__name__}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), bool(shuffle), drop_last
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self.generator = get_generator(generator, "DataLoader")

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _batches(self) -> Iterator[np.ndarray]:
        n = len(self.dataset)
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        for i in range(len(self)):
            yield order[i * self.batch_size:(i + 1) * self.batch_size]

    def __iter__(self) -> Iterator[Any]:
        whole_tensors = isinstance(self.dataset, TensorDataset) and self.collate_fn is default_collate
        for indices in self._batches():
            if whole_tensors:  # one gather per tensor: the same batch as stacking the samples one by one
                yield [t[indices] for t in self.dataset.tensors]
            else:
                yield self.collate_fn([self.dataset[int(i)] for i in indices])
