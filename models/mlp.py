"""A multi-layer perceptron: Linear layers with an activation (and optional dropout) between them.

    >>> model = MLP([784, 30, 10], activation="sigmoid", activate_output=True)   # Nielsen's network
    >>> model = MLP([784, 512, 512, 10], activation="relu", dropout=0.2, seed=0)  # a modern one
    >>> logits = model(x)                                                         # x: (N, 784) -> (N, 10)
"""

from __future__ import annotations

import numpy as np

from tinygrad_lite import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU}


class MLP(nn.Module):
    """Linear(sizes[0], sizes[1]), activation, dropout, ..., Linear(sizes[-2], sizes[-1]).

    activate_output: apply the activation after the last layer too (Nielsen's
    sigmoid outputs for the quadratic cost); off for logits fed to cross-entropy.
    seed: an int or numpy Generator for the initial weights and the dropout masks.
    """

    def __init__(self, sizes: list[int], activation: str = "relu", dropout: float = 0.0,
                 activate_output: bool = False, seed: int | np.random.Generator | None = None):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least an input and an output width, got {sizes}")
        if not all(isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 1 for n in sizes):
            raise ValueError(f"MLP: every layer width in sizes must be a positive integer, got {sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"MLP: unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        rng = np.random.default_rng(seed)
        self.sizes, self.activation_name, self.activate_output = list(sizes), activation, activate_output
        self.layers = nn.ModuleList(nn.Linear(n_in, n_out, seed=rng) for n_in, n_out in zip(sizes, sizes[1:]))
        self.activation = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout, seed=rng) if dropout > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, sizes[0]) -> (N, sizes[-1])."""
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last or self.activate_output:
                x = self.activation(x)
            if i < last and self.dropout is not None:
                x = self.dropout(x)
        return x
