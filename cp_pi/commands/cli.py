"""The `cp-pi` command. Heavy imports wait until a subcommand needs them, so `--help` is instant."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cp_pi import __version__

if TYPE_CHECKING:
    from cp_pi.config import Settings


class _Parser(argparse.ArgumentParser):
    """A usage mistake is one line and exit status 2; the usage is one ``--help`` away."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _port(text: str) -> int:
    """A TCP port for argparse: a number from 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0 to 65535)")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cp-pi",
        description="OCPP 1.6J charge point controller for the Raspberry Pi.",
    )
    parser.add_argument("--version", action="version", version=f"cp-pi {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # The defaults named here for configuration flags are the configuration's own
    # (tests/test_cli_errors.py holds them to it); they are not imported, so --help stays instant.
    run = commands.add_parser("run", help="run the charge point (the service's command)")
    _config_flags(run)
    run.add_argument(
        "--mock",
        action="store_true",
        help="mock pins with the simulated rig (default: pin_factory of the configuration)",
    )
    run.add_argument(
        "--csms-url",
        help="central system base URL, ws:// or wss:// (default: csms_url of the"
        " configuration; none: the embedded central system, on mock pins only)",
    )
    run.add_argument(
        "--id",
        dest="charge_point_id",
        help="charge point id (default: charge_point_id of the configuration, cp-pi-001)",
    )
    run.add_argument(
        "--bench-port",
        type=_port,
        metavar="PORT",
        help="bench server port on mock pins (default: bench.port of the configuration, 8180)",
    )
    run.add_argument(
        "--data-dir",
        type=Path,
        help="where the message store lives (default: data_dir of the configuration,"
        " ~/.local/state/cp-pi)",
    )

    commands.add_parser("demo", help="play the unlock story against the embedded CSMS on mock pins")

    bench = commands.add_parser("bench", help="drive a mock charge point from a web page")
    _config_flags(bench)
    bench.add_argument(
        "--host",
        dest="bench_host",
        help="bench address (default: bench.host of the configuration, 127.0.0.1)",
    )
    bench.add_argument(
        "--port",
        dest="bench_port",
        type=_port,
        help="bench port (default: bench.port of the configuration, 8180)",
    )
    bench.add_argument(
        "--csms-url", help="use this central system (default: an embedded one, on loopback)"
    )
    bench.add_argument(
        "--id",
        dest="charge_point_id",
        help="charge point id (default: charge_point_id of the configuration, cp-pi-001)",
    )
    bench.add_argument(
        "--data-dir", type=Path, help="message store (default: a throwaway directory)"
    )

    wiring = commands.add_parser(
        "check-wiring", help="installer self-test: pin map, inputs, lock and contactor"
    )
    _config_flags(wiring)
    wiring.add_argument(
        "--mock",
        action="store_true",
        help="mock pins with the simulated rig (default: the configured pins; none found: stop)",
    )
    wiring.add_argument(
        "--yes", action="store_true", help="drive the outputs without asking (default: ask)"
    )
    wiring.add_argument(
        "--fault",
        choices=["lock_stuck", "feedback_broken", "contactor_welded", "rcd_trip", "meter_offline"],
        help="(mock pins) break a part of the rig first (default: none)",
    )

    csms = commands.add_parser("csms", help="run the embedded central system on its own")
    csms.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    csms.add_argument("--port", type=_port, default=9000, help="port (default: %(default)s)")
    csms.add_argument(
        "--tag",
        action="append",
        dest="tags",
        help="authorized id tag, repeat for more (default: every tag)",
    )
    csms.add_argument(
        "--files",
        type=Path,
        metavar="DIR",
        help="also serve DIR over HTTP: firmware for UpdateFirmware, PUT for GetDiagnostics"
        " (default: none)",
    )
    csms.add_argument(
        "--files-port", type=_port, default=9001, help="its port (default: %(default)s)"
    )

    fleet = commands.add_parser(
        "fleet", help="run many simulated charge points in one process (CSMS load tests)"
    )
    fleet.add_argument("--count", type=int, required=True, help="how many charge points (required)")
    fleet.add_argument("--csms-url", help="central system base URL (default: an embedded one)")
    fleet.add_argument(
        "--pattern",
        choices=["none", "charge"],
        default="none",
        help="what each one does (default: %(default)s)",
    )
    fleet.add_argument(
        "--id-prefix",
        default="sim",
        help="ids are PREFIX-0001, PREFIX-0002, ... (default: %(default)s)",
    )
    fleet.add_argument(
        "--data-dir", type=Path, help="keep the stores here (default: a throwaway directory)"
    )
    fleet.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: run until stopped)"
    )
    fleet.add_argument(
        "--rate",
        type=float,
        default=50.0,
        help="charge points started per second (default: %(default)g)",
    )
    fleet.add_argument(
        "--charge-time",
        type=float,
        default=60.0,
        help="mean seconds a session charges (default: %(default)g)",
    )
    fleet.add_argument(
        "--idle-time",
        type=float,
        default=30.0,
        help="mean seconds between two sessions (default: %(default)g)",
    )

    status = commands.add_parser(
        "status",
        help="ask the running charge point how it is (exit 3: not running)",
        description="Ask the running charge point, over its local socket, how the link and"
        " each connector are. Exit status 0, 3 when no charge point is running, 4 when it"
        " cannot be asked (permission: use sudo, or join its group).",
    )
    _config_flags(status)
    status.add_argument(
        "--data-dir",
        type=Path,
        help="ask the one using this data directory (default: $RUNTIME_DIRECTORY or"
        " /run/cp-pi, then data_dir of the configuration)",
    )
    status.add_argument(
        "--json", action="store_true", help="the whole state as JSON (default: a few lines)"
    )

    check = commands.add_parser(
        "check-config",
        help="validate the configuration as cp-pi run would, print it and the pin map",
    )
    _config_flags(check)
    return parser


def _config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="TOML file (default: /etc/cp-pi/cp-pi.toml when it exists)"
    )


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if getattr(args, "mock", False):
        overrides["pin_factory"] = "mock"
    for name in ("csms_url", "charge_point_id", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    bench = {
        key: getattr(args, f"bench_{key}")
        for key in ("host", "port")
        if getattr(args, f"bench_{key}", None) is not None
    }
    if bench:
        overrides["bench"] = bench
    return overrides


def _logging(level: str) -> None:
    # journald stamps each line itself; a terminal wants the time.
    under_journal = "JOURNAL_STREAM" in os.environ
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s"
        if under_journal
        else "%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # A line per HTTP request and websocket connection (bench page, embedded CSMS) is noise.
    logging.getLogger("websockets.server").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from cp_pi.errors import CpPiError, report

    try:
        return _command(args, argv)
    except CpPiError as error:
        return report(error)


def _command(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """Run the chosen command; a :class:`CpPiError` it raises is for :func:`main` to report."""
    from cp_pi.config import load_settings

    if args.command == "check-config":
        settings = load_settings(args.config)
        _check_runnable(settings)
        _print_settings(settings)
        return 0
    if args.command == "csms":
        from cp_pi.csms.server import run_csms

        _logging("INFO")
        return _serving(
            run_csms(args.host, args.port, args.tags, files=args.files, files_port=args.files_port),
            port_flag="--port",
            host_flag="--host",
        )
    if args.command == "fleet":
        from cp_pi.commands.fleet import run_fleet

        _logging("WARNING")
        return _until_interrupted(
            run_fleet(
                args.count,
                csms_url=args.csms_url,
                pattern=args.pattern,
                id_prefix=args.id_prefix,
                data_dir=args.data_dir,
                duration=args.duration,
                rate=args.rate,
                charge_time=args.charge_time,
                idle_time=args.idle_time,
            )
        )
    if args.command == "status":
        from cp_pi.commands.status import run_status

        return run_status(args.data_dir, args.config, as_json=args.json)
    if args.command == "demo":
        from cp_pi.commands.demo import play

        _logging("WARNING")
        return _until_interrupted(play())
    settings = load_settings(args.config, _overrides(args))
    if args.command == "check-wiring":
        from cp_pi.hardware.rig import RigFault
        from cp_pi.wiring.check import run_check_wiring

        _logging("WARNING")
        fault = RigFault(args.fault) if args.fault else None
        return run_check_wiring(settings, assume_yes=args.yes, fault=fault)
    _logging(settings.log_level)
    if args.command == "bench":
        from cp_pi.commands.bench import run_bench

        return _serving(run_bench(settings), port_flag="--port", host_flag="--host")
    from cp_pi.app import RestartRequested, serve
    from cp_pi.updates.diagnostics import attach_log_file

    _check_runnable(settings)
    # Beside the journal, the file GetDiagnostics takes its log lines from.
    attach_log_file(
        settings.data_dir,
        max_bytes=settings.diagnostics.log_file_bytes,
        backups=settings.diagnostics.log_file_backups,
    )
    try:
        return _serving(
            serve(settings), port_flag="--bench-port", host_flag="bench.host in the configuration"
        )
    except RestartRequested as restart:
        _restart(sys.argv[1:] if argv is None else argv, restart.launcher)


def _check_runnable(settings: Settings) -> None:
    """Refuse, as ``cp-pi run`` does, what is valid but cannot run on this machine's pins."""
    from cp_pi.config import check_runnable
    from cp_pi.hardware.factory import resolves_to_mock

    check_runnable(settings, mock_pins=resolves_to_mock(settings.pin_factory))


