"""Finite-difference gradient checking, modelled on `torch.autograd.gradcheck`."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with central finite differences."""


def _output(fn: Callable[..., Tensor], inputs: tuple[Tensor, ...]) -> Tensor:
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: the function must return a Tensor, got {type(out).__name__}")
    return out


def _vjp(fn: Callable[..., Tensor], inputs: tuple[Tensor, ...], v: np.ndarray) -> list[np.ndarray]:
    """vᵀJ for every input that requires grad, leaving the inputs' .grad as they were."""
    saved = [t.grad for t in inputs]
    for t in inputs:
        t.grad = None
    try:
        out = _output(fn, inputs)
        grads = [np.zeros_like(t.data) for t in inputs]
        if out.requires_grad:
            out.backward(v.reshape(out.shape))
            grads = [t.grad.data.copy() if t.grad is not None else g for t, g in zip(inputs, grads)]
        return grads
    finally:
        for t, g in zip(inputs, saved):
            t.grad = g


def _numeric_directional(fn: Callable[..., Tensor], inputs: tuple[Tensor, ...], x: Tensor,
                         direction: np.ndarray, eps: float) -> np.ndarray:
    """(f(x + eps d) - f(x - eps d)) / 2 eps, flattened."""
    original = x.data.copy()
    try:
        with no_grad():
            x.data = original + eps * direction
            plus = _output(fn, inputs).data.astype(np.float64).ravel()
            x.data = original - eps * direction
            minus = _output(fn, inputs).data.astype(np.float64).ravel()
    finally:
        x.data = original
    return (plus - minus) / (2 * eps)


def jacobians(fn: Callable[..., Tensor], inputs: tuple[Tensor, ...], eps: float = 1e-6
              ) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """(analytic, numeric) Jacobians (n_out, n_in) for each input; None for inputs without grad."""
    with no_grad():
        n_out = _output(fn, inputs).data.size
    result: list[tuple[np.ndarray, np.ndarray] | None] = []
    rows = [_vjp(fn, inputs, row) for row in np.eye(n_out)]
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            result.append(None)
            continue
        analytic = np.array([r[i].ravel() for r in rows]).reshape(n_out, x.data.size)
        numeric = np.zeros((n_out, x.data.size))
        for j in range(x.data.size):
            d = np.zeros(x.data.size)
            d[j] = 1.0
            numeric[:, j] = _numeric_directional(fn, inputs, x, d.reshape(x.shape), eps)
        result.append((analytic, numeric))
    return result


def gradcheck(fn: Callable[..., Tensor], *inputs: Tensor, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, fast: bool = False, seed: int = 0) -> bool:
    """Check `fn`'s gradients against central differences; True, or raise GradcheckError.

    inputs: float64 Tensors (those with requires_grad are checked). The full
    Jacobian is compared element by element; `fast=True` compares random
    projections vᵀJu instead (one backward and two forwards per input).
    """
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"gradcheck: input {i} is a {type(t).__name__}, not a Tensor")
        if t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} has dtype {t.dtype}; finite differences need float64 "
                            f"(make it with dtype=np.float64)")
    if not any(t.requires_grad for t in inputs):
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    if fast:
        return _fast_gradcheck(fn, inputs, eps, atol, rtol, np.random.default_rng(seed))
    for i, pair in enumerate(jacobians(fn, inputs, eps)):
        if pair is not None:
            _compare(f"input {i} (shape {inputs[i].shape})", *pair, inputs[i].shape, atol, rtol)
    return True


def _fast_gradcheck(fn, inputs, eps, atol, rtol, rng) -> bool:
    with no_grad():
        out_shape = _output(fn, inputs).shape
    v = rng.standard_normal(out_shape)
    analytic_vjps = _vjp(fn, inputs, v)
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            continue
        u = rng.standard_normal(x.shape)
        analytic = np.array([np.sum(analytic_vjps[i] * u)])
        numeric = np.array([np.dot(_numeric_directional(fn, inputs, x, u, eps), v.ravel())])
        _compare(f"input {i} (shape {x.shape}), projection vᵀJu", analytic, numeric, (1,), atol, rtol)
    return True


def _compare(what: str, analytic: np.ndarray, numeric: np.ndarray, shape: tuple[int, ...],
             atol: float, rtol: float) -> None:
    diff = np.abs(analytic - numeric)
    bad = diff > atol + rtol * np.abs(numeric)
    if not bad.any():
        return
    worst = np.unravel_index(np.argmax(np.where(bad, diff, -1)), analytic.shape)
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    rel = np.where(scale > 0, diff / np.where(scale > 0, scale, 1), 0.0)
    element = np.unravel_index(worst[-1], shape) if len(shape) else ()
    raise GradcheckError(
        f"gradcheck failed for {what}: at output element {worst[0]}, input element {tuple(int(i) for i in element)}: "
        f"analytic {analytic[worst]:.6g} vs numeric {numeric[worst]:.6g}; "
        f"max abs error {diff.max():.3g}, max rel error {rel.max():.3g} "
        f"({int(bad.sum())} of {bad.size} entries outside atol={atol}, rtol={rtol})"
    )
