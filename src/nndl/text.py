"""Short texts for people: a count with its noun, an exception's reason in one line."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """'1 epoch', '30 epochs'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def first_line(problem: object) -> str:
    """An exception's message (or any reason) cut to its first line and 200 characters, else its type's name."""
    text = str(problem).strip()
    return text.splitlines()[0][:200] if text else type(problem).__name__
