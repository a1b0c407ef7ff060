"""The GPT: shapes, initialisation, learning, gradients, causality, generation, checkpoints and resuming."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from conftest import load_example
from hypothesis import given, settings
from hypothesis import strategies as st

from models.bpe import BPETokenizer
from models.char_data import CharTokenizer, decode_stream
from models.gpt import GPT, GPTConfig, KVCache, sample, sinusoidal_encoding
from tinygrad_lite import Tensor, gradcheck, is_grad_enabled, nn, no_grad
from tinygrad_lite.io import load, save

train_gpt = load_example("train_gpt")


def tiny(**overrides) -> GPTConfig:
    return GPTConfig(**{**dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16), **overrides})


def random_ids(rng: np.random.Generator, vocab: int, *shape: int) -> Tensor:
    return Tensor(rng.integers(0, vocab, shape))


@pytest.mark.parametrize("bad, match", [
    (dict(n_embd=10, n_head=3), r"n_embd \(10\) must be divisible by n_head \(3\)"),
    (dict(positional="rotary"), "positional must be 'learned' or 'sinusoidal'"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\)"),
    (dict(vocab_size=0), "vocab_size must be a positive integer"),
    (dict(block_size=2.5), "block_size must be a positive integer"),
])
def test_config_rejects_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        tiny(**bad)


def test_shapes_initial_loss_and_errors():
    config = tiny()
    model = GPT(config, seed=0)
    rng = np.random.default_rng(0)
    x, y = random_ids(rng, 11, 3, 8), random_ids(rng, 11, 3, 8)
    logits, loss = model(x, y)
    assert logits.shape == (3, 8, 11) and logits.dtype == np.float32
    assert abs(loss.item() - math.log(11)) < 0.1  # small init: nearly uniform predictions
    logits, loss = model(x[:, :5])
    assert logits.shape == (3, 5, 11) and loss is None
    with pytest.raises(ValueError, match="length 9, longer than block_size 8"):
        model(random_ids(rng, 11, 1, 9))
    with pytest.raises(ValueError, match="integer tensor"):
        model(Tensor(np.zeros((1, 4))))


def test_gpt2_initialisation_and_weight_tying():
    config = GPTConfig(vocab_size=50, block_size=32, n_layer=4, n_head=4, n_embd=64)
    model = GPT(config, seed=0)
    params = dict(model.named_parameters())
    assert model.lm_head.weight is model.wte.weight and "lm_head.weight" not in params
    assert abs(params["wte.weight"].data.std() - 0.02) < 0.002
    assert abs(params["h.0.mlp.c_fc.weight"].data.std() - 0.02) < 0.002
    assert abs(params["h.0.mlp.c_proj.weight"].data.std() - 0.02 / math.sqrt(8)) < 0.001
    assert np.all(params["h.0.attn.c_attn.bias"].data == 0) and np.all(params["h.1.ln_1.weight"].data == 1)


def test_configure_optimizers_decays_only_2d_weights():
    model = GPT(tiny(), seed=0)
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.95))
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(model.parameters())
    assert any(p is model.wte.weight for p in decay["params"])


@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
def test_overfits_one_batch(positional):
    model = GPT(tiny(positional=positional), seed=0)
    rng = np.random.default_rng(0)
    x, y = random_ids(rng, 11, 4, 8), random_ids(rng, 11, 4, 8)
    optimizer = model.configure_optimizers(weight_decay=0.0, learning_rate=1e-2, betas=(0.9, 0.99))
    for _ in range(150):
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


@pytest.mark.parametrize("positional, bias", [("learned", True), ("sinusoidal", False)])
def test_fast_gradcheck_of_a_tiny_gpt_in_float64(positional, bias):
    model = GPT(tiny(n_layer=1, n_embd=8, block_size=5, positional=positional, bias=bias), seed=1)
    for p in model.parameters():
        p.data = p.data.astype(np.float64) * 10  # larger weights than the init, so every path carries signal
    rng = np.random.default_rng(1)
    x, y = random_ids(rng, 11, 2, 5), random_ids(rng, 11, 2, 5)
    assert gradcheck(lambda *params: model(x, y)[1], *model.parameters(), fast=True)


configs = st.fixed_dictionaries({
    "vocab_size": st.integers(2, 12), "block_size": st.integers(2, 8), "n_layer": st.integers(1, 2),
    "n_head": st.integers(1, 3), "head_size": st.integers(4, 6), "bias": st.booleans(),
    "positional": st.sampled_from(["learned", "sinusoidal"]),
})


@settings(max_examples=30)
@given(configs, st.integers(1, 2), st.data())
def test_causality_later_tokens_never_change_earlier_logits(cfg, batch, data):
    head_size = cfg.pop("head_size")
    config = GPTConfig(n_embd=cfg["n_head"] * head_size, **cfg)
    model = GPT(config, seed=data.draw(st.integers(0, 1000)))
    for p in model.parameters():
        p.data = p.data * 25  # weights of order 0.5, not 0.02: every position's logits clearly differ
    T = data.draw(st.integers(2, config.block_size))
    t = data.draw(st.integers(0, T - 2))  # keep positions 0..t, change t+1..T-1
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    idx = rng.integers(0, config.vocab_size, (batch, T))
    changed = idx.copy()
    changed[:, t + 1:] = (idx[:, t + 1:] + rng.integers(1, config.vocab_size, (batch, T - t - 1))) % config.vocab_size
    with no_grad():
        before, _ = model(Tensor(idx))
        after, _ = model(Tensor(changed))
    np.testing.assert_allclose(after.data[:, :t + 1], before.data[:, :t + 1], rtol=1e-6, atol=1e-6)
    assert np.abs(after.data[:, t + 1] - before.data[:, t + 1]).max() > 1e-3  # the change does reach position t+1


def test_generation_is_reproducible_and_crops_to_block_size():
    model = GPT(tiny(), seed=0).eval()
    prompt = Tensor(np.array([[1, 2, 3], [4, 5, 6]]))
    a = model.generate(prompt, 12, temperature=0.9, top_k=5, seed=42)
    b = model.generate(prompt, 12, temperature=0.9, top_k=5, seed=42)
    c = model.generate(prompt, 12, temperature=0.9, top_k=5, seed=43)
    assert a.shape == (2, 15) and a.dtype == np.int64  # 15 > block_size 8: the context was cropped
    assert np.array_equal(a.data, b.data) and not np.array_equal(a.data, c.data)
    assert np.array_equal(a.data[:, :3], prompt.data) and a.data.min() >= 0 and a.data.max() < 11


def test_top_k_1_is_greedy():
    model = GPT(tiny(), seed=0).eval()
    out = model.generate(Tensor(np.array([[3]])), 5, top_k=1, seed=0).data
    for i in range(1, out.shape[1]):
        logits, _ = model(Tensor(out[:, :i]))
        assert out[0, i] == logits.data[0, -1].argmax()
    with pytest.raises(ValueError, match="temperature must be positive"):
        model.generate(Tensor(np.array([[3]])), 1, temperature=0.0)


def test_sinusoidal_encoding_equals_the_formula():
    for n, d in ((7, 6), (5, 9)):
        pe = sinusoidal_encoding(n, d)
        assert pe.shape == (n, d) and pe.dtype == np.float32
        for pos in range(n):
            for j in range(d):
                i = j // 2
                angle = pos / 10000 ** (2 * i / d)
                expected = math.sin(angle) if j % 2 == 0 else math.cos(angle)
                assert pe[pos, j] == pytest.approx(expected, abs=1e-6)
    model = GPT(tiny(positional="sinusoidal"), seed=0)
    assert not any("wpe" in name for name, _ in model.named_parameters())  # fixed, not trained


def test_checkpoint_round_trip(tmp_path):
    config = tiny(positional="sinusoidal", bias=False)
    model = GPT(config, seed=0)
    tok = CharTokenizer.from_text("abcdefghijk")
    save({"model": model.state_dict(), "config": config.to_dict(), "tokenizer": tok.to_dict()}, tmp_path / "c.npz")
    ckpt = load(tmp_path / "c.npz")
    again = GPT(GPTConfig.from_dict(ckpt["config"]), seed=123)
    again.load_state_dict(ckpt["model"])
    assert GPTConfig.from_dict(ckpt["config"]) == config
    assert CharTokenizer.from_dict(ckpt["tokenizer"]).chars == tok.chars
    idx = Tensor(np.array([[1, 2, 3, 4]]))
    assert np.array_equal(model(idx)[0].data, again(idx)[0].data)


def _train(tmp_path, name: str, max_iters: int, resume: bool = False, extra: list[str] = ()) -> dict:
    text_file = tmp_path / "text.txt"
    if not text_file.exists():
        rng = np.random.default_rng(0)
        text_file.write_text("".join(rng.choice(list("abcde \n"), 3000)), encoding="utf-8")
    argv = ["--text", str(text_file), "--checkpoint", str(tmp_path / f"{name}.npz"), "--max-iters", str(max_iters),
            "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
            "--dropout", "0.1", "--eval-interval", "3", "--eval-iters", "2", "--warmup-iters", "2",
            "--max-minutes", "0", "--sample-tokens", "10", "--no-progress", "--lr", "3e-3"]
    train_gpt.main(argv + (["--resume"] if resume else []) + list(extra))
    return load(tmp_path / f"{name}.npz")


def test_training_script_resume_follows_the_uninterrupted_run(tmp_path, capsys):
    straight = _train(tmp_path, "straight", 6)
    assert re.fullmatch(r"val loss: \d+\.\d{4}", capsys.readouterr().out.strip().splitlines()[-1])
    first = _train(tmp_path, "resumed", 3)
    assert first["step"] == 3
    resumed = _train(tmp_path, "resumed", 6, resume=True)
    assert resumed["step"] == straight["step"] and resumed["best_val"] == straight["best_val"]
    for name, value in straight["model"].items():
        np.testing.assert_array_equal(resumed["model"][name], value, err_msg=name)


# ---- initialisation by module type, one feed-forward class ------------------------------------------------------

def test_initialisation_is_by_module_type():
    """GPT._init_weights runs through Module.apply: every Linear and Embedding drawn, residual projections
    (marked where they are built) scaled down, the head left as wte's table, LayerNorms 1 and 0."""
    model = GPT(tiny(n_layer=3), seed=0)
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "GPT" and seen.count("FeedForward") == 3 and "MLP" not in seen
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module is not model.lm_head:
            expected = 0.02 / math.sqrt(6) if name.endswith("c_proj") else 0.02
            assert getattr(module, "residual_projection", False) == name.endswith("c_proj")
            assert abs(module.weight.data.std() - expected) < 0.35 * expected, name
            assert np.all(module.bias.data == 0), name
        if isinstance(module, nn.LayerNorm):
            assert np.all(module.weight.data == 1) and np.all(module.bias.data == 0), name
    assert np.array_equal(GPT(tiny(n_layer=3), seed=0).wte.weight.data, model.wte.weight.data)  # seeded


