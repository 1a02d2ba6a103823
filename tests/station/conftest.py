"""A real store in a temporary directory, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cp_pi.store import Store

Reopen = Callable[[], Store]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "state")
    yield opened
    opened.close()


@pytest.fixture
def reopen(store: Store) -> Iterator[Reopen]:
    """Close the store and open the same file again, as after a restart."""
    opened: list[Store] = []

    def again() -> Store:
        store.close()
        opened.append(Store.open(store.path.parent))
        return opened[-1]

    yield again
    for each in opened:
        each.close()
