"""Finite-difference gradient checking, modelled on `torch.autograd.gradcheck`, with a readable report.

    >>> gradcheck(lambda a, b: (a @ b).tanh(), a, b)          # True, or raises GradcheckError
    >>> gradgradcheck(lambda a, b: (a @ b).tanh(), a, b)      # the same for the gradient's own gradient
    >>> print(gradcheck_report(lambda a, b: (a @ b).tanh(), a, b))
    >>> print(check_model(model, lambda m, b: F.cross_entropy(m(b[0]), b[1]), (x, y)))

Each input is compared separately: the analytic Jacobian (from backward) with
central differences, entry by entry (`fast=False`), or through one random
projection vᵀJu (`fast=True`, one backward and two forwards per input). An
entry passes when |analytic − numeric| <= atol + rtol·|numeric| (PyTorch's rule);
the report also gives the CS231n relative error |a − n| / max(|a|, |n|).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import autograd
from .functional import _analytic_jacobians, _call, _vjp
from .tensor import Tensor, enable_grad, graph_order, no_grad

if TYPE_CHECKING:
    from .nn.module import Module

# check_model's automatic fast mode: parameters with more elements than this are checked by projection
FAST_ABOVE = 256


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with finite differences; `.report` holds the full GradcheckReport."""

    def __init__(self, message: str, report: GradcheckReport):
        super().__init__(message)
        self.report = report


@dataclass
class InputCheck:
    """How one input's (or parameter's) gradient compares with finite differences.

    worst / worst_output: the input and output element furthest past the tolerance
    (when any entry fails) or else with the largest relative error, and the analytic
    and numeric values there; None in fast mode, which compares one projection.
    """

    name: str
    shape: tuple[int, ...]
    mode: Literal["full", "fast"]
    max_abs_error: float
    max_rel_error: float
    worst: tuple[int, ...] | None
    worst_output: tuple[int, ...] | None
    analytic: float
    numeric: float
    failures: int
    checked: int

    @property
    def passed(self) -> bool:
        return self.failures == 0


@dataclass
class GradcheckReport:
    """Per-input results of one gradient check; `str()` gives a table, `.passed` the verdict."""

    inputs: list[InputCheck]
    eps: float
    atol: float
    rtol: float

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.inputs)

    def __getitem__(self, name_or_index: str | int) -> InputCheck:
        if isinstance(name_or_index, int):
            return self.inputs[name_or_index]
        for c in self.inputs:
            if c.name == name_or_index:
                return c
        raise KeyError(f"GradcheckReport: no input named {name_or_index!r}; have {[c.name for c in self.inputs]}")

    def __str__(self) -> str:
        header = ("input", "shape", "mode", "max abs err", "max rel err", "worst at (out <- in)", "analytic",
                  "numeric", "result")
        rows = [header] + [(
            c.name, str(c.shape), c.mode, f"{c.max_abs_error:.2e}", f"{c.max_rel_error:.2e}",
            "projection" if c.mode == "fast" else "-" if c.worst is None else
            f"{_index(c.worst_output)} <- {_index(c.worst)}",
            f"{c.analytic:.6g}", f"{c.numeric:.6g}",
            "ok" if c.passed else f"FAIL ({c.failures}/{c.checked})",
        ) for c in self.inputs]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        verdict = "passed" if self.passed else "FAILED"
        return (f"gradcheck {verdict} (central differences, eps={self.eps:g}; pass when |a-n| <= "
                f"{self.atol:g} + {self.rtol:g}|n|; rel err = |a-n|/max(|a|,|n|))\n" + "\n".join(lines))

    def first_failure(self) -> InputCheck | None:
        return next((c for c in self.inputs if not c.passed), None)


