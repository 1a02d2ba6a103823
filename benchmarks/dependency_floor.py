"""The memory floor of figure 3: the libraries cp-pi is built on, imported, and nothing of cp-pi.

The issue's memory goal is compared with what the chosen stack costs before a line of cp-pi
runs: the interpreter, asyncio (with ssl, which websockets needs for ``wss://``), websockets,
the ``ocpp`` package (with jsonschema), pydantic-settings (with pydantic), gpiozero with its mock
pins, and sqlite3. The process imports them, then answers every line on stdin with ``ready``
so that the benchmark reads its resident set size at rest.

    python -m benchmarks.dependency_floor
"""

from __future__ import annotations

import argparse  # noqa: F401  # the CLI's parser, as `cp-pi run` imports it
import asyncio  # noqa: F401
import sqlite3  # noqa: F401
import sys
import tomllib  # noqa: F401  # the configuration file's reader

import gpiozero.pins.mock  # noqa: F401
import ocpp.routing  # noqa: F401
import ocpp.v16  # noqa: F401
import pydantic_settings  # noqa: F401
import websockets.asyncio.client  # noqa: F401
import websockets.asyncio.server  # noqa: F401  # the bench page's server

if __name__ == "__main__":
    for _ in sys.stdin:
        print("ready", flush=True)