# ---- the KV cache -------------------------------------------------------------------------------------------------

def scaled(model: GPT, factor: float = 10.0) -> GPT:
    for p in model.parameters():
        p.data = p.data * factor  # weights of order 0.2: every position's logits clearly differ
    return model.eval()


@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
@pytest.mark.parametrize("chunk", [1, 3])
def test_cached_forward_gives_the_full_forward_logits(positional, chunk):
    """Feeding the tokens `chunk` at a time with a KVCache gives every position the logits of one full forward."""
    model = scaled(GPT(tiny(positional=positional, block_size=10), seed=1))
    idx = np.random.default_rng(2).integers(0, 11, (2, 10))
    with no_grad():
        full = model(Tensor(idx))[0].data
        cache = KVCache(model.config, batch_size=2)
        steps = [model(Tensor(idx[:, i:i + chunk]), kv_cache=cache)[0].data for i in range(0, 10, chunk)]
    assert cache.length == 10 and cache.lengths == [10, 10]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-5, atol=1e-5 * np.abs(full).max())


@pytest.mark.parametrize("prompt_len, new", [(3, 4), (3, 12), (8, 5), (10, 3)])
@pytest.mark.parametrize("options", [dict(top_k=1), dict(temperature=0.9, top_k=5, seed=7),
                                     dict(temperature=1.3, top_p=0.8, seed=8)])