def relative_error(analytic: np.ndarray, numeric: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """CS231n's |a − n| / max(|a|, |n|), elementwise; 0 where max(|a|, |n|) <= floor.

    With floor = atol, entries that are round-off noise around an exact zero
    (1e-11 against 0 would read as 100 %) are judged by their absolute error only.
    """
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    big = scale > floor
    return np.where(big, np.abs(analytic - numeric) / np.where(big, scale, 1.0), 0.0)


def numeric_jacobian(fn: Callable[..., Tensor], inputs: Sequence[Tensor], index: int, eps: float = 1e-6,
                     scheme: Literal["central", "forward"] = "central") -> np.ndarray:
    """The finite-difference Jacobian of `fn(*inputs)` with respect to `inputs[index]`, (n_out, n_in).

    The perturbed input keeps its dtype, so a float32 input gives float32
    round-off (what the step-size experiments measure); gradcheck itself
    only accepts float64.
    """
    x = inputs[index]
    columns = []
    for j in range(x.numel()):
        direction = np.zeros(x.numel())
        direction[j] = 1.0
        columns.append(_directional_derivative(fn, inputs, x, direction.reshape(x.shape), eps, scheme))
    if not columns:
        with no_grad():
            return np.zeros((_call(fn, inputs).numel(), 0))
    return np.stack(columns, axis=1)


def jacobians(fn: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6
              ) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """(analytic, numeric) Jacobians (n_out, n_in) for each input; None for inputs without grad."""
    _, analytic = _analytic_jacobians(fn, inputs)
    return [None if a is None else (a, numeric_jacobian(fn, inputs, i, eps)) for i, a in enumerate(analytic)]


def gradcheck_report(fn: Callable[..., Tensor], *inputs: Tensor, eps: float = 1e-6, atol: float = 1e-5,
                     rtol: float = 1e-3, fast: bool | None = False, seed: int = 0,
                     names: Sequence[str] | None = None) -> GradcheckReport:
    """Compare `fn`'s gradient for every input that requires grad with central differences.

    inputs: float64 Tensors. fast: True checks projections vᵀJu, False full
    Jacobians, None picks fast for inputs of more than FAST_ABOVE elements.
    names: one label per input (default `input 0`, `input 1`, ...).
    """
    _check_inputs(inputs)
    names = list(names) if names is not None else [f"input {i}" for i in range(len(inputs))]
    if len(names) != len(inputs):
        raise ValueError(f"gradcheck: got {len(names)} names for {len(inputs)} inputs")
    modes = ["fast" if (fast if fast is not None else t.numel() > FAST_ABOVE) else "full" for t in inputs]
    rng = np.random.default_rng(seed)
    with no_grad():
        out_shape = _call(fn, inputs).shape
    full_jacobians = _analytic_jacobians(fn, inputs)[1] if "full" in modes else None
    if "fast" in modes:
        v = rng.standard_normal(out_shape)
        projected = _vjp(fn, inputs, v)[1]
    checks = []
    for i, (x, name, mode) in enumerate(zip(inputs, names, modes)):
        if not x.requires_grad:
            continue
        if mode == "full":
            analytic, numeric = full_jacobians[i], numeric_jacobian(fn, inputs, i, eps)
            checks.append(_compare(name, x.shape, "full", analytic, numeric, out_shape, atol, rtol))
        else:
            u = rng.standard_normal(x.shape)
            analytic = np.array([[np.sum(projected[i] * u)]])
            numeric = np.array([[np.dot(_directional_derivative(fn, inputs, x, u, eps, "central"), v.ravel())]])
            checks.append(_compare(name, x.shape, "fast", analytic, numeric, out_shape, atol, rtol))
    return GradcheckReport(checks, eps, atol, rtol)


def gradcheck(fn: Callable[..., Tensor], *inputs: Tensor, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, fast: bool = False, seed: int = 0) -> bool:
    """Check `fn`'s gradients against central differences; True, or raise GradcheckError.

    inputs: float64 Tensors (those with requires_grad are checked). The full
    Jacobian is compared element by element; `fast=True` compares random
    projections vᵀJu instead (one backward and two forwards per input).
    The error names the first failing input and element and carries the
    whole report (`err.report`, printable).
    """
    report = gradcheck_report(fn, *inputs, eps=eps, atol=atol, rtol=rtol, fast=fast, seed=seed)
    bad = report.first_failure()
    if bad is not None:
        where = ("random projection vᵀJu" if bad.worst is None else
                 f"output element {_index(bad.worst_output)}, input element {_index(bad.worst)}")
        culprits = _failing_ops(fn, inputs, second_order=False)
        raise GradcheckError(
            f"gradcheck failed for {bad.name} (shape {bad.shape}): at {where}: analytic {bad.analytic:.6g} vs "
            f"numeric {bad.numeric:.6g}; max abs error {bad.max_abs_error:.3g}, max rel error "
            f"{bad.max_rel_error:.3g} ({bad.failures} of {bad.checked} entries outside atol={atol}, rtol={rtol})"
            + (f"; ops that fail gradcheck on their own: {', '.join(culprits)}" if culprits else "")
            + f"\n{report}", report)
    return True


def gradgradcheck(fn: Callable[..., Tensor], *inputs: Tensor, grad_outputs: Any = None, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3, fast: bool = False, seed: int = 0) -> bool:
    """Check the second derivatives of `fn` against central differences of its first ones (as
    torch.autograd.gradgradcheck); True, or raise GradcheckError.

    The checked function is v ↦ vᵀJ (the gradient, made with create_graph=True), with a random
    `grad_outputs` v (float64, from `seed`) checked as an input too. The error names the input
    whose gradient is wrong, its element, and the ops of `fn` whose double backward fails alone.
    """
    report, wanted = _gradgrad_report(fn, inputs, grad_outputs, eps, atol, rtol, fast, seed)
    bad = report.first_failure()
    if bad is None:
        return True
    where = "a random projection" if bad.worst is None else (
        f"{_gradient_entry(wanted, inputs, bad.worst_output[0])} with respect to {bad.name}{_index(bad.worst)}")
    culprits = _failing_ops(fn, inputs, second_order=True)
    raise GradcheckError(
        f"gradgradcheck failed: the derivative of {where}: analytic {bad.analytic:.6g} vs numeric "
        f"{bad.numeric:.6g} ({bad.failures} of {bad.checked} entries outside atol={atol}, rtol={rtol})"
        + (f"; ops that fail gradgradcheck on their own: {', '.join(culprits)}" if culprits else "")
        + f"\n{report}", report)


def gradgradcheck_report(fn: Callable[..., Tensor], *inputs: Tensor, grad_outputs: Any = None, eps: float = 1e-6,
                         atol: float = 1e-5, rtol: float = 1e-3, fast: bool = False, seed: int = 0) -> GradcheckReport:
    """The per-input table of `gradgradcheck` (rows: each input, then `grad_outputs`), without raising."""
    return _gradgrad_report(fn, inputs, grad_outputs, eps, atol, rtol, fast, seed)[0]


def _gradgrad_report(fn: Callable[..., Tensor], inputs: Sequence[Tensor], grad_outputs: Any, eps: float,
                     atol: float, rtol: float, fast: bool, seed: int) -> tuple[GradcheckReport, list[Tensor]]:
    """gradcheck of (inputs, v) ↦ vᵀJ, and the inputs whose gradients it concatenates."""
    _check_inputs(inputs)
    with enable_grad():
        out = _call(fn, inputs)
    v = grad_outputs if grad_outputs is not None else np.random.default_rng(seed).standard_normal(out.shape)
    v = Tensor(np.asarray(v.data if isinstance(v, Tensor) else v, dtype=np.float64), requires_grad=True)
    wanted = [t for t in inputs if t.requires_grad]

    def first_gradients(*args: Tensor) -> Tensor:
        *xs, cotangent = args
        with enable_grad():  # finite differences call this under no_grad; its gradient needs the graph
            out = _call(fn, xs)
        grads = autograd.grad(out, [x for x in xs if x.requires_grad], cotangent, create_graph=True,
                              allow_unused=True)
        pieces = [(Tensor(np.zeros(x.shape)) if g is None else g).reshape(-1) for x, g in zip(wanted, grads)]
        return Tensor.cat(pieces)

    names = [f"input {i}" for i in range(len(inputs))] + ["grad_outputs"]
    report = gradcheck_report(first_gradients, *inputs, v, eps=eps, atol=atol, rtol=rtol, fast=fast, seed=seed,
                              names=names)
    return report, wanted


def _gradient_entry(wanted: list[Tensor], inputs: Sequence[Tensor], flat: int) -> str:
    """Which input's gradient, and which element of it, entry `flat` of the concatenated gradients is."""
    for t in wanted:
        if flat < t.numel():
            i = next(j for j, x in enumerate(inputs) if x is t)
            return f"the gradient of input {i}{_index(tuple(int(k) for k in np.unravel_index(flat, t.shape)))}"
        flat -= t.numel()
    return "the gradient"


def _failing_ops(fn: Callable[..., Tensor], inputs: Sequence[Tensor], second_order: bool) -> list[str]:
    """The ops in `fn`'s graph that fail gradcheck (or gradgradcheck) alone, on their own recorded inputs."""
    with enable_grad():
        out = _call(fn, inputs)
    failing = []
    for node in graph_order([out], needs_grad_only=True):
        ctx = node._ctx
        if ctx is None:
            continue
        leaves = [Tensor(p.data.astype(np.float64) if p.dtype.kind == "f" else p.data, requires_grad=p.requires_grad)
                  for p in ctx.parents]
        op = lambda *xs, c=ctx: type(c).apply(*xs, **c.params)  # noqa: E731
        if second_order:
            report = _gradgrad_report(op, leaves, None, 1e-6, 1e-5, 1e-3, True, 0)[0]
        else:
            report = gradcheck_report(op, *leaves, fast=True)
        if not report.passed and ctx.name not in failing:
            failing.append(ctx.name)
    return failing


def check_model(model: Module, loss_fn: Callable[[Module, Any], Tensor], batch: Any, fast: bool | None = None,
                eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0) -> GradcheckReport:
    """Gradcheck every parameter of `model` for the loss `loss_fn(model, batch)`; one report row per parameter.

    The check runs on float64 copies of the weights and of the batch's float
    arrays, in eval mode (dropout would make the loss random); the original
    weights, their `.grad` and the train/eval flags are restored afterwards.
    fast None checks parameters of more than FAST_ABOVE elements by projection.
    """
    named = list(model.named_parameters())
    if not named:
        raise ValueError(f"check_model: {type(model).__name__} has no parameters to check")
    originals = [(p, p.data, p.grad) for _, p in named]
    training = [(m, m.training) for m in model.modules()]
    batch64 = _float64(batch)
    try:
        for _, p in named:
            p.data = p.data.astype(np.float64)
        model.eval()
        return gradcheck_report(lambda *_: loss_fn(model, batch64), *(p for _, p in named), eps=eps, atol=atol,
                                rtol=rtol, fast=fast, seed=seed, names=[n for n, _ in named])
    finally:
        for p, data, g in originals:
            p.data, p.grad = data, g
        for m, flag in training:
            object.__setattr__(m, "training", flag)


# ---- helpers ------------------------------------------------------------------------------------
def _check_inputs(inputs: Sequence[Tensor]) -> None:
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"gradcheck: input {i} is a {type(t).__name__}, not a Tensor")
        if t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} has dtype {t.dtype}; finite differences need float64, where "
                            f"round-off is 1e-16 rather than 1e-7 (make it with dtype=np.float64)")
    if not any(t.requires_grad for t in inputs):
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")


