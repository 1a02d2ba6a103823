"""The memory floor of figure 3: the libraries cp-pi is built on, imported, and nothing of cp-pi.

The issue's memory goal is compared with what the chosen stack costs before a line of cp-pi
runs: the interpreter, asyncio (with ssl, which websockets needs for ``wss://``), websockets,
the ``ocpp`` package (with jsonschema), pydantic-settings (with pydantic), gpiozero with its mock
pins, and sqlite3. The process imports them, then answers every line on stdin with ``ready``
so that the benchmark reads its resident set size at rest.

    python -m benchmarks.dependency_floor
"""

from __future__ import annotations

import importlib
import sys

FLOOR = (
    "argparse",  # the CLI's parser, as `cp-pi run` imports it
    "asyncio",
    "sqlite3",
    "tomllib",  # the configuration file's reader
    "gpiozero.pins.mock",
    "ocpp.routing",
    "ocpp.v16",
    "pydantic_settings",
    "websockets.asyncio.client",
    "websockets.asyncio.server",  # the bench page's server
)

if __name__ == "__main__":
    for module in FLOOR:
        importlib.import_module(module)
    for _ in sys.stdin:
        print("ready", flush=True)
