"""Random numbers: one global generator (`manual_seed`) and torch-style `Generator` objects.

    >>> import tinygrad_lite as tl
    >>> tl.manual_seed(0)              # every draw that is given no seed now repeats from run to run
    >>> g = tl.Generator().manual_seed(1)
    >>> x = tl.randn(3, generator=g)   # or pass a numpy Generator, or an int seed

Everything random in the library takes its numbers from `get_generator(seed)`: the given numpy
Generator itself, `np.random.default_rng(seed)` for an int (or a sequence of ints) so that an explicit
seed gives the same numbers as before there was a global generator, and the global generator when no
seed is given. The numbers differ from PyTorch's (numpy's PCG64 is not torch's Mersenne Twister): the
same seed reproduces a run here, not a PyTorch run.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

_FRESH_GENERATOR_SEED = 67280421310721  # torch.Generator()'s seed before manual_seed, as in PyTorch
_MAX_SEED = 2**64


def _seed_value(op: str, seed: Any) -> int:
    """An int seed in [0, 2**64); negative ones wrap around, as in torch.manual_seed."""
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise TypeError(f"{op}: seed must be an int, got {type(seed).__name__} {seed!r}")
    if not -(_MAX_SEED // 2) <= seed < _MAX_SEED:
        raise ValueError(f"{op}: seed must be in [-2**63, 2**64), got {seed}")
    return int(seed) % _MAX_SEED


def _entropy_seed() -> int:
    return int.from_bytes(os.urandom(8), "little")


class Generator(np.random.Generator):
    """A numpy Generator (PCG64) with torch.Generator's methods: `Generator().manual_seed(0)`.

    Being a numpy Generator, it goes wherever the library takes `seed=` or `generator=`.
    """

    def __init__(self, device: str = "cpu"):
        if device != "cpu":
            raise ValueError(f"Generator: only the 'cpu' device exists here, got {device!r}")
        super().__init__(np.random.PCG64(_FRESH_GENERATOR_SEED))
        self._initial_seed = _FRESH_GENERATOR_SEED

    def manual_seed(self, seed: int) -> Generator:
        """Restart from `seed`: the same stream as `np.random.default_rng(seed)`; returns self."""
        value = _seed_value("manual_seed", seed)
        self.bit_generator.state = np.random.PCG64(value).state
        self._initial_seed = value
        return self

    def seed(self) -> int:
        """Restart from a non-deterministic seed and return it."""
        value = _entropy_seed()
        self.manual_seed(value)
        return value

    def initial_seed(self) -> int:
        """The seed this generator last started from."""
        return self._initial_seed

    def get_state(self) -> dict[str, Any]:
        """The generator's state (numpy's bit-generator state dict; `tinygrad_lite.save` stores it)."""
        return self.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> Generator:
        """Restore a state from `get_state`; returns self."""
        if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
            raise ValueError(f"set_state: expected a PCG64 state dict from get_state(), got {type(state).__name__}")
        self.bit_generator.state = state
        return self


default_generator = Generator()
default_generator.seed()  # a new seed per process, as PyTorch's default generator


def manual_seed(seed: int) -> Generator:
    """Seed the global generator (every random draw given no seed or generator); returns it."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the global generator non-deterministically; returns the seed."""
    return default_generator.seed()


def initial_seed() -> int:
    """The seed the global generator last started from."""
    return default_generator.initial_seed()


def get_rng_state() -> dict[str, Any]:
    """The global generator's state (a dict, where PyTorch gives a uint8 tensor)."""
    return default_generator.get_state()


def set_rng_state(new_state: dict[str, Any]) -> None:
    """Restore the global generator's state from `get_rng_state`."""
    default_generator.set_state(new_state)


def get_generator(seed: Any = None, op: str = "random") -> np.random.Generator:
    """The Generator to draw from: the global one for None, a numpy (or tinygrad_lite) Generator itself,
    else `np.random.default_rng(seed)` (an int, a sequence of ints, a SeedSequence or a BitGenerator)."""
    if seed is None:
        return default_generator
    if isinstance(seed, np.random.Generator):
        return seed
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{op}: the seed/generator must be a non-negative int, a sequence of them or a Generator, "
                      f"got {type(seed).__name__} {seed!r} ({e})") from None
