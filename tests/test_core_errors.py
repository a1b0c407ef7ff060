"""Bad input gets a clear error (type + message naming the op and the shapes/values), raised where the mistake is."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_lite import Tensor


def t(*shape: int) -> Tensor:
    return Tensor(np.ones(shape, dtype=np.float32), requires_grad=True)


# (id, thunk, exception type, message fragments that must all appear)
CASES = [
    ("matmul-misaligned", lambda: t(3, 4) @ t(5, 6), ValueError, ["matmul", "(3, 4)", "(5, 6)"]),
    ("matmul-1d-misaligned", lambda: t(3) @ t(4), ValueError, ["matmul", "(3,)", "(4,)"]),
    ("matmul-batch", lambda: t(2, 3, 4) @ t(3, 4, 5), ValueError, ["matmul", "batch", "(2, 3, 4)", "(3, 4, 5)"]),
    ("matmul-0d", lambda: t() @ t(3), ValueError, ["matmul", "at least 1 dimension"]),
    ("rmatmul-ndarray", lambda: np.ones((2, 5)) @ t(3, 4), ValueError, ["matmul", "(2, 5)", "(3, 4)"]),
    ("add-broadcast", lambda: t(3, 4) + t(5), ValueError, ["add", "(3, 4)", "(5,)", "broadcast"]),
    ("radd-ndarray", lambda: np.ones(5) + t(3, 4), ValueError, ["add", "(5,)", "(3, 4)"]),
    ("mul-broadcast", lambda: t(2, 3) * t(3, 2), ValueError, ["mul", "(2, 3)", "(3, 2)"]),
    ("sub-broadcast", lambda: t(2) - t(3), ValueError, ["sub", "(2,)", "(3,)"]),
    ("div-broadcast", lambda: t(2) / t(3), ValueError, ["div", "(2,)", "(3,)"]),
    ("pow-broadcast", lambda: t(2) ** t(3), ValueError, ["pow", "(2,)", "(3,)"]),
    ("maximum-broadcast", lambda: t(2).maximum(t(3)), ValueError, ["maximum", "(2,)", "(3,)"]),
    ("where-broadcast", lambda: Tensor.where(np.ones(4, bool), t(2), t(2)), ValueError, ["where", "(4,)", "(2,)"]),
    ("add-string", lambda: t(2) + "a", TypeError, ["add", "str"]),
    ("mul-none", lambda: t(2) * None, TypeError, ["mul", "NoneType"]),
    ("reshape-impossible", lambda: t(2, 3).reshape(4, 2), ValueError, ["reshape", "(2, 3)", "(4, 2)"]),
    ("reshape-minus1", lambda: t(2, 3).reshape(4, -1), ValueError, ["reshape", "(2, 3)", "(4, -1)"]),
    ("reshape-two-minus1", lambda: t(2, 3).reshape(-1, -1), ValueError, ["reshape", "(-1, -1)"]),
    ("reshape-float", lambda: t(2, 3).reshape(3.0, 2), TypeError, ["reshape", "integers"]),
    ("view-impossible", lambda: t(6).view(5), ValueError, ["reshape", "(6,)", "(5,)"]),
    ("sum-axis", lambda: t(2, 3).sum(axis=2), ValueError, ["sum", "dim 2", "2 dimensions"]),
    ("mean-neg-axis", lambda: t(2, 3).mean(axis=-3), ValueError, ["mean", "dim -3"]),
    ("max-axis", lambda: t(2, 3).amax(axis=(0, 5)), ValueError, ["amax", "dim 5"]),
    ("var-repeated-axis", lambda: t(2, 3).var(axis=(1, -1)), ValueError, ["var", "repeated"]),
    ("sum-axis-float", lambda: t(2, 3).sum(axis=1.0), TypeError, ["sum", "dim must be an int"]),
    ("softmax-axis", lambda: t(2, 3).softmax(axis=2), ValueError, ["softmax", "dim 2"]),
    ("softmax-tuple-axis", lambda: t(2, 3).softmax(axis=(0, 1)), TypeError, ["softmax", "single int"]),
    ("log-softmax-axis", lambda: t(2, 3).log_softmax(axis=-3), ValueError, ["log_softmax", "dim -3"]),
    ("logsumexp-axis", lambda: t(2).logsumexp(axis=1), ValueError, ["logsumexp", "dim 1"]),
    ("argmax-axis", lambda: t(2).argmax(axis=3), ValueError, ["argmax", "dim 3"]),
    ("max-empty", lambda: t(0, 3).amax(axis=0), ValueError, ["amax", "empty", "(0, 3)"]),
    ("argmax-empty", lambda: t(3, 0).argmax(axis=1), ValueError, ["argmax", "empty", "(3, 0)"]),
    ("permute-repeated", lambda: t(2, 3).permute(0, 0), ValueError, ["permute", "repeated", "(0, 0)"]),
    ("permute-count", lambda: t(2, 3).permute(0, 1, 2), ValueError, ["permute", "3 dims", "2 dimensions"]),
    ("permute-range", lambda: t(2, 3).permute(0, 5), ValueError, ["permute", "dim 5"]),
    ("transpose-1d", lambda: t(3).transpose(0, 1), ValueError, ["transpose", "dim 1", "1 dimension"]),
    ("transpose-range", lambda: t(2, 3).transpose(0, 2), ValueError, ["transpose", "dim 2"]),
    ("expand", lambda: t(2, 3).expand(4, 3), ValueError, ["expand", "(2, 3)", "(4, 3)"]),
    ("expand-fewer-dims", lambda: t(2, 3).expand(3), ValueError, ["expand", "(3,)", "(2, 3)"]),
    ("unsqueeze-range", lambda: t(2).unsqueeze(3), ValueError, ["unsqueeze", "dim 3"]),
    ("squeeze-range", lambda: t(2, 3).squeeze(2), ValueError, ["squeeze", "dim 2"]),
    ("flatten-order", lambda: t(2, 3, 4).flatten(2, 1), ValueError, ["flatten", "start_dim 2", "end_dim 1"]),
    ("cat-mismatch", lambda: Tensor.cat([t(2, 3), t(2, 4)], axis=0), ValueError, ["cat", "(2, 4)", "(2, 3)"]),
    ("cat-rank", lambda: Tensor.cat([t(2, 3), t(3)]), ValueError, ["cat", "(3,)", "(2, 3)"]),
    ("cat-empty", lambda: Tensor.cat([]), ValueError, ["cat", "at least one"]),
    ("cat-axis", lambda: Tensor.cat([t(2), t(2)], axis=1), ValueError, ["cat", "dim 1"]),
    ("cat-ndarray", lambda: Tensor.cat([t(2), np.ones(2)]), TypeError, ["cat", "item 1", "ndarray"]),
    ("cat-0d", lambda: Tensor.cat([t(), t()]), ValueError, ["cat", "0-d"]),
    ("stack-mismatch", lambda: Tensor.stack([t(2, 3), t(3, 2)]), ValueError, ["stack", "(3, 2)", "(2, 3)"]),
    ("stack-axis", lambda: Tensor.stack([t(2), t(2)], axis=3), ValueError, ["stack", "dim 3"]),
    ("split-sizes", lambda: t(5).split([2, 2]), ValueError, ["split", "[2, 2]", "5"]),
    ("split-zero", lambda: t(5).split(0), ValueError, ["split", "positive"]),
    ("chunk-zero", lambda: t(5).chunk(0), ValueError, ["chunk", "positive"]),
    ("masked-fill-int-mask", lambda: t(2, 2).masked_fill(np.ones((2, 2), int), 0.0), TypeError,
     ["masked_fill", "boolean", "int64"]),
    ("masked-fill-float-mask", lambda: t(2).masked_fill(t(2), 0.0), TypeError, ["masked_fill", "boolean", "float32"]),
    ("masked-fill-shape", lambda: t(2, 3).masked_fill(np.ones((3, 3), bool), 0.0), ValueError,
     ["masked_fill", "(3, 3)", "(2, 3)"]),
    ("masked-fill-grows", lambda: t(3).masked_fill(np.ones((2, 3), bool), 0.0), ValueError,
     ["masked_fill", "(2, 3)", "(3,)"]),
    ("where-float-cond", lambda: Tensor.where(np.ones(2), t(2), t(2)), TypeError, ["where", "boolean"]),
    ("getitem-range", lambda: t(2, 3)[5], IndexError, ["getitem", "(2, 3)", "5"]),
    ("getitem-range-axis1", lambda: t(2, 3)[:, 3], IndexError, ["getitem", "(2, 3)"]),
    ("getitem-array-range", lambda: t(2, 3)[np.array([0, 2])], IndexError, ["getitem", "(2, 3)"]),
    ("getitem-too-many", lambda: t(2)[0, 0], IndexError, ["getitem", "(2,)"]),
    ("getitem-float", lambda: t(2)[0.5], IndexError, ["getitem", "0.5"]),
    ("getitem-mask-shape", lambda: t(2, 3)[np.ones(3, bool)], IndexError, ["getitem", "(2, 3)"]),
    ("clip-no-bounds", lambda: t(2).clip(), ValueError, ["clip", "at least one"]),
    ("clip-order", lambda: t(2).clip(2, 1), ValueError, ["clip", "min 2", "max 1"]),
    ("item-many", lambda: t(2).item(), ValueError, ["item", "(2,)"]),
    ("int-requires-grad", lambda: Tensor([1, 2], requires_grad=True), TypeError, ["floating-point", "int64"]),
    ("string-data", lambda: Tensor(["a"]), TypeError, ["Tensor", "dtype"]),
    ("ragged-data", lambda: Tensor([[1.0], [1.0, 2.0]]), ValueError, ["Tensor", "rectangular"]),
    ("zeros-negative", lambda: Tensor.zeros(2, -3), ValueError, ["zeros", "negative", "(2, -3)"]),
    ("backward-non-scalar", lambda: (t(2) * 2).backward(), RuntimeError, ["backward", "(2,)", "gradient="]),
    ("backward-no-grad", lambda: Tensor([1.0]).sum().backward(), RuntimeError, ["backward", "does not require grad"]),
    ("backward-bad-gradient", lambda: (t(2) * 2).backward(np.ones(3)), ValueError, ["backward", "(3,)", "(2,)"]),
]


@pytest.mark.parametrize("thunk, exc, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_a_clear_error(thunk, exc, fragments):
    with pytest.raises(exc) as info:
        thunk()
    message = str(info.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"message {message!r} lacks {missing}"


def test_errors_come_from_the_library_not_from_inside_numpy():
    """The raising frame is tinygrad_lite code: the traceback points at the mistake, not into numpy."""
    for _, thunk, _, _ in CASES:
        try:
            thunk()
        except Exception as e:  # noqa: BLE001 - every case raises; we inspect where
            tb = e.__traceback__
            while tb.tb_next is not None:
                tb = tb.tb_next
            assert "tinygrad_lite" in tb.tb_frame.f_code.co_filename, (e, tb.tb_frame.f_code.co_filename)
        else:
            pytest.fail(f"{thunk} did not raise")


def test_a_failed_op_records_nothing():
    x = t(2, 3)
    with pytest.raises(ValueError):
        x @ t(5, 6)
    assert x.grad is None
    (x * 2).sum().backward()
    assert x.grad.shape == (2, 3)
