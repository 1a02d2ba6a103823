"""Fixtures of the OCPP tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.ocpp16.helpers import LogWatch


@pytest.fixture
def log_watch() -> Iterator[LogWatch]:
    """Every line the charge point logs at INFO and above, awaitable."""
    watch = LogWatch()
    logger = logging.getLogger("cp_pi")
    logger.addHandler(watch)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield watch
    logger.removeHandler(watch)
    logger.setLevel(previous)
