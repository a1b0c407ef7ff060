"""Backward semantics: seeds, accumulation, diamonds, deep graphs, retain_graph/retain_grad, grad modes."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tinygrad_lite import Tensor, enable_grad, is_grad_enabled, no_grad
from tinygrad_lite.tensor import op_hook


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(values, requires_grad=True, dtype=dtype)


def test_scalar_backward_seeds_with_one():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0, 6.0])
    y = leaf(3.0)
    (y * y).backward()  # a 0-d output
    assert y.grad.item() == 6.0
    z = leaf([[2.0]])
    (z * 5).backward()  # a one-element, non-0-d output
    assert z.grad.item() == 5.0


def test_non_scalar_backward_needs_a_gradient():
    x = leaf([1.0, 2.0])
    y = x * 3
    with pytest.raises(RuntimeError, match=r"one-element tensor.*\(2,\).*gradient="):
        y.backward()
    y.backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad.data, [3.0, 30.0])
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\).*\(2,\)"):
        (x * 3).backward(np.ones(3))
    (x * 2).backward(Tensor([1.0, 1.0]))  # a Tensor gradient works too
    np.testing.assert_array_equal(x.grad.data, [5.0, 32.0])


def test_backward_from_a_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor([1.0, 2.0]) * 2).sum().backward()
    x = leaf([1.0])
    with no_grad():
        y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward()


def test_gradients_accumulate_across_backward_calls_until_zeroed():
    x = leaf([1.0, -2.0])
    (x * 3).sum().backward()
    first = x.grad
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3 + 2, 3 - 4])
    assert first is x.grad  # accumulated into the same Tensor, as in PyTorch
    x.zero_grad()
    assert x.grad is None


def test_diamond_and_reuse_accumulate():
    x = leaf(2.0)
    a = x * 3
    b = x.exp()
    y = a * b + a + b * b  # x reaches y along four paths
    y.backward()
    e = np.exp(2.0)
    assert x.grad.item() == pytest.approx(3 * e + 6 * e + 3 + 2 * e * e)
    w = leaf([1.0, 2.0])
    h = w * 1.0
    (h * h * h + h).sum().backward()  # h used four times
    np.testing.assert_allclose(w.grad.data, 3 * w.data ** 2 + 1)


def test_a_0d_node_used_three_times():
    """Regression: 0-d intermediate gradients were numpy scalars, and `+=` on them did not accumulate."""
    a = leaf(2.0, dtype=np.float32)
    b = a * 1.0
    (b * b * b).backward()
    assert a.grad.item() == 12.0
    assert isinstance(a.grad.data, np.ndarray)
    (a * a).backward()
    assert a.grad.item() == 16.0 and isinstance(a.grad.data, np.ndarray)


def test_a_gradient_passed_through_is_not_aliased():
    """add passes its gradient to both inputs; accumulating into one must not change the other."""
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    s = x + y
    (s * 2 + x * 5).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [7.0, 7.0])
    np.testing.assert_array_equal(y.grad.data, [2.0, 2.0])
    seed = np.array([1.0, 1.0])
    z = leaf([0.0, 0.0])
    (z + z).backward(seed)
    np.testing.assert_array_equal(seed, [1.0, 1.0])  # the caller's gradient array is untouched


def test_a_chain_of_100000_ops_backpropagates_without_recursion_error():
    x = leaf(1.0, dtype=np.float32)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y.backward()
    assert x.grad.item() == 1.0
    del y  # freeing the deep graph must not overflow the C stack either


def test_second_backward_raises_unless_retain_graph():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * (np.exp(x.data) * (1 + x.data)))
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_graph_structure_stays_after_backward_for_drawing():
    x = leaf([1.0])
    y = (x * 2).sum()
    y.backward()
    assert y.grad_fn.parents[0].grad_fn.name == "mul"
    assert y.grad_fn.name == "sum(axis=(0,))"


def test_retain_grad_keeps_non_leaf_gradients():
    x = leaf([1.0, 2.0])
    h = (x * 3).retain_grad()
    other = x * 4
    (h * h + other).sum().backward()
    np.testing.assert_array_equal(h.grad.data, 2 * h.data)
    assert other.grad is None  # not retained


def test_only_inputs_that_require_grad_get_gradients():
    x, c = leaf([1.0, 2.0]), Tensor([3.0, 4.0], dtype=np.float64)
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(x.grad.data, c.data)


def test_no_grad_context_manager_and_decorator_record_nothing():
    x = leaf([1.0, 2.0])
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 2).exp().sum()
        with enable_grad():
            z = x * 2
    assert is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad

    @no_grad()
    def predict(t):
        return t @ t

    out = predict(x)
    assert not out.requires_grad and out.grad_fn is None and is_grad_enabled()


def test_no_grad_decorator_survives_recursion_and_exceptions():
    @no_grad()
    def depth(n):
        if n == 0:
            raise KeyError("bottom")
        return depth(n - 1)

    with pytest.raises(KeyError):
        depth(3)
    assert is_grad_enabled()


def test_grad_mode_is_per_thread():
    """A thread inside no_grad must not switch off recording in another thread."""
    inside = threading.Event()
    checked = threading.Event()
    seen = {}

    def worker_without_grad():
        with no_grad():
            inside.set()
            checked.wait(5)
            seen["worker"] = (leaf([1.0]) * 2).requires_grad

    def main_records():
        inside.wait(5)
        seen["enabled"] = is_grad_enabled()
        seen["main"] = (leaf([1.0]) * 2).requires_grad
        checked.set()

    threads = [threading.Thread(target=worker_without_grad), threading.Thread(target=main_records)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"worker": False, "enabled": True, "main": True}

    # and a fresh thread starts with recording on even while this one is in no_grad
    with no_grad():
        result = {}
        t = threading.Thread(target=lambda: result.update(on=is_grad_enabled()))
        t.start()
        t.join(5)
    assert result == {"on": True}


def test_op_hook_sees_every_op_and_costs_nothing_after():
    seen = []
    x = leaf([1.0, 2.0])
    with op_hook(lambda fn, out: seen.append((fn.name, out.shape))):
        (x * 2).sum()
    assert seen == [("mul", (2,)), ("sum(axis=(0,))", ())]
    x * 2
    assert len(seen) == 2


def test_saved_arrays_are_freed_after_backward():
    x = leaf(np.ones(3))
    y = x.exp()
    y.sum().backward()
    assert getattr(y.grad_fn, "released", False)
    assert not hasattr(y.grad_fn, "out")


def test_broadcast_gradients_reduce_to_the_operand_shape():
    a, b = leaf(np.ones((3, 1))), leaf(np.ones(4))
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_array_equal(a.grad.data, np.full((3, 1), 4.0))
    np.testing.assert_array_equal(b.grad.data, np.full(4, 3.0))


def test_stored_gradients_never_share_memory():
    """Gradients are handed over without copies where safe; no two .grad arrays (nor the caller's seed) may alias."""
    x, y, z = leaf(np.ones((2, 3))), leaf(np.ones((2, 3))), leaf(np.ones(6))
    h = (x + y).retain_grad()  # add passes one array to both inputs
    s = (h + z.reshape(2, 3)).retain_grad()  # and reshape hands on a view of it
    joined = Tensor.cat([s, x], axis=0)  # cat's backward gives views of one array
    seed = np.arange(12.0).reshape(4, 3)
    joined.backward(seed)
    grads = [t.grad.data for t in (x, y, z, h, s)]
    for i, a in enumerate(grads):
        assert not np.shares_memory(a, seed)
        for b in grads[i + 1:]:
            assert not np.shares_memory(a, b)
    x.grad.data *= 0  # an in-place change (as an optimizer may make) touches only x's gradient
    np.testing.assert_array_equal(y.grad.data, seed[:2])
    np.testing.assert_array_equal(z.grad.data, seed[:2].reshape(6))