def test_kv_cache_generates_the_same_tokens(prompt_len, new, options):
    """Within block_size 8, across it (the window slides), and from a prompt longer than the block."""
    model = scaled(GPT(tiny(), seed=3))
    prompt = Tensor(np.random.default_rng(4).integers(0, 11, (2, prompt_len)))
    cached = model.generate(prompt, new, **options)
    recomputed = model.generate(prompt, new, use_cache=False, **options)
    np.testing.assert_array_equal(cached.data, recomputed.data)
    assert cached.shape == (2, prompt_len + new)


def test_stream_yields_each_step_and_leaves_grad_mode_alone():
    model = GPT(tiny(), seed=0).eval()
    prompt = Tensor(np.array([[1, 2, 3]]))
    steps = model.stream(prompt, 5, top_k=3, seed=1)
    first = next(steps)
    assert first.shape == (1,) and first.dtype == np.int64
    assert is_grad_enabled()  # the generator pauses outside no_grad
    rest = list(steps)
    assert np.array_equal(np.concatenate([prompt.data[0], first, *rest]), model.generate(prompt, 5, top_k=3,
                                                                                        seed=1).data[0])


def test_only_the_last_logits_and_cache_errors():
    model = GPT(tiny(), seed=0).eval()
    idx = Tensor(np.random.default_rng(5).integers(0, 11, (2, 6)))
    full = model(idx)[0].data
    np.testing.assert_allclose(model(idx, logits_to_keep=2)[0].data, full[:, -2:], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="targets need the logits of every position, not of the last 2"):
        model(idx, idx, logits_to_keep=2)
    cache = KVCache(model.config, batch_size=2, max_len=6)
    with pytest.raises(RuntimeError, match="a kv_cache is for generation, where nothing is trained: call under "
                                           "no_grad"):
        model(idx, kv_cache=cache)
    with no_grad():
        model(idx, kv_cache=cache)
        with pytest.raises(ValueError, match="cannot forward a sequence of length 9, longer than block_size 8"):
            model(idx[:, :3], kv_cache=cache)
    k = Tensor(np.zeros((2, 2, 1, 8), dtype=np.float32))
    with pytest.raises(ValueError, match=r"KVCache.update: 6 cached positions \+ 1 new ones exceed its max_len 6"):
        cache.update(k, k, 0)
    with pytest.raises(ValueError, match=r"k and v must be \(B, nh, T, hs\) with \(B, nh, hs\) = \(2, 2, 8\), got k "
                                         r"\(1, 2, 1, 8\)"):
        cache.update(k[:1], k[:1], 1)
    with pytest.raises(ValueError, match=r"KVCache: max_len must be in \[1, block_size 8\], got 9"):
        KVCache(model.config, 1, max_len=9)


