"""Neural-network building blocks: `Module`, layers, losses, `functional`, `init` and `utils`."""

from . import functional, init, utils
from .conv import AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, MaxPool2d  # noqa: F401
from .layers import (
    ELU,
    GELU,
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    L1Loss,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MSELoss,
    NLLLoss,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
    Unflatten,
)
from .module import Module, ModuleList, Parameter, Sequential

__all__ = ["Module", "ModuleList", "Parameter", "Sequential", "functional", "init", "utils",
           "Linear", "Embedding", "LayerNorm", "Dropout", "ReLU", "Sigmoid", "Tanh", "GELU",
           "Identity", "Flatten", "Unflatten", "Softmax", "LogSoftmax", "LeakyReLU", "SiLU", "ELU", "Softplus",
           "CrossEntropyLoss", "MSELoss", "L1Loss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss"]
