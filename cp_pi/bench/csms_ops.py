"""The bench's ``csms`` op: the page plays the central system through the embedded one.

``{"op": "csms", "action": "unlock", "connector": 1}`` makes the embedded CSMS send
UnlockConnector to the charge point; the ack carries the charge point's CALLRESULT payload as it
was sent, so the bench shows what a real central system would have heard.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cp_pi.bench.server import BenchError, Command, ExtraCommand, id_tag_of
from cp_pi.csms.files import FileServer
from cp_pi.csms.server import CallErrorReceived, CentralSystem, InvalidAnswer

#: Seconds to wait for the charge point's answer; an unlock may take 9.5 s.
ANSWER_WITHIN = 12.0

Payload = dict[str, Any]
_Action = Callable[[CentralSystem, str, Command, float], Awaitable[tuple[Payload, Payload]]]
"""Sends one CSMS command; returns the arguments it used (echoed in the ack) and the answer."""


def csms_ops(
    csms: CentralSystem,
    charge_point_id: str,
    *,
    timeout: float = ANSWER_WITHIN,
    files: FileServer | None = None,
) -> dict[str, ExtraCommand]:
    """The ``extra_commands`` for a :class:`BenchServer` whose charge point uses ``csms``.

    ``files``: the central system's file server, where GetDiagnostics uploads by default.
    """

    async def run(command: Command) -> Payload:
        action = command.get("action")
        if not isinstance(action, str) or action not in _ACTIONS:
            raise BenchError(f"unknown csms action {action!r} (one of {', '.join(_ACTIONS)})")
        if files is not None and action == "get_diagnostics":
            command = {"location": f"{files.url}/", **command}
        try:
            args, answer = await _ACTIONS[action](csms, charge_point_id, command, timeout)
        except BenchError as error:
            raise BenchError(str(error), action=action, **error.details) from None
        except CallErrorReceived as error:
            raise BenchError(
                f"CALLERROR {error.code}: {error.description}",
                action=action,
                reason="callerror",
                code=error.code,
            ) from None
        except TimeoutError:
            raise BenchError(
                f"the charge point did not answer within {timeout:g} s",
                action=action,
                reason="timeout",
            ) from None
        except ConnectionError as error:
            raise BenchError(str(error), action=action, reason="disconnected") from None
        except InvalidAnswer as error:
            raise BenchError(str(error), action=action, reason="invalid_answer") from None
        return {"action": action, **args, "answer": answer}

    return {"csms": run}


async def _unlock(
    csms: CentralSystem, cp_id: str, command: Command, timeout: float
) -> tuple[Payload, Payload]:
    connector = _integer(command, "connector")
    return {"connector": connector}, await csms.unlock_connector(cp_id, connector, timeout=timeout)


async def _remote_start(
    csms: CentralSystem, cp_id: str, command: Command, timeout: float
) -> tuple[Payload, Payload]:
    id_tag = id_tag_of(command.get("id_tag"))
    connector = _integer(command, "connector") if "connector" in command else None
    answer = await csms.remote_start(cp_id, id_tag, connector, timeout=timeout)
    return {"id_tag": id_tag, "connector": connector}, answer


async def _remote_stop(
    csms: CentralSystem, cp_id: str, command: Command, timeout: float
) -> tuple[Payload, Payload]:
    transaction_id = _integer(command, "transaction_id")
    answer = await csms.remote_stop(cp_id, transaction_id, timeout=timeout)
    return {"transaction_id": transaction_id}, answer


async def _reset(
    csms: CentralSystem, cp_id: str, command: Command, timeout: float
) -> tuple[Payload, Payload]:
    kind = command.get("kind", "Soft")
    if kind not in ("Soft", "Hard"):
        raise BenchError(f"kind must be Soft or Hard, not {kind!r}")
    return {"kind": kind}, await csms.reset(cp_id, kind, timeout=timeout)


async def _change_availability(
    csms: CentralSystem, cp_id: str, command: Command, timeout: float
) -> tuple[Payload, Payload]:
    connector = _integer(command, "connector")
    kind = command.get("kind")
    if kind not in ("Operative", "Inoperative"):
        raise BenchError(f"kind must be Operative or Inoperative, not {kind!r}")
    answer = await csms.change_availability(cp_id, connector, kind, timeout=timeout)
    return {"connector": connector, "kind": kind}, answer


# -- Local Auth List Management and Reservation ------------------------------------------------


async def _send_local_list(
    csms: CentralSystem, cp_id: str, command: Command, timeout: float
) -> tuple[Payload, Payload]:
    version = _integer(command, "list_version")
    update_type = command.get("update_type", "Full")
    if update_type not in ("Full", "Differential"):
        raise BenchError(f"update_type must be Full or Differential, not {update_type!r}")
    entries = command.get("entries", [])
    if not isinstance(entries, list):
        raise BenchError("entries must be a list of {id_tag, status} objects")
    wire = [_list_entry(entry) for entry in entries]
    args = {"list_version": version, "update_type": update_type, "entries": entries}
    answer = await csms.send_local_list(cp_id, version, wire or None, update_type, timeout=timeout)
    return args, answer


def _list_entry(entry: object) -> Payload:
    """``{"id_tag": "A", "status": "Accepted"}``; without a status, the tag is removed."""
    if not isinstance(entry, dict) or not isinstance(entry.get("id_tag"), str):
        raise BenchError(f"each entry needs an id_tag string, not {entry!r}")
    id_tag = id_tag_of(entry["id_tag"])
    status = entry.get("status")
    if status is None:
        return {"idTag": id_tag}
    if status not in ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"):
        raise BenchError(f"status {status!r} is no idTagInfo status")
    info: Payload = {"status": status}
    for name, wire_name in (("expiry_date", "expiryDate"), ("parent_id_tag", "parentIdTag")):
        if isinstance(entry.get(name), str):
            info[wire_name] = entry[name]
    return {"idTag": id_tag, "idTagInfo": info}


async def _get_local_list_version(
    csms: CentralSystem, cp_id: str, command: Command, timeout: float
) -> tuple[Payload, Payload]:
    return {}, await csms.get_local_list_version(cp_id, timeout=timeout)


async def _reserve_now(
    csms: CentralSystem, cp_id: str, command: Command, timeout: float
) -> tuple[Payload, Payload]:
    connector = _integer(command, "connector")
    reservation_id = _integer(command, "reservation_id")
    id_tag = id_tag_of(command.get("id_tag"))
    expires_in = command.get("expires_in", 600)
    if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool):
        raise BenchError(f"expires_in must be a number of seconds, not {expires_in!r}")
    expiry = datetime.now(UTC) + timedelta(seconds=expires_in)
    expiry_date = expiry.isoformat(timespec="seconds").replace("+00:00", "Z")
    parent = command.get("parent_id_tag")
    parent_id_tag = None if parent is None else id_tag_of(parent)
    answer = await csms.reserve_now(
        cp_id, reservation_id, connector, id_tag, expiry_date, parent_id_tag, timeout=timeout
    )
    args = {
        "connector": connector,
        "reservation_id": reservation_id,
        "id_tag": id_tag,
        "expiry_date": expiry_date,
    }
    return args, answer


async def _cancel_reservation(
    csms: CentralSystem, cp_id: str, command: Command, timeout: float
) -> tuple[Payload, Payload]:
    reservation_id = _integer(command, "reservation_id")
    answer = await csms.cancel_reservation(cp_id, reservation_id, timeout=timeout)
    return {"reservation_id": reservation_id}, answer


async def _update_firmware(
    csms: CentralSystem, cp_id: str, command: Command, timeout: float
) -> tuple[Payload, Payload]:
    location = _location(command)
    answer = await csms.update_firmware(cp_id, location, timeout=timeout)
    return {"location": location}, answer


async def _get_diagnostics(
    csms: CentralSystem, cp_id: str, command: Command, timeout: float
) -> tuple[Payload, Payload]:
    location = _location(command)
    return {"location": location}, await csms.get_diagnostics(cp_id, location, timeout=timeout)


def _location(command: Command) -> str:
    location = command.get("location")
    if not isinstance(location, str) or not location.startswith(("http://", "https://", "ftp://")):
        raise BenchError(f"location must be an http, https or ftp URL, not {location!r}")
    return location


def sample_profile(now: datetime) -> Payload:
    """A TxDefaultProfile for every connector, from this hour on for a day: 16 A, 8 A for the
    evening peak (17:00 to 20:00 UTC), 32 A overnight. The bench's "sample profile" button."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    periods: list[Payload] = []
    for k in range(24):
        of_day = (hour.hour + k) % 24
        limit = 8.0 if 17 <= of_day < 20 else 32.0 if of_day >= 23 or of_day < 6 else 16.0
        if not periods or periods[-1]["limit"] != limit:
            periods.append({"startPeriod": k * 3600, "limit": limit})
    return {
        "chargingProfileId": 900,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "startSchedule": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration": 86400,
            "chargingSchedulePeriod": periods,
        },
    }


