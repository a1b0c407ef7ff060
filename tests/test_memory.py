"""Memory: graphs die with their output, backward frees what it saved, no_grad records nothing, training stays flat."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

from models.gpt import GPT, GPTConfig
from models.mlp import MLP
from tinygrad_lite import Tensor, no_grad
from tinygrad_lite.nn import functional as F
from tinygrad_lite.tensor import op_hook


@pytest.fixture
def refcounting_only():
    """Run with the cycle collector off: whatever is freed is freed by reference counting, at once."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def mnist_like_batch(seed: int = 0) -> tuple[Tensor, Tensor]:
    rng = np.random.default_rng(seed)
    return Tensor(rng.standard_normal((8, 12)).astype(np.float32)), Tensor(rng.integers(0, 3, 8))


def recorded_ops(fn) -> list[tuple[weakref.ref, weakref.ref]]:
    """Run fn() and keep weak references to every op and every output it created."""
    seen = []
    with op_hook(lambda f, out: seen.append((weakref.ref(f), weakref.ref(out)))):
        result = fn()
    return result, seen


def test_the_graph_is_released_when_its_output_is_no_longer_referenced(refcounting_only):
    model = MLP([12, 16, 3], seed=0)
    x, y = mnist_like_batch()
    loss, seen = recorded_ops(lambda: F.cross_entropy(model(x), y))
    assert len(seen) >= 4 and all(f() is not None for f, _ in seen)  # alive while `loss` is
    del loss
    assert [f() for f, _ in seen] == [None] * len(seen)  # every Function and every intermediate tensor is gone
    assert [t() for _, t in seen] == [None] * len(seen)


def test_the_graph_is_released_after_backward_too(refcounting_only):
    model = MLP([12, 16, 3], seed=0)
    loss, seen = recorded_ops(lambda: F.cross_entropy(model(mnist_like_batch()[0]), mnist_like_batch()[1]))
    loss.backward()
    del loss
    assert all(f() is None for f, _ in seen)
    assert all(p.grad is not None and p.grad.grad_fn is None for p in model.parameters())  # grads hold no graph


def test_backward_frees_saved_arrays_unless_retain_graph():
    model = MLP([12, 16, 3], seed=0)
    x, y = mnist_like_batch()
    loss, seen = recorded_ops(lambda: F.cross_entropy(model(x), y))
    functions = [f() for f, _ in seen]
    assert sum(len(vars(f)) for f in functions) > 0  # forward saved context (inputs, masks, probabilities)

    loss.backward(retain_graph=True)
    assert not any(getattr(f, "released", False) for f in functions)
    first = {id(p): p.grad.data.copy() for p in model.parameters()}
    loss.backward()  # allowed: the graph was retained; gradients accumulate
    for p in model.parameters():
        np.testing.assert_allclose(p.grad.data, 2 * first[id(p)], rtol=1e-6)

    assert all(f.released and vars(f) == {} for f in functions)  # the last backward freed every saved array
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        loss.backward()
    # what stays: the structure for drawing, and the parameters' .grad; no non-leaf keeps a gradient
    assert all(t().grad is None for _, t in seen if t() is not None)


def test_evaluation_under_no_grad_records_no_graph():
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16), seed=0).eval()
    idx = Tensor(np.random.default_rng(0).integers(0, 11, (2, 8)))
    outputs = []
    with no_grad(), op_hook(lambda f, out: outputs.append((f, out))):
        logits, loss = model(idx, idx)
    assert len(outputs) > 10
    assert all(out._ctx is None and not out.requires_grad for _, out in outputs)
    assert not any(hasattr(f, "parents") for f, _ in outputs)  # no op holds its inputs
    assert logits.grad_fn is None and loss.grad_fn is None


def test_training_a_small_gpt_for_300_steps_keeps_memory_flat():
    """Live Python-heap memory (tracemalloc, after a full collection) at step 50 and step 300 of AdamW training."""
    config = GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.1)
    model = GPT(config, seed=0)
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3)
    rng = np.random.default_rng(0)

    def train_step() -> None:
        x = Tensor(rng.integers(0, config.vocab_size, (2, config.block_size)))
        _, loss = model(x[:, :-1], x[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(49):  # warm-up: optimizer state, scratch buffers, caches
        train_step()
    tracemalloc.start()
    try:
        train_step()  # step 50, traced, so that the live .grad buffers count in every figure
        gc.collect()  # a full collection also empties CPython's free lists, which otherwise fill slowly
        at_50 = tracemalloc.get_traced_memory()[0]
        for step in range(51, 301):
            train_step()
            if step == 100:
                gc.collect()
                at_100 = tracemalloc.get_traced_memory()[0]
        gc.collect()
        at_300, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    growth = at_300 - at_50
    print(f"\nGPT training memory: {at_50} B at step 50, {at_100} B at step 100, {at_300} B at step 300 "
          f"(growth {growth} B, peak within a step {peak} B)")
    assert growth < 64 * 1024, f"memory grew by {growth} bytes between step 50 and step 300"
