"""Optimizers and learning-rate schedules with PyTorch's update rules.

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

from .perf import blas_threads
from .tensor import Tensor

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

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (PyTorch's set_to_none=True)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad.data, self.state.setdefault(p, {}), group)

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

    def _update(self, p, grad, state, group):
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
        state["step"] += 1
        m, v, buf = state["exp_avg"], state["exp_avg_sq"], self._buffer(p)
        if wd and self.decoupled:
            p.data *= 1.0 - lr * wd
        elif wd:
            grad = grad + wd * p.data
        # m.lerp_(grad, 1 - beta1) and v = beta2 v + (1 - beta2) g², in PyTorch's order of operations
        np.subtract(grad, m, out=buf)
        buf *= 1.0 - beta1
        m += buf
        v *= beta2
        np.multiply(grad, grad, out=buf)
        buf *= 1.0 - beta2
        v += buf
        step_size = lr / (1.0 - beta1 ** state["step"])
        np.sqrt(v, out=buf)
        buf /= math.sqrt(1.0 - beta2 ** state["step"])
        buf += eps
        np.divide(m, buf, out=buf)
        buf *= step_size
        p.data -= buf


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay before the Adam step."""

    decoupled = True

    def __init__(self, params: ParamsArg, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


def clip_grad_norm_(params: Iterable[Tensor] | Tensor, max_norm: float) -> float:
    """Scale all gradients in place so that their joint L2 norm is at most `max_norm`; returns the norm before."""
    _check_numbers("clip_grad_norm_", max_norm=max_norm)
    if max_norm <= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be positive, got {max_norm}")
    params = [params] if isinstance(params, Tensor) else list(params)
    grads = [p.grad.data for p in params if p.grad is not None]
    with blas_threads(1):  # see perf.matmul
        total = math.sqrt(sum(float(np.dot(g.reshape(-1), g.reshape(-1))) for g in grads))
    coef = float(max_norm) / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= coef
    return total


# ---- learning-rate schedules ------------------------------------------------------------------


class LRScheduler:
    """Sets every group's lr from `lr_at(step)`; call `step()` once per epoch or iteration, after `opt.step()`."""

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def lr_at(self, step: int, base_lr: float) -> float:
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(self.last_epoch, base)

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_lrs = [float(b) for b in state["base_lrs"]]
        self.last_epoch = int(state["last_epoch"]) - 1
        self.step()


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (step // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        if not isinstance(step_size, int | np.integer) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, step: int, base_lr: float) -> float:
        return base_lr * self.gamma ** (step // self.step_size)


def cosine_with_warmup(step: int, base_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> float:
    """Linear warm-up to base_lr over `warmup_steps`, then cosine decay to `min_lr` at `total_steps` (nanoGPT)."""
    if step < warmup_steps:
        return base_lr * (step + 1) / (warmup_steps + 1)
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (base_lr - min_lr)


class CosineWarmupLR(LRScheduler):
    """`cosine_with_warmup` as a scheduler: warm-up, cosine decay, then `min_lr`."""

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int, min_lr: float = 0.0):
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"CosineWarmupLR: need 0 <= warmup_steps <= total_steps, "
                             f"got {warmup_steps} and {total_steps}")
        self.warmup_steps, self.total_steps, self.min_lr = warmup_steps, total_steps, min_lr
        super().__init__(optimizer)

    def lr_at(self, step: int, base_lr: float) -> float:
        return cosine_with_warmup(step, base_lr, self.warmup_steps, self.total_steps, self.min_lr)
