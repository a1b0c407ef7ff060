"""Sample text from a GPT checkpoint written by examples/train_gpt.py, printed as it is generated.

    python examples/sample_gpt.py --checkpoint out/gpt.npz --prompt "ROMEO:" --tokens 500 \\
        --temperature 0.8 --top-k 40 --seed 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

from models.bpe import BPETokenizer
from models.char_data import CharTokenizer, decode_stream, print_stream, tokenizer_from_dict
from models.gpt import GPT, GPTConfig
from tinygrad_lite import Tensor, cli

DEFAULT_CHECKPOINT = Path("out/gpt.npz")  # where examples/train_gpt.py writes it


def load_model(path: Path) -> tuple[GPT, CharTokenizer | BPETokenizer]:
    """The model (in eval mode) and tokenizer stored in a training checkpoint."""
    ckpt = cli.load_checkpoint(path, made_by="python examples/train_gpt.py" +
                               ("" if path == DEFAULT_CHECKPOINT else f" --checkpoint {path}"))
    model = GPT(GPTConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), tokenizer_from_dict(ckpt["tokenizer"])


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="checkpoint (default %(default)s)")
    p.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    p.add_argument("--tokens", type=int, default=500, help="tokens (characters) to generate (default %(default)s)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="below 1 sharper, above 1 more random (default %(default)s)")
    p.add_argument("--top-k", type=int, default=40, help="sample among the k likeliest tokens; 0 = all "
                   "(default %(default)s)")
    p.add_argument("--top-p", type=float, default=None, help="then sample among the fewest likeliest tokens "
                   "whose probabilities add up to p (default: off)")
    p.add_argument("--seed", type=int, default=1, help="sampling seed (default %(default)s)")
    args = p.parse_args(argv)
    model, tokenizer = load_model(args.checkpoint)
    if not args.prompt:
        p.error("--prompt must not be empty")
    with cli.user_input():  # a character the model never saw, a temperature <= 0, ...
        prompt = tokenizer.encode(args.prompt)
        steps = model.stream(Tensor(prompt[None, :]), args.tokens, temperature=args.temperature,
                             top_k=args.top_k or None, top_p=args.top_p, seed=args.seed)
    return print_stream(decode_stream(tokenizer, prompt, steps))


if __name__ == "__main__":
    cli.run(main)