# ---- sampling ---------------------------------------------------------------------------------------------------

def test_top_p_keeps_the_fewest_likeliest_tokens_that_reach_p():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]]))
    rng = np.random.default_rng(0)
    for top_p, kept in ((0.4, {0}), (0.75, {0, 1}), (0.9, {0, 1, 2}), (1.0, {0, 1, 2, 3})):
        draws = np.stack([sample(logits, 1.0, None, top_p, rng) for _ in range(2000)])  # (2000, 2)
        assert set(draws[:, 0].tolist()) == kept and set((3 - draws[:, 1]).tolist()) == kept
        if kept == {0, 1}:  # renormalised within the nucleus: 0.5 / 0.8
            assert abs((draws[:, 0] == 0).mean() - 0.625) < 0.04
    assert sample(logits, 1.0, 1, None, rng).tolist() == [0, 3]  # top_k=1: the argmax
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\] or None, got 1.5"):
        GPT(tiny(), seed=0).generate(Tensor(np.array([[1]])), 1, top_p=1.5)


# ---- the scripts with a BPE tokenizer, and streaming ---------------------------------------------------------------

def test_training_on_bpe_tokens_and_sampling_them(tmp_path, capsys):
    ckpt = _train(tmp_path, "bpe", 3, extra=["--tokenizer", "bpe", "--vocab-size", "270"])
    assert "merges" in ckpt["tokenizer"] and ckpt["config"]["vocab_size"] == 270
    capsys.readouterr()
    sample_gpt = load_example("sample_gpt")
    text = sample_gpt.main(["--checkpoint", str(tmp_path / "bpe.npz"), "--prompt", "abc", "--tokens", "12"])
    assert capsys.readouterr().out == text + "\n" and text.startswith("abc") and len(text) > 3
    model, tokenizer = sample_gpt.load_model(tmp_path / "bpe.npz")
    ids = model.generate(Tensor(tokenizer.encode("abc")[None, :]), 12, temperature=0.8, top_k=40, seed=1)
    assert text == tokenizer.decode(ids.data[0])  # what streamed is what generate makes


def test_decode_stream_waits_for_a_whole_character():
    tokenizer = BPETokenizer.train("héllo wörld 😀 " * 3, 256)  # bytes only: é and 😀 span several tokens
    prompt = tokenizer.encode("a")
    steps = [np.array([i]) for i in tokenizer.encode("é😀b")]
    pieces = list(decode_stream(tokenizer, prompt, steps))
    assert pieces == ["a", "é", "😀", "b"] and "\ufffd" not in "".join(pieces)
