"""What the example scripts share: a user's mistake ends in one line on stderr, a bug keeps its traceback.

    from tinygrad_lite import cli

    def main(argv=None):
        args = parser.parse_args(argv)
        ckpt = cli.load_checkpoint(args.checkpoint, made_by="python examples/train_gpt.py")
        with cli.user_input("--prompt"):      # a ValueError in here comes from what the user typed
            ids = tokenizer.encode(args.prompt)

    if __name__ == "__main__":
        cli.run(main)

`run` turns a `UsageError` or an OSError (a missing file, a failed download, a full disk) into
`error: <message>` on stderr and exit status 2, argparse's status for a usage error. Any other
exception is a bug in the code, not in the command line, and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from .io import load


class UsageError(Exception):
    """A mistake in what the user asked for (an option's value, a file to read): reported in one line."""


USER_ERRORS = (UsageError, OSError)


def run(main: Callable[[], Any]) -> None:
    """Call `main()`; a user's mistake (`USER_ERRORS`) prints `error: ...` on stderr and exits with status 2."""
    try:
        main()
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


@contextlib.contextmanager
def user_input(what: str | None = None) -> Iterator[None]:
    """Inside, a ValueError comes from the user's options or files: it becomes a UsageError (`what: ` first)."""
    try:
        yield
    except ValueError as e:
        raise UsageError(f"{what}: {e}" if what else str(e)) from e


def load_checkpoint(path: str | os.PathLike, made_by: str) -> Any:
    """`tinygrad_lite.load(path)`; a missing or unreadable file is a UsageError that says how to make one."""
    try:
        return load(path)
    except FileNotFoundError:
        raise UsageError(f"no checkpoint at {path}; train one with {made_by}") from None
    except ValueError as e:
        raise UsageError(f"{e}; train a new one with {made_by}") from e


__all__ = ["UsageError", "USER_ERRORS", "run", "user_input", "load_checkpoint"]
