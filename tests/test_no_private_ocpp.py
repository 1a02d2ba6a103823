"""cp-pi uses only the `ocpp` package's public API: its schemas, validation, payload classes and
enums. Its private names change between releases without notice; a dependency on one would
break the charge point on an upgrade inside the pinned range."""

from __future__ import annotations

import ast
from pathlib import Path

import cp_pi

SOURCE = Path(cp_pi.__file__).parent

#: Internals of the package's ChargePoint and routing that cp-pi once leaned on.
KNOWN_PRIVATE = frozenset(
    {
        "_response_queue",
        "_get_specific_response",
        "route_map",
        "create_route_map",
        "routables",
        "_handle_call",
        "_ocpp_version",
        "_call_lock",
        "_unique_id_generator",
        "_call_result",
        "_on_action",
        "_after_action",
        "_skip_schema_validation",
        "_raise_key_error",
        "_validate_payload",
    }
)


def private_uses(source: str) -> list[str]:
    """Every use of a private `ocpp` name in one module's source, as ``line: what``."""
    tree = ast.parse(source)
    from_ocpp: set[str] = set()  # local names bound to something of the package
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ocpp":
            for alias in node.names:
                from_ocpp.add(alias.asname or alias.name)
                if alias.name.startswith("_") or alias.name in KNOWN_PRIVATE:
                    found.append(f"{node.lineno}: imports {alias.name} from {node.module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ocpp":
                    from_ocpp.add((alias.asname or alias.name).split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                root = base
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in from_ocpp:
                    found.append(f"{node.lineno}: class {node.name} extends {ast.unparse(base)}")
        elif isinstance(node, ast.Attribute):
            private = node.attr.startswith("_") and not node.attr.startswith("__")
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if node.attr in KNOWN_PRIVATE or (
                private and isinstance(root, ast.Name) and root.id in from_ocpp
            ):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Name) and node.id in KNOWN_PRIVATE:
            found.append(f"{node.lineno}: {node.id}")
    return sorted(found, key=lambda line: int(line.split(":")[0]))


def test_no_module_of_cp_pi_uses_a_private_name_of_the_ocpp_package() -> None:
    uses = {
        str(path.relative_to(SOURCE)): private_uses(path.read_text())
        for path in sorted(SOURCE.rglob("*.py"))
    }
    assert {module: found for module, found in uses.items() if found} == {}


def test_the_check_sees_each_kind_of_private_use() -> None:
    source = "\n".join(
        [
            "import ocpp.messages",
            "from ocpp.v16 import ChargePoint",
            "from ocpp.charge_point import _raise_key_error",
            "class Session(ChargePoint): pass",
            "ocpp.messages._validate_payload(1, 2)",
            "session.route_map",
            "session._response_queue.get()",
        ]
    )
    assert private_uses(source) == [
        "3: imports _raise_key_error from ocpp.charge_point",
        "4: class Session extends ChargePoint",
        "5: ocpp.messages._validate_payload",
        "6: session.route_map",
        "7: session._response_queue",
    ]
