"""GPT-2 from Hugging Face files: loading, greedy generation and export, checked against transformers itself.

The GPT-2 here is a small GPT2LMHeadModel with random weights that transformers builds in the test (no
download); the name path (a model name fetched with huggingface_hub) runs against a stand-in for the hub.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import load_example

from models.gpt import GPT, GPTConfig, sample
from tinygrad_lite import Tensor

torch = pytest.importorskip("torch", reason="the cross-checks run transformers on PyTorch (the torch extra)")
transformers = pytest.importorskip("transformers", reason="transformers is in the dev extra: pip install '.[dev]'")
safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="safetensors is in the dev and hf extras")
transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402 (after the skips)
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

VOCAB, POSITIONS = 300, 24


def hf_logits(model: GPT2LMHeadModel, ids: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(ids)).logits.numpy()


@pytest.fixture(scope="module")
def hf_gpt2(tmp_path_factory) -> tuple[GPT2LMHeadModel, Path]:
    """A random small GPT-2 written by transformers (config.json + model.safetensors), with a byte-level BPE
    tokenizer of the same vocabulary trained by `tokenizers` beside it (vocab.json, merges.txt)."""
    folder = tmp_path_factory.mktemp("gpt2")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=VOCAB, n_positions=POSITIONS, n_embd=32, n_layer=2, n_head=4,
                        initializer_range=0.1, bos_token_id=None, eos_token_id=None)
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    text = "Hello, I'm a language model, and I generate text. " + " ".join(f"w{i} t{i * 7}" for i in range(500))
    tokenizer.train_from_iterator([text], trainer)
    assert tokenizer.get_vocab_size() == VOCAB
    tokenizer.model.save(str(folder))
    return model, folder


def random_ids(T: int, B: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, (B, T))


# ---- loading ----------------------------------------------------------------------------------------------------

def test_loaded_gpt2_gives_transformers_logits(hf_gpt2):
    hf, folder = hf_gpt2
    model = GPT.from_pretrained(folder)
    assert not model.training and model.config == GPTConfig(vocab_size=VOCAB, block_size=POSITIONS, n_layer=2,
                                                            n_head=4, n_embd=32, dropout=0.1)
    ids = random_ids(POSITIONS)
    ours, theirs = model(Tensor(ids))[0].data, hf_logits(hf, ids)
    assert np.abs(theirs).max() > 1.0  # large enough weights that a wrong layout would show
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_generation_is_transformers_generate(hf_gpt2, use_cache):
    hf, folder = hf_gpt2
    model = GPT.from_pretrained(folder)
    prompt = random_ids(5, seed=1)
    ours = model.generate(Tensor(prompt), POSITIONS - 5, top_k=1, use_cache=use_cache).data
    with torch.no_grad():
        theirs = hf.generate(torch.from_numpy(prompt), attention_mask=torch.ones(prompt.shape, dtype=torch.long),
                             max_new_tokens=POSITIONS - 5, do_sample=False, pad_token_id=0).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_top_k_and_top_p_keep_the_tokens_transformers_keeps():
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

    rng = np.random.default_rng(2)
    complete = 0
    for _ in range(20):
        logits = rng.standard_normal((3, 50)) * 3
        top_k, top_p = int(rng.integers(2, 50)), float(rng.uniform(0.05, 0.99))
        kept = TopPLogitsWarper(top_p)(None, TopKLogitsWarper(top_k)(None, torch.from_numpy(logits)))
        allowed = np.isfinite(kept.numpy())
        draws = np.stack([sample(logits, 1.0, top_k, top_p, rng) for _ in range(300)], axis=1)  # (3, 300)
        for row in range(3):
            drawn, kept_ids = set(draws[row].tolist()), set(np.flatnonzero(allowed[row]).tolist())
            assert drawn <= kept_ids
            probs = np.exp(logits[row][allowed[row]] - logits[row].max())
            if probs.min() / probs.sum() > 0.03:  # likely enough to be drawn in 300 tries (all but surely)
                assert drawn == kept_ids
                complete += 1
    assert complete >= 10  # most rows had every kept token drawn


# ---- exporting ----------------------------------------------------------------------------------------------------

def test_round_trip_transformers_ours_transformers(hf_gpt2, tmp_path):
    hf, folder = hf_gpt2
    GPT.from_pretrained(folder).save_pretrained(tmp_path)
    again = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids = random_ids(POSITIONS, seed=3)
    np.testing.assert_array_equal(hf_logits(again, ids), hf_logits(hf, ids))
    for name, tensor in hf.state_dict().items():
        if not name.endswith(".attn.bias"):
            np.testing.assert_array_equal(again.state_dict()[name].numpy(), tensor.numpy(), err_msg=name)


@pytest.mark.parametrize("positional, bias, dropout", [("learned", True, 0.0), ("sinusoidal", False, 0.1)])
def test_char_gpt_exports_to_transformers(tmp_path, positional, bias, dropout):
    config = GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=16, positional=positional,
                       bias=bias, dropout=dropout)
    model = GPT(config, seed=0).eval()
    for p in model.parameters():
        p.data = p.data * 10  # weights of order 0.2, not 0.02: every layer matters to the logits
    model.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["activation_function"] == "gelu_new"  # GPT-2's tanh GELU, the one our GPT uses
    assert (written["n_positions"], written["resid_pdrop"], written["model_type"]) == (16, dropout, "gpt2")
    hf = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    assert hf.config.activation_function == "gelu_new"
    ids = np.random.default_rng(4).integers(0, 11, (3, 16))
    theirs, ours = hf_logits(hf, ids), model(Tensor(ids))[0].data
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-4 * np.abs(ours).max())
    back = GPT.from_pretrained(tmp_path)  # learned positions and biases now, with the same values
    np.testing.assert_allclose(back(Tensor(ids))[0].data, ours, rtol=1e-5, atol=1e-5 * np.abs(ours).max())


def test_an_injected_attention_does_not_export(tmp_path):
    from models.attention_variants import variant

    config = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    model = GPT(config, attention=variant("l2", "causal"))
    with pytest.raises(ValueError, match=r"save_pretrained: GPT-2 has no equivalent of this model's attention "
                                         r"\(VariantAttention\)"):
        model.save_pretrained(tmp_path)


# ---- errors -----------------------------------------------------------------------------------------------------

def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def edit_config(folder: Path, **changes) -> None:
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_missing_folder_and_files(hf_gpt2, tmp_path):
    _, folder = hf_gpt2
    with pytest.raises(FileNotFoundError, match=r"GPT.from_pretrained: no such folder: \./nowhere"):
        GPT.from_pretrained("./nowhere")
    with pytest.raises(NotADirectoryError, match="is a file; give the folder that holds config.json"):
        GPT.from_pretrained(folder / "config.json")
    broken = copy_of(folder, tmp_path)
    (broken / "model.safetensors").rename(broken / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match=r"has no model.safetensors \(only .safetensors weights are read"):
        GPT.from_pretrained(broken)
    (broken / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"has no config.json; it holds \['generation_config.json', "
                                                r"'merges.txt', 'pytorch_model.bin'"):
        GPT.from_pretrained(broken)


@pytest.mark.parametrize("changes, message", [
    ({"model_type": "llama", "architectures": ["LlamaForCausalLM"]},
     r"describes a 'llama' model \(architectures \['LlamaForCausalLM'\]\); only GPT-2 files"),
    ({"activation_function": "relu"}, r"has activation_function = 'relu', which this GPT does not support"),
    ({"n_inner": 100}, r"has n_inner = 100, which this GPT does not support"),
    ({"tie_word_embeddings": False}, r"has tie_word_embeddings = False"),
    ({"n_positions": 30}, r"transformer.wpe.weight in .* has shape \(24, 32\), but the config needs \(30, 32\)"),
    ({"n_embd": 16, "n_head": 2}, r"transformer.wte.weight in .* has shape \(300, 32\), but the config needs "
                                  r"\(300, 16\)"),
])
def test_files_this_gpt_cannot_load_are_clear_errors(hf_gpt2, tmp_path, changes, message):
    _, folder = hf_gpt2
    broken = copy_of(folder, tmp_path)
    edit_config(broken, **changes)
    with pytest.raises(ValueError, match=message):
        GPT.from_pretrained(broken)


def test_missing_and_unexpected_weights_are_named(hf_gpt2, tmp_path):
    _, folder = hf_gpt2
    broken = copy_of(folder, tmp_path)
    weights = safetensors_numpy.load_file(broken / "model.safetensors")
    del weights["transformer.h.1.ln_2.bias"]
    weights["transformer.h.0.attn.rotary.weight"] = np.zeros(3, np.float32)
    safetensors_numpy.save_file(weights, broken / "model.safetensors")
    with pytest.raises(ValueError, match=re.escape("missing ['h.1.ln_2.bias'], unexpected "
                                                   "['transformer.h.0.attn.rotary.weight']")):
        GPT.from_pretrained(broken)
    weights = safetensors_numpy.load_file(folder / "model.safetensors")
    weights["transformer.h.1.mlp.c_fc.weight"] = np.zeros((32, 100), np.float32)  # Conv1D: (in, out)
    safetensors_numpy.save_file(weights, broken / "model.safetensors")
    with pytest.raises(ValueError, match=r"transformer.h.1.mlp.c_fc.weight in .* has shape \(32, 100\), but the "
                                         r"config needs \(32, 128\)"):
        GPT.from_pretrained(broken)


# ---- a model name, through huggingface_hub ------------------------------------------------------------------------

def test_a_model_name_downloads_once_into_the_data_cache(hf_gpt2, tmp_path, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub", reason="huggingface_hub is in the hf extra")
    _, folder = hf_gpt2
    calls = []

    def fake_snapshot_download(repo_id, allow_patterns, local_dir):  # the hub, without the network
        calls.append((repo_id, sorted(allow_patterns)))
        shutil.copytree(folder, local_dir, dirs_exist_ok=True)
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model = GPT.from_pretrained("someone/tiny-gpt2")
    assert calls == [("someone/tiny-gpt2", ["config.json", "merges.txt", "model.safetensors", "tokenizer.json",
                                            "vocab.json"])]
    assert (tmp_path / "tinygrad_lite" / "huggingface" / "someone" / "tiny-gpt2" / "model.safetensors").is_file()
    assert model.config.vocab_size == VOCAB

    def unreachable(**kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(FileNotFoundError, match=r"'gpt2-nope' is neither a local folder nor a model that could be "
                                                r"downloaded from the Hugging Face Hub \(ConnectionError: no network"):
        GPT.from_pretrained("gpt2-nope")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if the hf extra were not installed
    with pytest.raises(ImportError, match=r"needs huggingface_hub: pip install 'tinygrad_lite\[hf\]'"):
        GPT.from_pretrained("gpt2")


# ---- the example ----------------------------------------------------------------------------------------------------

def test_generate_gpt2_prints_the_text_and_its_speed(hf_gpt2, capsys):
    _, folder = hf_gpt2
    script = load_example("generate_gpt2")
    text = script.main(["--model", str(folder), "--prompt", "Hello, I'm", "--tokens", "6", "--top-k", "1"])
    out, err = capsys.readouterr()
    assert out == text + "\n" and text.startswith("Hello, I'm") and len(text) > len("Hello, I'm")
    assert re.fullmatch(r"6 tokens in \d+\.\d\d s: \d+\.\d tokens/s \(with a KV cache\)\n", err)
    again = script.main(["--model", str(folder), "--prompt", "Hello, I'm", "--tokens", "6", "--top-k", "1",
                         "--no-cache"])
    assert again == text


@pytest.mark.parametrize("argv, message", [
    (["--model", "./no/such/folder", "--prompt", "x"], "error: GPT.from_pretrained: no such folder: ./no/such/folder"),
    (["--prompt", "x", "--temperature", "0"], "error: GPT.generate: temperature must be positive, got 0.0"),
])
def test_generate_gpt2_ends_a_mistake_in_one_line(hf_gpt2, capsys, argv, message):
    _, folder = hf_gpt2
    if "--model" not in argv:
        argv = ["--model", str(folder), *argv]
    with pytest.raises(SystemExit) as exit_info:
        load_example("generate_gpt2").main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == message + "\n"
