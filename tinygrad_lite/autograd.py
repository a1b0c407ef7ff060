"""`torch.autograd.grad`: gradients of outputs with respect to chosen inputs, returned instead of accumulated.

    >>> (gx,) = autograd.grad(loss, [x], create_graph=True)     # gx carries a graph of its own
    >>> penalty = (gx * gx).sum()                                # a gradient penalty
    >>> penalty.backward()                                       # d penalty / d every leaf
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .tensor import Tensor, _input_list, _seed, backward_walk


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs), weighted by `grad_outputs` (the vector of a vector-Jacobian product), as a tuple
    of Tensors shaped like `inputs`; nothing is added to any `.grad`, as torch.autograd.grad.

    grad_outputs: one per output (None seeds a one-element output with 1). retain_graph keeps the
    saved values for another backward (default: create_graph). create_graph records the gradient's
    own graph, so that it can be differentiated again. An input the outputs do not depend on is an
    error unless allow_unused, which gives None for it.
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = _input_list("grad", inputs)
    if isinstance(grad_outputs, Tensor) or grad_outputs is None:
        grad_outputs = [grad_outputs] * len(outs) if grad_outputs is None else [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outs):
        raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outs)} outputs")
    for i, out in enumerate(outs):
        if not isinstance(out, Tensor):
            raise TypeError(f"grad: outputs[{i}] is a {type(out).__name__}, not a Tensor")
    seeds = [_seed("grad", out, g) for out, g in zip(outs, grad_outputs)]
    results = backward_walk(outs, seeds, create_graph if retain_graph is None else retain_graph, create_graph, ins)
    for i, (t, g) in enumerate(zip(ins, results)):
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: inputs[{i}] (shape {t.shape}) was not used to compute the outputs; "
                               f"pass allow_unused=True to get None for it")
    return tuple(results)
