"""Neural-network building blocks: `Module`, layers, and `functional`."""

from .module import Module, ModuleList, Parameter, Sequential

__all__ = ["Module", "ModuleList", "Parameter", "Sequential"]