def _print_settings(settings: Settings) -> None:
    """The settings in effect, then each connector's pins as the harness is built: BCM number
    and physical header pin."""
    from cp_pi.config import connectors_on
    from cp_pi.hardware.factory import resolves_to_mock
    from cp_pi.wiring.pin_map import board_header, pin_map_lines

    print(settings.model_dump_json(indent=2))
    header = board_header()
    mock_pins = resolves_to_mock(settings.pin_factory)
    connectors = connectors_on(settings.connectors, mock_pins=mock_pins)
    for number, connector in enumerate(connectors, start=1):
        print(f"\nconnector {number} pin map:")
        print(*pin_map_lines(connector, header), sep="\n")


def _serving(coroutine: Any, *, port_flag: str, host_flag: str) -> int:
    """Run a command that listens: an address it cannot listen on is reported naming the flag
    that changes it."""
    from cp_pi.listening import CannotListen

    try:
        return _until_interrupted(coroutine)
    except CannotListen as error:
        error.hint = f"choose another with {port_flag if error.port_taken else host_flag}"
        raise


def _restart(argv: Sequence[str], launcher: Path | None = None) -> NoReturn:
    """Replace this process with a fresh ``cp-pi`` on the same arguments, keeping its PID.

    The PID is what systemd watches (``Type=notify``); the new process reads the configuration
    again and tells systemd ``READY=1`` once it is up. Files and sockets are not inherited
    (Python opens them non-inheritable), so the store and the run lock are taken afresh.
    From a side-by-side layout the restart goes through its launcher, which runs whatever
    version ``current`` points to (a firmware update switched it) and rolls back a new one
    that cannot start.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    if launcher is not None:  # a side-by-side layout: into the version ``current`` names
        os.execv(sys.executable, [sys.executable, str(launcher), *argv])
    os.execv(sys.executable, [sys.executable, "-m", "cp_pi", *argv])


def _until_interrupted(coroutine: Any) -> int:
    try:
        result: int = asyncio.run(coroutine)
    except KeyboardInterrupt:
        return 130
    return result