async def _set_charging_profile(
    csms: CentralSystem, cp_id: str, command: Command, timeout: float
) -> tuple[Payload, Payload]:
    connector = _integer(command, "connector")
    profile = command.get("profile", "sample")
    if profile == "sample":
        profile = sample_profile(datetime.now(UTC))
    if not isinstance(profile, dict):
        raise BenchError('profile must be a csChargingProfiles object or "sample"')
    answer = await csms.set_charging_profile(cp_id, connector, profile, timeout=timeout)
    return {"connector": connector, "profile": profile}, answer


async def _clear_charging_profile(
    csms: CentralSystem, cp_id: str, command: Command, timeout: float
) -> tuple[Payload, Payload]:
    criteria: Payload = {
        name: _integer(command, name)
        for name in ("id", "connector", "stack_level")
        if name in command
    }
    purpose = command.get("purpose")
    if purpose not in (None, "ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"):
        raise BenchError(f"purpose must be a charging profile purpose, not {purpose!r}")
    answer = await csms.clear_charging_profile(
        cp_id,
        id=criteria.get("id"),
        connector_id=criteria.get("connector"),
        purpose=purpose,
        stack_level=criteria.get("stack_level"),
        timeout=timeout,
    )
    return {**criteria, "purpose": purpose}, answer


