"""Taking turns, so a shared machine's noise hits every init alike.

Every measurement visits the inits (or startup cases) round by round, each
round starting one further along, rather than one init's whole series after
another's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def rotations(names: Sequence[str], rounds: int) -> Iterator[tuple[int, list[str]]]:
    """Round after round, every name once, starting one further along each time."""
    for r in range(rounds):
        k = r % len(names)
        yield r, [*names[k:], *names[:k]]
