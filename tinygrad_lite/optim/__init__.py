"""Optimizers with PyTorch's update rules; learning-rate schedules are in `optim.lr_scheduler`.

    >>> opt = AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    >>> loss.backward(); opt.step(); opt.zero_grad()

`params` is a list of Parameters or, as in PyTorch, a list of parameter groups
(`{"params": [...], "weight_decay": 0.0}`) whose keys override the defaults.
Updates happen in place on `p.data`, in the parameters' dtype, through one
scratch buffer per parameter so that a step allocates no large temporaries.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import kernels
from ..nn.module import _clear_grads
from ..nn.utils import clip_grad_norm_  # noqa: F401  (PyTorch's place is nn.utils; kept here for old callers)
from ..tensor import Tensor

ParamsArg = Iterable[Tensor] | Iterable[dict[str, Any]]


def _check_numbers(owner: str, **values: Any) -> None:
    """Hyperparameters are finite real numbers (a string or None from a config file is a TypeError here)."""
    for name, value in values.items():
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{owner}: {name} must be finite, got {value}")


class Optimizer:
    """Base class: parameter groups, per-parameter state, zero_grad and state_dict."""

    def __init__(self, params: ParamsArg, defaults: dict[str, Any]):
        self.defaults = defaults
        if isinstance(params, Tensor) or not isinstance(params, Iterable):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or parameter groups, "
                            f"got {type(params).__name__} (pass model.parameters())")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        self._scratch: dict[Tensor, np.ndarray] = {}
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        params = [group["params"]] if isinstance(group["params"], Tensor) else list(group["params"])
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise ValueError(f"{name}: unknown option(s) {sorted(unknown)} in a parameter group")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"{name}: can only optimize tensors that require grad, got {type(p).__name__}")
            if p._ctx is not None:
                raise ValueError(f"{name}: can't optimize a non-leaf tensor (the output of {p._ctx.name}); "
                                 f"pass the parameters it was computed from")
            if id(p) in seen:
                raise ValueError(f"{name}: a parameter appears in more than one group")
            seen.add(id(p))
        self.param_groups.append({**self.defaults, **group, "params": params})

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient, or with `set_to_none=False` fill it with zeros in place."""
        _clear_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad.data, self.state.setdefault(p, {}), group)
                    p._version += 1  # an in-place update, as PyTorch counts it: a stale graph's backward refuses

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    def _buffer(self, p: Tensor) -> np.ndarray:
        """A reusable scratch array of p's shape and dtype (not part of the state)."""
        buf = self._scratch.get(p)
        if buf is None or buf.shape != p.data.shape or buf.dtype != p.data.dtype:
            buf = self._scratch[p] = np.empty_like(p.data)
        return buf

    # ---- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{"state": {index: {...}}, "param_groups": [{options..., "params": [indices]}]}, as PyTorch."""
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {index[id(p)]: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore options and per-parameter state saved by `state_dict` for the same parameter layout."""
        name = type(self).__name__
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state has {len(groups)} parameter groups, "
                             f"the optimizer {len(self.param_groups)}")
        params = []
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"{name}.load_state_dict: group {i} has {len(saved['params'])} parameters in the "
                                 f"state but {len(own['params'])} in the optimizer")
            params.extend(zip(saved["params"], own["params"]))
        saved_state = {int(k): v for k, v in state_dict["state"].items()}
        new_state: dict[Tensor, dict[str, Any]] = {}
        for idx, p in params:
            entry = saved_state.get(int(idx))
            if entry is None:
                continue
            new_state[p] = {}
            for k, v in entry.items():
                if isinstance(v, np.ndarray) and v.ndim > 0:
                    if v.shape != p.shape:
                        raise ValueError(f"{name}.load_state_dict: state {k!r} of parameter {idx} has shape "
                                         f"{v.shape}, the parameter {p.shape}")
                    v = v.astype(p.dtype, copy=True)
                elif isinstance(v, np.ndarray | np.generic):
                    v = v.item()
                new_state[p][k] = v
        for saved, own in zip(groups, self.param_groups):
            own.update({k: (v.item() if isinstance(v, np.ndarray | np.generic) else v)
                        for k, v in saved.items() if k != "params"})
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            opts = ", ".join(f"{k}={v}" for k, v in g.items() if k != "params")
            lines.append(f"  group {i}: {len(g['params'])} params, {opts}")
        return "\n".join(lines + [")"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (PyTorch's form), Nesterov and L2 weight decay."""

    def __init__(self, params: ParamsArg, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, dampening: float = 0.0):
        _check_numbers("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay, dampening=dampening)
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got {lr}, {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov,
                                      dampening=dampening))

    def _update(self, p, grad, state, group):
        lr, momentum, wd = float(group["lr"]), float(group["momentum"]), float(group["weight_decay"])
        if wd:
            grad = grad + wd * p.data
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(grad, dtype=p.dtype, copy=True)
            else:
                buf *= momentum
                buf += grad if group["dampening"] == 0 else (1.0 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        step = np.multiply(grad, lr, out=self._buffer(p))
        p.data -= step


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; `weight_decay` is L2 added to the gradient, as PyTorch's Adam."""

    decoupled = False

    def __init__(self, params: ParamsArg, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        _check_numbers(type(self).__name__, lr=lr, eps=eps, weight_decay=weight_decay)
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{type(self).__name__}: invalid lr={lr}, betas={betas}, eps={eps} "
                             f"or weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))
        self._compiled_updates: dict[np.dtype, list] = {}

    def step(self) -> None:
        """The update of every parameter; those the compiled loops take run together, in one call per dtype."""
        try:
            super().step()
            for batch in self._compiled_updates.values():
                kernels.adam_(batch)
        finally:
            self._compiled_updates = {}  # (they hold the gradients: not kept past the step, nor half-gathered)

    def _update(self, p, grad, state, group):
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
        state["step"] += 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        if wd and not self.decoupled:
            grad = grad + wd * p.data
        decay = 1.0 - lr * wd if self.decoupled else 1.0
        step_size = lr / (1.0 - beta1 ** state["step"])
        bias_correction2_sqrt = math.sqrt(1.0 - beta2 ** state["step"])
        if _compiled(p.data, grad, m, v):
            scalars = (decay, step_size, 1.0 - beta1, beta2, 1.0 - beta2, bias_correction2_sqrt, eps)
            self._compiled_updates.setdefault(p.dtype, []).append((p.data, grad, m, v, scalars))
            return
        buf = self._buffer(p)
        if decay != 1.0:
            p.data *= decay
        # m.lerp_(grad, 1 - beta1) and v = beta2 v + (1 - beta2) g², in PyTorch's order of operations
        np.subtract(grad, m, out=buf)
        buf *= 1.0 - beta1
        m += buf
        v *= beta2
        np.multiply(grad, grad, out=buf)
        buf *= 1.0 - beta2
        v += buf
        np.sqrt(v, out=buf)
        buf /= bias_correction2_sqrt
        buf += eps
        np.divide(m, buf, out=buf)
        buf *= step_size
        p.data -= buf


def _compiled(p: np.ndarray, *others: np.ndarray) -> bool:
    """Whether a compiled kernel can update p in place from `others`: kernels on, one float dtype, contiguous."""
    return kernels.enabled() and p.dtype in _KERNEL_DTYPES and p.flags.writeable and all(
        isinstance(a, np.ndarray) and a.dtype == p.dtype and a.flags.c_contiguous for a in (p, *others))


_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay before the Adam step."""

    decoupled = True

    def __init__(self, params: ParamsArg, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


class RMSprop(Optimizer):
    """RMSprop (Hinton): divide the gradient by a running RMS of recent gradients, as PyTorch's.

    v = alpha v + (1 - alpha) g²; with `centered`, the running mean ḡ of g is subtracted (v - ḡ²);
    step g / (sqrt(v) + eps), through a momentum buffer when `momentum` > 0. `weight_decay` is L2.
    """

    def __init__(self, params: ParamsArg, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        _check_numbers("RMSprop", lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum)
        for name, value in dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum).items():
            if value < 0:
                raise ValueError(f"RMSprop: {name} must be >= 0, got {value}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=bool(centered)))

    def _update(self, p, grad, state, group):
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        wd, momentum = float(group["weight_decay"]), float(group["momentum"])
        if not state:
            state.update(step=0, square_avg=np.zeros_like(p.data))
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p.data)
        state["step"] += 1
        if wd:
            grad = grad + wd * p.data
        square_avg, avg = state["square_avg"], self._buffer(p)
        square_avg *= alpha
        square_avg += (1.0 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            weight = 1.0 - alpha  # grad_avg.lerp_(grad, weight), in PyTorch's two forms
            if weight < 0.5:
                grad_avg += weight * (grad - grad_avg)
            else:
                grad_avg[...] = grad - (grad - grad_avg) * alpha
            np.subtract(square_avg, grad_avg * grad_avg, out=avg)
            np.sqrt(avg, out=avg)
        else:
            np.sqrt(square_avg, out=avg)
        avg += eps
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / avg
            np.multiply(buf, lr, out=avg)
        else:
            np.divide(grad, avg, out=avg)
            avg *= lr
        p.data -= avg


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.): divide by the root of the sum of all past squared gradients, as PyTorch's.

    The step size decays as lr / (1 + (step - 1) lr_decay); the sums start at `initial_accumulator_value`.
    `weight_decay` is L2 added to the gradient.
    """

    def __init__(self, params: ParamsArg, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        _check_numbers("Adagrad", lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                       initial_accumulator_value=initial_accumulator_value, eps=eps)
        for name, value in dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                initial_accumulator_value=initial_accumulator_value, eps=eps).items():
            if value < 0:
                raise ValueError(f"Adagrad: {name} must be >= 0, got {value}")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))
        for group in self.param_groups:  # PyTorch makes the state at once: it is in state_dict before any step
            for p in group["params"]:
                self._init_state(p, self.state.setdefault(p, {}), group)

    @staticmethod
    def _init_state(p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state.update(step=0, sum=np.full_like(p.data, group["initial_accumulator_value"]))

    def _update(self, p, grad, state, group):
        if not state:  # a group added after construction
            self._init_state(p, state, group)
        state["step"] += 1
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        if wd:
            grad = grad + wd * p.data
        clr = lr / (1.0 + (state["step"] - 1) * float(group["lr_decay"]))
        total, std = state["sum"], self._buffer(p)
        total += grad * grad
        np.sqrt(total, out=std)
        std += eps
        np.divide(grad, std, out=std)
        std *= clr
        p.data -= std


from . import lr_scheduler  # noqa: E402,F401  (torch.optim.lr_scheduler's place; it needs Optimizer above)
