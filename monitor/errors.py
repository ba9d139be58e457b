"""Errors a person can act on, and the one way command-line tools report them."""

from __future__ import annotations

import sys
from collections.abc import Callable


class InputError(ValueError):
    """Bad input (a missing record, an unusable signal, a wrong file): says what and what to do."""


def missing_extra(what: str, module: str | None, extra: str) -> InputError:
    """What to install when `what` (the worker, training...) lacks `module` of its extra."""
    return InputError(f"{what} needs {module}: pip install 'ecg-monitor[{extra}]'")


class ContractError(InputError):
    """A model file cut beats by different rules than this code base."""


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run a CLI entry point: input errors become one line on stderr and exit code 2."""
    try:
        return int(main(argv) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
