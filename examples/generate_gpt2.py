"""Generate text with GPT-2 on tinygrad_lite: Hugging Face's files, our BPE, a KV cache; printed as it comes.

    python examples/generate_gpt2.py --model gpt2 --prompt "The meaning of life is"   # downloads once: needs '.[hf]'
    python examples/generate_gpt2.py --model out/gpt2 --prompt "Hello, I'm a language model," --top-k 40 --seed 1
    python examples/generate_gpt2.py --model out/gpt2 --prompt "Hello" --top-k 1 --no-cache

--model is a folder written by transformers' save_pretrained (config.json, model.safetensors, vocab.json,
merges.txt) or a model name on the Hugging Face Hub. The text goes to standard output as it is generated;
the speed, `N tokens in S s: X tokens/s`, to standard error.
"""

from __future__ import annotations

import argparse
import sys
import time

from models.bpe import BPETokenizer
from models.char_data import decode_stream, print_stream
from models.gpt import GPT
from tinygrad_lite import Tensor


def parse_args(argv: list[str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a GPT-2 folder or a model name (gpt2, gpt2-medium, ...)")
    p.add_argument("--prompt", required=True, help="the text to continue")
    p.add_argument("--tokens", type=int, default=50, help="tokens to generate (default %(default)s)")
    p.add_argument("--temperature", type=float, default=1.0, help="below 1 sharper (default %(default)s)")
    p.add_argument("--top-k", type=int, default=50, help="sample among the k likeliest tokens; 1 = greedy, 0 = all "
                   "(default %(default)s)")
    p.add_argument("--top-p", type=float, default=None, help="then among the fewest whose probabilities add up to "
                   "p (default: off)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default %(default)s)")
    p.add_argument("--no-cache", action="store_true", help="recompute the whole context at every step")
    return p, p.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
    parser, args = parse_args(argv)
    if not args.prompt:
        parser.exit(2, "error: --prompt must not be empty\n")
    try:
        model = GPT.from_pretrained(args.model)
        tokenizer = BPETokenizer.from_pretrained(args.model)
        prompt = tokenizer.encode(args.prompt)
        steps = model.stream(Tensor(prompt[None, :]), args.tokens, temperature=args.temperature,
                             top_k=args.top_k or None, top_p=args.top_p, seed=args.seed, use_cache=not args.no_cache)
    except (OSError, ValueError, ImportError) as e:  # a missing folder or file, files of another model, bad options
        parser.exit(2, f"error: {e}\n")
    start = time.perf_counter()
    text = print_stream(decode_stream(tokenizer, prompt, steps))
    seconds = time.perf_counter() - start
    print(f"{args.tokens} tokens in {seconds:.2f} s: {args.tokens / seconds:.1f} tokens/s "
          f"({'no' if args.no_cache else 'with a'} KV cache)", file=sys.stderr)
    return text


if __name__ == "__main__":
    main()
