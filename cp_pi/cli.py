"""The `cp-pi` command. Heavy imports wait until a subcommand needs them, so `--help` is instant."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from cp_pi import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cp-pi",
        description="OCPP 1.6J charge point controller for the Raspberry Pi.",
    )
    parser.add_argument("--version", action="version", version=f"cp-pi {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run the charge point (the service's command)")
    _config_flags(run)
    run.add_argument("--mock", action="store_true", help="mock pins with the simulated rig")
    run.add_argument("--csms-url", help="central system base URL (ws:// or wss://)")
    run.add_argument("--id", dest="charge_point_id", help="charge point id")
    run.add_argument("--bench-port", type=int, help="bench server port (mock mode)")
    run.add_argument("--data-dir", type=Path, help="where the message store lives")

    commands.add_parser("demo", help="play the unlock story against the embedded CSMS on mock pins")

    bench = commands.add_parser("bench", help="drive a mock charge point from a web page")
    _config_flags(bench)
    bench.add_argument("--host", dest="bench_host", help="bench address (default 127.0.0.1)")
    bench.add_argument("--port", dest="bench_port", type=int, help="bench port (default 8180)")
    bench.add_argument("--csms-url", help="use this central system instead of the embedded one")
    bench.add_argument("--id", dest="charge_point_id", help="charge point id")
    bench.add_argument("--data-dir", type=Path, help="message store (default: a throwaway one)")

    wiring = commands.add_parser(
        "check-wiring", help="installer self-test: pin map, inputs, lock and contactor"
    )
    _config_flags(wiring)
    wiring.add_argument("--mock", action="store_true", help="mock pins with the simulated rig")
    wiring.add_argument("--yes", action="store_true", help="drive the outputs without asking")
    wiring.add_argument(
        "--fault",
        choices=["lock_stuck", "feedback_broken", "contactor_welded"],
        help="(mock pins) break a part of the rig first",
    )

    csms = commands.add_parser("csms", help="run the embedded central system on its own")
    csms.add_argument("--host", default="127.0.0.1")
    csms.add_argument("--port", type=int, default=9000)
    csms.add_argument(
        "--tag", action="append", dest="tags", help="authorized id tag (repeat; default: all)"
    )

    fleet = commands.add_parser(
        "fleet", help="run many simulated charge points in one process (CSMS load tests)"
    )
    fleet.add_argument("--count", type=int, required=True, help="how many charge points")
    fleet.add_argument("--csms-url", help="central system base URL (default: an embedded one)")
    fleet.add_argument(
        "--pattern", choices=["none", "charge"], default="none", help="what each one does"
    )
    fleet.add_argument("--id-prefix", default="sim", help="ids are PREFIX-0001, PREFIX-0002, ...")
    fleet.add_argument("--data-dir", type=Path, help="keep the stores here (default: throwaway)")
    fleet.add_argument("--duration", type=float, help="stop after this many seconds")
    fleet.add_argument("--rate", type=float, default=50.0, help="charge points started per second")
    fleet.add_argument(
        "--charge-time", type=float, default=60.0, help="mean seconds a session charges"
    )
    fleet.add_argument(
        "--idle-time", type=float, default=30.0, help="mean seconds between two sessions"
    )

    status = commands.add_parser(
        "status",
        help="ask the running charge point how it is (exit 3: not running)",
        description="Ask the running charge point, over its local socket, how the link and"
        " each connector are. Exit status 0, 3 when no charge point is running, 4 when it"
        " cannot be asked (permission: use sudo, or join its group).",
    )
    _config_flags(status)
    status.add_argument("--data-dir", type=Path, help="ask the one using this data directory")
    status.add_argument("--json", action="store_true", help="the whole state as JSON")

    check = commands.add_parser("check-config", help="validate the configuration and print it")
    _config_flags(check)
    return parser


def _config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="TOML file (default: /etc/cp-pi/cp-pi.toml when present)"
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
    from cp_pi.config import load_settings_or_exit

    if args.command == "check-config":
        settings = load_settings_or_exit(args.config)
        print(settings.model_dump_json(indent=2))
        return 0
    if args.command == "csms":
        from cp_pi.csms.server import run_csms

        _logging("INFO")
        return _until_interrupted(run_csms(args.host, args.port, args.tags))
    if args.command == "fleet":
        from cp_pi.fleet import FleetOptionsError, run_fleet

        _logging("WARNING")
        try:
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
        except FleetOptionsError as error:
            print(f"cp-pi: {error}", file=sys.stderr)
            return 2
    if args.command == "status":
        from cp_pi.status_socket import run_status

        return run_status(args.data_dir, args.config, as_json=args.json)
    if args.command == "demo":
        from cp_pi.demo import play

        _logging("WARNING")
        return _until_interrupted(play())
    settings = load_settings_or_exit(args.config, _overrides(args))
    if args.command == "check-wiring":
        from cp_pi.hardware.rig import RigFault
        from cp_pi.wiring_check import run_check_wiring

        _logging("WARNING")
        fault = RigFault(args.fault) if args.fault else None
        return run_check_wiring(settings, assume_yes=args.yes, fault=fault)
    _logging(settings.log_level)
    if args.command == "bench":
        from cp_pi.bench.command import run_bench

        return _until_interrupted(run_bench(settings))
    from cp_pi.app import RestartRequested, StationError, serve
    from cp_pi.hardware.factory import HardwareUnavailable

    try:
        return _until_interrupted(serve(settings))
    except RestartRequested:
        _restart(sys.argv[1:] if argv is None else argv)
    except StationError as error:
        print(f"cp-pi: {error}", file=sys.stderr)
        return 2
    except HardwareUnavailable as error:
        print(f"cp-pi: {error}", file=sys.stderr)
        return 1


def _restart(argv: Sequence[str]) -> NoReturn:
    """Replace this process with a fresh ``cp-pi`` on the same arguments, keeping its PID.

    The PID is what systemd watches (``Type=notify``); the new process reads the configuration
    again and tells systemd ``READY=1`` once it is up. Files and sockets are not inherited
    (Python opens them non-inheritable), so the store and the run lock are taken afresh.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "cp_pi", *argv])


def _until_interrupted(coroutine: Any) -> int:
    try:
        result: int = asyncio.run(coroutine)
    except KeyboardInterrupt:
        return 130
    return result
