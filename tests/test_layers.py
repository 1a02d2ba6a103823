"""Imports point one way: a module imports only from its own layer and the layers below it.

Every module under ``cp_pi/`` is parsed, not imported, so an import inside a function or under
``TYPE_CHECKING`` counts as much as one at the top. docs/architecture.md explains the layers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "cp_pi"

#: The layers, lowest first, with the modules (and packages) in each. A module may import from
#: its own layer and from those listed before it; never from one listed after it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("cp_pi.core",)),
    (
        "foundation",
        (
            "cp_pi",
            "cp_pi.errors",
            "cp_pi.config",
            "cp_pi.tasks",
            "cp_pi.listening",
            "cp_pi.runlock",
            "cp_pi.store",
            "cp_pi.systemd",
            # Firmware management's file work (transfers, releases, the layout, archives).
            "cp_pi.updates",
        ),
    ),
    ("hardware", ("cp_pi.hardware",)),
    ("station", ("cp_pi.station",)),
    ("ocpp16", ("cp_pi.ocpp16",)),
    ("adapters", ("cp_pi.csms", "cp_pi.bench", "cp_pi.status_socket", "cp_pi.wiring")),
    ("composition root", ("cp_pi.app",)),
    ("entry points", ("cp_pi.commands", "cp_pi.__main__")),
)


def layer_of(module: str) -> int | None:
    """The rank of the layer holding ``module`` (its longest listed prefix); None: in none."""
    best: tuple[int, int] | None = None  # (length of the prefix, rank)
    for rank, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module == prefix or (prefix != "cp_pi" and module.startswith(prefix + "."))
            if inside and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank)
    return None if best is None else best[1]


def imported(module: str, source: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """The ``cp_pi`` modules that ``source`` (the text of ``module``) imports, anywhere in it."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("cp_pi"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                origin = f"{base}.{node.module}" if node.module else base
            else:
                origin = node.module or ""
            if origin != "cp_pi" and not origin.startswith("cp_pi."):
                continue
            # ``from cp_pi.hardware import safety`` imports the module cp_pi.hardware.safety.
            names = [f"{origin}.{alias.name}" for alias in node.names]
            submodules = [name for name in names if name in known]
            yield from submodules or [origin]


def violations(modules: Mapping[str, tuple[str, bool]]) -> list[str]:
    """Each import from a layer above, and each module in no layer, as a sentence.

    ``modules`` maps a module's dotted name to its source and whether it is a package.
    """
    found = []
    known = set(modules)
    names = [name for name, _prefixes in LAYERS]
    for module, (source, is_package) in sorted(modules.items()):
        rank = layer_of(module)
        if rank is None:
            found.append(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")
            continue
        for target in imported(module, source, is_package, known):
            target_rank = layer_of(target)
            if target_rank is not None and target_rank > rank:
                found.append(
                    f"{module} ({names[rank]}) imports {target} ({names[target_rank]}),"
                    " a layer above it"
                )
    return found


def package_modules() -> dict[str, tuple[str, bool]]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = (path.read_text(encoding="utf-8"), is_package)
    return modules


def test_every_module_imports_only_its_own_layer_and_those_below() -> None:
    modules = package_modules()
    assert len(modules) > 50  # the walk found the package
    assert violations(modules) == []


def test_the_entry_points_sit_above_the_composition_root() -> None:
    assert layer_of("cp_pi.commands.cli") == len(LAYERS) - 1
    assert layer_of("cp_pi.__main__") == len(LAYERS) - 1
    assert layer_of("cp_pi.app") == len(LAYERS) - 2


# -- the checker itself, on modules made up for it ---------------------------------------------


@pytest.mark.parametrize(
    ("module", "source"),
    [
        pytest.param("cp_pi.core.rules", "from cp_pi.hardware.lock import Lock\n", id="core"),
        pytest.param(
            "cp_pi.station.thing", "from cp_pi.ocpp16.wire import utc_now\n", id="station"
        ),
        pytest.param(
            "cp_pi.bench.command", "from cp_pi.app import running_station\n", id="bench-app"
        ),
        pytest.param("cp_pi.store", "import cp_pi.station.connector\n", id="plain-import"),
        pytest.param(
            "cp_pi.hardware.part",
            "def build():\n    from ..station import connector\n",
            id="relative-in-function",
        ),
        pytest.param(
            "cp_pi.config",
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from cp_pi.app import Station\n",
            id="type-checking",
        ),
    ],
)
def test_an_import_from_a_layer_above_is_caught(module: str, source: str) -> None:
    found = violations({module: (source, False)})
    assert len(found) == 1
    assert found[0].startswith(f"{module} (")
    assert "a layer above it" in found[0]


def test_an_import_from_below_or_beside_is_allowed() -> None:
    modules = {
        "cp_pi.station.thing": ("from cp_pi.core.reading import X\nimport cp_pi.store\n", False),
        "cp_pi.app": ("from cp_pi.csms.server import CentralSystem\n", False),
        "cp_pi.hardware": ("from . import safety\n", True),
        "cp_pi.hardware.safety": ("from cp_pi.hardware.inputs import PinReadError\n", False),
    }
    assert violations(modules) == []


def test_a_submodule_imported_from_its_package_counts_as_the_submodule() -> None:
    modules = {
        "cp_pi.core.rules": ("from cp_pi import app\n", False),
        "cp_pi.app": ("", False),
    }
    assert violations(modules) == [
        "cp_pi.core.rules (core) imports cp_pi.app (composition root), a layer above it"
    ]


def test_a_module_in_no_layer_is_caught() -> None:
    assert violations({"cp_pi.gadget": ("", False)}) == [
        "cp_pi.gadget is in no layer: add it to LAYERS and docs/architecture.md"
    ]
