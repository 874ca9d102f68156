"""What every model-analyzer command shares: one way to fail with a sentence, and the parsing of list flags."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.console import Console

# soft_wrap: an error stays on one line when stderr is not a terminal (logs, CI).
console = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print `message` as the one error sentence and return the exit to raise (status 1, no traceback)."""
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=1)


def parse_int_list(flag: str, text: str) -> list[int]:
    """'1,4,8' -> [1, 4, 8], or a sentence that says what is wrong with it."""
    values = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdecimal() or int(item) < 1:  # isdigit() also accepts "²", which int() refuses
            raise fail(f"{flag} {text!r}: {item!r} is not a positive integer; give a comma-separated list like 1,4,8.")
        values.append(int(item))
    return values


def explain(error: ValidationError) -> str:
    """The first validation error as `where: what`."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}"
