"""Convolutional networks for MNIST: the ladder of chapter 6 of Nielsen's book, and a modern default.

    >>> model = CNN(CONFIGS["cnn"], seed=0)          # two conv blocks with batch norm
    >>> logits = model(images)                       # images: (B, 1, 28, 28) -> (B, 10)

Each conv block is conv -> max-pool -> (batch norm) -> activation. Nielsen's ConvPoolLayer adds its bias
after the pooling; max-pooling commutes with adding a per-channel constant, so conv (with bias) -> pool ->
activation is the same layer. Pooling before the batch norm and the activation (max-pooling commutes with
ReLU too) lets both work on a quarter of the numbers.

The ladder (network3.py; test accuracy as the book reports it):

    nielsen-1conv     conv 20x5x5, pool 2 -> FC 100 -> 10, sigmoid                              98.78 %
    nielsen-2conv     + conv 40x5x5, pool 2                                                         99.06 %
    nielsen-relu      the same with ReLU (and L2 regularisation in the recipe)                    99.23 %
    nielsen-expanded  the same, trained on the data expanded by one-pixel shifts                 99.37 %
    nielsen-dropout   two FC layers of 1,000 with dropout 0.5 on each FC layer's input, expanded  99.60 %
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinygrad_lite import Tensor, nn

ACTIVATIONS = {"relu": lambda x: x.relu(), "sigmoid": lambda x: x.sigmoid()}


@dataclass(frozen=True)
class CNNConfig:
    """The shape of a CNN: conv blocks (channels per block), then fully-connected layers, then the classes."""

    conv_channels: tuple[int, ...] = (32, 64)
    kernel_size: int = 5
    pool_size: int = 2
    batch_norm: bool = True
    fc_sizes: tuple[int, ...] = (256,)  # hidden fully-connected layers
    dropout: float = 0.5  # on the input of every fully-connected layer (as network3.py's p_dropout)
    activation: str = "relu"
    init: str = "torch"  # "torch": PyTorch's defaults; "nielsen": network3.py's Gaussians and zero softmax layer
    in_channels: int = 1
    image_size: int = 28
    num_classes: int = 10

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"CNNConfig: activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.init not in ("torch", "nielsen"):
            raise ValueError(f"CNNConfig: init must be 'torch' or 'nielsen', got {self.init!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"CNNConfig: dropout must be in [0, 1), got {self.dropout}")
        if self.feature_size() < 1:
            raise ValueError(f"CNNConfig: {len(self.conv_channels)} conv blocks with kernel {self.kernel_size} and "
                             f"pool {self.pool_size} leave nothing of a {self.image_size}x{self.image_size} image")

    def feature_size(self) -> int:
        """The side of the feature maps after the last conv block (valid convolutions, then pooling)."""
        side = self.image_size
        for _ in self.conv_channels:
            side = (side - self.kernel_size + 1) // self.pool_size
        return side


CONFIGS: dict[str, CNNConfig] = {
    "cnn": CNNConfig(),
    "nielsen-1conv": CNNConfig(conv_channels=(20,), batch_norm=False, fc_sizes=(100,), dropout=0.0,
                               activation="sigmoid", init="nielsen"),
    "nielsen-2conv": CNNConfig(conv_channels=(20, 40), batch_norm=False, fc_sizes=(100,), dropout=0.0,
                               activation="sigmoid", init="nielsen"),
    "nielsen-relu": CNNConfig(conv_channels=(20, 40), batch_norm=False, fc_sizes=(100,), dropout=0.0,
                              init="nielsen"),
    "nielsen-expanded": CNNConfig(conv_channels=(20, 40), batch_norm=False, fc_sizes=(100,), dropout=0.0,
                                  init="nielsen"),
    "nielsen-dropout": CNNConfig(conv_channels=(20, 40), batch_norm=False, fc_sizes=(1000, 1000), dropout=0.5,
                                 init="nielsen"),
}


class ConvBlock(nn.Module):
    """conv (valid, stride 1) -> max-pool -> (batch norm) -> activation: (B, C, H, W) -> (B, O, H', W')."""

    def __init__(self, in_channels: int, out_channels: int, config: CNNConfig, seed: np.random.Generator):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, config.kernel_size, bias=not config.batch_norm, seed=seed)
        self.pool = nn.MaxPool2d(config.pool_size)
        self.bn = nn.BatchNorm2d(out_channels) if config.batch_norm else None
        self.activation = ACTIVATIONS[config.activation]

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.conv(x))
        if self.bn is not None:
            x = self.bn(x)
        return self.activation(x)


class CNN(nn.Module):
    """Conv blocks, then fully-connected layers with dropout on their inputs: (B, 1, 28, 28) -> (B, 10) logits."""

    def __init__(self, config: CNNConfig = CNNConfig(), seed: int | np.random.Generator | None = None):
        super().__init__()
        self.config = config
        rng = np.random.default_rng(seed)
        channels = (config.in_channels, *config.conv_channels)
        self.blocks = nn.ModuleList(ConvBlock(c_in, c_out, config, rng) for c_in, c_out in zip(channels, channels[1:]))
        widths = (channels[-1] * config.feature_size() ** 2, *config.fc_sizes, config.num_classes)
        self.fc = nn.ModuleList(nn.Linear(n_in, n_out, seed=rng) for n_in, n_out in zip(widths, widths[1:]))
        self.drop = nn.Dropout(config.dropout, seed=rng) if config.dropout > 0 else None
        self.activation = ACTIVATIONS[config.activation]
        if config.init == "nielsen":
            self.apply(lambda m: _nielsen_init(m, config.pool_size ** 2, rng))
            self.fc[-1].weight.data[...] = 0.0  # network3.py's SoftmaxLayer starts at zero
            self.fc[-1].bias.data[...] = 0.0

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, in_channels, image_size, image_size) -> (B, num_classes) logits."""
        for block in self.blocks:
            x = block(x)
        x = x.flatten(1)
        last = len(self.fc) - 1
        for i, layer in enumerate(self.fc):
            x = layer(x if self.drop is None else self.drop(x))
            if i < last:
                x = self.activation(x)
        return x


def _nielsen_init(module: nn.Module, pool_area: int, rng: np.random.Generator) -> None:
    """network3.py: weights N(0, 1/n_out) with n_out the outputs each input feeds (divided by the pooling area
    for a conv layer), biases N(0, 1)."""
    if isinstance(module, nn.Conv2d):
        out_channels, _, kh, kw = module.weight.shape
        fan_out = out_channels * kh * kw / pool_area
    elif isinstance(module, nn.Linear):
        fan_out = module.out_features
    else:
        return
    module.weight.data = rng.normal(0.0, math.sqrt(1.0 / fan_out), module.weight.shape).astype(np.float32)
    if module.bias is not None:
        module.bias.data = rng.standard_normal(module.bias.shape).astype(np.float32)