def _directional_derivative(fn: Callable[..., Tensor], inputs: Sequence[Tensor], x: Tensor, direction: np.ndarray,
                            eps: float, scheme: Literal["central", "forward"]) -> np.ndarray:
    """(f(x + eps d) − f(x − eps d)) / 2 eps (central) or (f(x + eps d) − f(x)) / eps (forward), flattened."""
    if scheme not in ("central", "forward"):
        raise ValueError(f"numeric_jacobian: scheme must be 'central' or 'forward', got {scheme!r}")
    original = x.data
    try:
        with no_grad():
            x.data = (original + eps * direction).astype(original.dtype)
            plus = _call(fn, inputs).data.astype(np.float64).ravel()
            x.data = (original - eps * direction).astype(original.dtype) if scheme == "central" else original
            minus = _call(fn, inputs).data.astype(np.float64).ravel()
    finally:
        x.data = original
    return (plus - minus) / (2 * eps if scheme == "central" else eps)


def _compare(name: str, shape: tuple[int, ...], mode: Literal["full", "fast"], analytic: np.ndarray,
             numeric: np.ndarray, out_shape: tuple[int, ...], atol: float, rtol: float) -> InputCheck:
    """One InputCheck from (n_out, n_in) analytic and numeric matrices."""
    # a NaN or infinite entry on either side is a failure, never "close"
    finite = np.isfinite(analytic) & np.isfinite(numeric)
    with np.errstate(invalid="ignore"):
        diff = np.where(finite, np.abs(analytic - numeric), np.inf)
        excess = np.where(finite, diff - (atol + rtol * np.abs(numeric)), np.inf)
    if diff.size == 0:
        return InputCheck(name, shape, mode, 0.0, 0.0, None, None, 0.0, 0.0, 0, 0)
    rel = relative_error(analytic, numeric, floor=atol)
    # worst: furthest past the tolerance if anything fails, else the largest relative (then absolute) error
    worst_key = excess if (excess > 0).any() else rel if rel.max() > 0 else diff
    out_i, in_i = np.unravel_index(np.argmax(worst_key), diff.shape)
    full = mode == "full"
    return InputCheck(
        name=name, shape=tuple(shape), mode=mode,
        max_abs_error=float(diff.max()), max_rel_error=float(rel.max()),
        worst=tuple(int(k) for k in np.unravel_index(in_i, shape)) if full else None,
        worst_output=tuple(int(k) for k in np.unravel_index(out_i, out_shape)) if full else None,
        analytic=float(analytic[out_i, in_i]), numeric=float(numeric[out_i, in_i]),
        failures=int((excess > 0).sum()), checked=int(diff.size),
    )


def _index(index: tuple[int, ...] | None) -> str:
    return "[" + ", ".join(map(str, index or ())) + "]"


def _float64(batch: Any) -> Any:
    """`batch` with every float Tensor or ndarray as a float64 copy (tuples, lists and dicts walked)."""
    if isinstance(batch, Tensor):
        return Tensor(batch.data, dtype=np.float64) if batch.dtype.kind == "f" else batch
    if isinstance(batch, np.ndarray):
        return batch.astype(np.float64) if batch.dtype.kind == "f" else batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(_float64(b) for b in batch)
    if isinstance(batch, dict):
        return {k: _float64(v) for k, v in batch.items()}
    return batch