async def _get_composite_schedule(
    csms: CentralSystem, cp_id: str, command: Command, timeout: float
) -> tuple[Payload, Payload]:
    connector = _integer(command, "connector")
    duration = _integer(command, "duration") if "duration" in command else 86400
    unit = command.get("unit", "A")
    if unit not in ("A", "W"):
        raise BenchError(f"unit must be A or W, not {unit!r}")
    answer = await csms.get_composite_schedule(cp_id, connector, duration, unit, timeout=timeout)
    return {"connector": connector, "duration": duration, "unit": unit}, answer


_ACTIONS: dict[str, _Action] = {
    "unlock": _unlock,
    "remote_start": _remote_start,
    "remote_stop": _remote_stop,
    "reset": _reset,
    "change_availability": _change_availability,
    "send_local_list": _send_local_list,
    "get_local_list_version": _get_local_list_version,
    "reserve_now": _reserve_now,
    "cancel_reservation": _cancel_reservation,
    "update_firmware": _update_firmware,
    "get_diagnostics": _get_diagnostics,
    "set_charging_profile": _set_charging_profile,
    "clear_charging_profile": _clear_charging_profile,
    "get_composite_schedule": _get_composite_schedule,
}


def _integer(command: Command, name: str) -> int:
    """Any integer: connector 0 or 7 is the charge point's to refuse, and the bench shows how."""
    value = command.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BenchError(f"{name} must be an integer, not {value!r}")
    return value
