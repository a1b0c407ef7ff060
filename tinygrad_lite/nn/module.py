"""`Module`: the container that finds parameters and sub-modules by attribute, as in PyTorch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np

from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as a trainable weight (always requires grad)."""

    __slots__ = ()

    def __init__(self, data: Any, dtype: Any = None):
        super().__init__(data, requires_grad=True, dtype=dtype)


def _clear_grads(params: Iterable[Tensor], set_to_none: bool = True) -> None:
    """Drop each gradient, or with `set_to_none=False` fill it with zeros in place (Module's and Optimizer's
    zero_grad)."""
    for p in params:
        if set_to_none or p.grad is None:
            p.grad = None
        else:
            p.grad.data[...] = 0


class _IncompatibleKeys(NamedTuple):
    """What `load_state_dict(strict=False)` returns, as PyTorch's."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class _ModuleStack:
    """The modules whose forward is running, outermost first (read by graph drawing and traces).

    `listeners` (e.g. `viz.record`) get `enter(module, args)` before and `exit(module, output)`
    after each forward; `output` is None when the forward raised.
    """

    active: list[Module] = []
    recording = 0  # > 0 while somebody listens; otherwise __call__ skips the bookkeeping
    listeners: list[Any] = []


class Module:
    """Base class: assign Parameters, Modules and ModuleLists as attributes; write `forward`."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if name in self._buffers:  # `self.running_mean = new` keeps it a buffer, as in PyTorch
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{type(self).__name__}: buffer {name!r} must be a Tensor or None, "
                                f"got {type(value).__name__}")
            self._buffers[name] = value
            object.__setattr__(self, name, value)
            return
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor the module keeps but does not train (batch norm's running statistics): in `state_dict`
        unless `persistent=False`, never in `parameters()`."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_buffer: the name must be a non-empty string without dots, got {name!r}")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"register_buffer: {type(self).__name__} already has an attribute {name!r}")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: buffer {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not _ModuleStack.recording:
            return self.forward(*args, **kwargs)
        _ModuleStack.active.append(self)
        for listener in _ModuleStack.listeners:
            listener.enter(self, args)
        output = None
        try:
            output = self.forward(*args, **kwargs)
            return output
        finally:
            _ModuleStack.active.pop()
            for listener in reversed(_ModuleStack.listeners):
                listener.exit(self, output)

    # ---- traversal ---------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, with dotted paths (`blocks.0.attn`)."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            path, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield path, module
            children = [(f"{path}.{n}" if path else n, m) for n, m in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator[Module]:
        """The direct sub-modules (each once)."""
        for _, m in self.named_children():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(attribute name, module) for each direct sub-module (each once)."""
        seen: set[int] = set()
        for name, m in self._modules.items():
            if id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Every parameter once (shared ones under their first name), with dotted names."""
        seen: set[int] = set()
        for path, module in self.named_modules():
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{path}.{name}" if path else name), p

    def parameters(self) -> list[Parameter]:
        """Every parameter once, in `named_parameters` order."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        """Every buffer (not None), with dotted names."""
        for path, module in self.named_modules():
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{path}.{name}" if path else name), b

    def buffers(self) -> list[Tensor]:
        return [b for _, b in self.named_buffers()]

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call `fn` on every sub-module, then on this one (as PyTorch: `model.apply(init_weights)`)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ---- modes and grads ---------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout on) on this module and every sub-module."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode (dropout off); same as `train(False)`."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient, or with `set_to_none=False` fill it with zeros in place."""
        _clear_grads(self.parameters(), set_to_none)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Turn gradients of every parameter on or off (freeze a part of a model); returns self."""
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    # ---- dtype ------------------------------------------------------------------------------
    def to(self, dtype: Any) -> Module:
        """Cast every floating-point parameter and buffer (and gradient) to `dtype`, in place; returns self.

        Integer buffers are left alone, as in PyTorch. 'cpu', the only device, is accepted and changes nothing.
        """
        if isinstance(dtype, str) and dtype == "cpu":
            return self
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"{type(self).__name__}.to: expected a dtype such as np.float64 (or 'cpu'), "
                            f"got {dtype!r}") from None
        if dt.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: nn.Module.to only accepts floating point dtypes, got {dt}")
        for t in [*self.parameters(), *self.buffers()]:
            if t.dtype.kind == "f":
                t.data = t.data.astype(dt, copy=False)
                if t.grad is not None:
                    t.grad.data = t.grad.data.astype(dt, copy=False)
        return self

    def float(self) -> Module:
        """Cast floating-point parameters and buffers to float32; returns self."""
        return self.to(np.float32)

    def double(self) -> Module:
        """Cast floating-point parameters and buffers to float64; returns self."""
        return self.to(np.float64)

    # ---- state ----------------------------------------------------------------------------
    def _persistent_buffers(self) -> Iterator[tuple[str, Tensor]]:
        for path, module in self.named_modules():
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    yield (f"{path}.{name}" if path else name), b

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter's and persistent buffer's array, by dotted name."""
        return {name: t.data.copy() for name, t in [*self.named_parameters(), *self._persistent_buffers()]}

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> _IncompatibleKeys:
        """Copy arrays into the parameters and persistent buffers by name, in place (each keeps its dtype).

        A shape mismatch is a RuntimeError; so are missing and unexpected keys unless `strict=False`.
        Returns the named tuple (missing_keys, unexpected_keys), as PyTorch.
        """
        own = dict([*self.named_parameters(), *self._persistent_buffers()])
        missing = [name for name in own if name not in state_dict]
        unexpected = [name for name in state_dict if name not in own]
        errors = []
        if strict and missing:
            errors.append(f"Missing key(s) in state_dict: {', '.join(repr(k) for k in missing)}.")
        if strict and unexpected:
            errors.append(f"Unexpected key(s) in state_dict: {', '.join(repr(k) for k in unexpected)}.")
        values = {}
        for name, t in own.items():
            if name in state_dict:
                value = state_dict[name]
                values[name] = np.asarray(value.data if isinstance(value, Tensor) else value)
                if values[name].shape != t.shape:
                    errors.append(f"size mismatch for {name!r}: copying a param with shape {values[name].shape} "
                                  f"from checkpoint, the shape in current model is {t.shape}.")
        if errors:
            raise RuntimeError(f"Error(s) in load_state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        for name, value in values.items():
            own[name].data[...] = value
        return _IncompatibleKeys(missing, unexpected)

    # ---- printing ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            for name, m in self._modules.items():
                child = repr(m).replace("\n", "\n  ")
                lines.append(f"  ({name}): {child}")
            lines.append(")")
            return "\n".join(lines)
        return lines[0] + ")"


class ModuleList(Module):
    """A list of modules, registered as `0`, `1`, ... so their parameters are found."""

    def __init__(self, modules: Iterable[Module] = ()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList.append: expected a Module, got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Modules applied one after another: `Sequential(Linear(784, 30), Sigmoid(), Linear(30, 10))`."""

    def __init__(self, *modules: Module):
        super().__init__(modules)

    def forward(self, x: Any) -> Any:
        for m in self:
            x = m(x)
        return x
