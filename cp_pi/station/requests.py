"""What the central system asks of the charge point: one ``@on`` handler per request.

The OCPP session finds these handlers by their marks and calls each directly with the payload's
fields; the handler returns the ``call_result`` payload, with the status as an ``ocpp.v16.enums``
value. Handlers get the narrow collaborators they need, never the whole charge point. Work that
outlives the answer (a remote start, a reset) runs in the background, and the CALLs it makes wait
in the outbox, held until the CALLRESULT is out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ocpp.exceptions import OccurenceConstraintViolationError
from ocpp.v16 import call_result
from ocpp.v16.enums import (
    Action,
    AvailabilityStatus,
    AvailabilityType,
    ClearCacheStatus,
    ConfigurationStatus,
    DataTransferStatus,
    MessageTrigger,
    Reason,
    RemoteStartStopStatus,
    ResetStatus,
    ResetType,
    TriggerMessageStatus,
    UnlockStatus,
)
from ocpp.v16.enums import ConfigurationKey as K

from cp_pi.core.reading import ConnectorReading
from cp_pi.core.routing import on
from cp_pi.core.unlock import UnlockStatus as UnlockDecision
from cp_pi.core.unlock import plan_unlock, unlock_status
from cp_pi.station.auth_cache import AuthorizationCache
from cp_pi.station.configuration import ConfigurationKeys
from cp_pi.station.connector import Connector
from cp_pi.station.metering import Metering
from cp_pi.station.outbox import CallError, Outbox
from cp_pi.station.smart_charging import SmartCharging
from cp_pi.station.transactions import Spawn, Transactions, durably
from cp_pi.store import Store

log = logging.getLogger("cp_pi.charge_point")

#: UnlockConnector is answered within this many seconds whatever the hardware does.
UNLOCK_ANSWER_WITHIN = 9.5


class Availability:
    """Whether the charge point as a whole (connector 0) is operative: read by remote starts and
    the status of connector 0, changed by ChangeAvailability."""

    def __init__(self, operative: bool) -> None:
        self.operative = operative


class CsmsRequests:
    def __init__(
        self,
        *,
        connectors: Mapping[int, Connector],
        availability: Availability,
        configuration: ConfigurationKeys,
        authorization_cache: AuthorizationCache,
        outbox: Outbox,
        store: Store,
        transactions: Transactions,
        metering: Metering,
        boot_info: dict[str, str],
        send_status: Callable[[int], None],
        refresh: Callable[[], None],
        reboot: Callable[[], None],
        spawn: Spawn,
        smart_charging: SmartCharging,
    ) -> None:
        self._smart_charging = smart_charging
        self._connectors = connectors
        self._availability = availability
        self._configuration = configuration
        self._authorization_cache = authorization_cache
        self._outbox = outbox
        self._store = store
        self._transactions = transactions
        self._metering = metering
        self._boot_info = boot_info
        self._send_status = send_status
        self._refresh = refresh
        self._reboot = reboot
        self._spawn = spawn
        #: TriggerMessage for messages other parts send (FirmwareStatusNotification...).
        self.triggers: dict[MessageTrigger, Callable[[], None]] = {}

    # -- UnlockConnector -----------------------------------------------------------------------

    @on(Action.unlock_connector)
    async def unlock_connector(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        return call_result.UnlockConnector(status=await self.unlock(connector_id))

    async def unlock(self, connector_id: int) -> UnlockStatus:
        """OCPP 1.6 UnlockConnector; see :mod:`cp_pi.core.unlock` for the decision."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + UNLOCK_ANSWER_WITHIN
        connector = self._connectors.get(connector_id)
        plan = plan_unlock(
            connector_exists=connector is not None,
            has_lock=connector is not None and connector.hardware.has_lock,
            reading=(
                connector.hardware.reading()
                if connector is not None
                else ConnectorReading.GOOD_CONNECTION
            ),
            transaction_running=connector is not None and connector.transaction is not None,
        )
        if connector is None or plan.answer is UnlockDecision.NOT_SUPPORTED:
            log.info("UnlockConnector %d: NotSupported", connector_id)
            return UnlockStatus.not_supported
        try:
            async with asyncio.timeout_at(deadline):
                await connector.busy.acquire()
        except TimeoutError:
            log.error("UnlockConnector %d: connector busy past the deadline", connector_id)
            return UnlockStatus.unlock_failed
        try:
            contactor_open = True
            if plan.stop_transaction and connector.transaction is not None:
                contactor_open = await self._transactions.finish_locked(
                    connector, Reason.unlock_command
                )
            result = None
            if plan.drive_lock and contactor_open:
                try:
                    async with asyncio.timeout_at(deadline):
                        result = await connector.hardware.unlock()
                except TimeoutError:
                    log.error("UnlockConnector %d: lock did not answer in time", connector_id)
            decision = plan.answer or unlock_status(contactor_open=contactor_open, result=result)
        finally:
            connector.busy.release()
        log.info("UnlockConnector %d: %s", connector_id, decision.value)
        self._refresh()
        return UnlockStatus(decision.value)

    # -- transactions --------------------------------------------------------------------------

    @on(Action.remote_start_transaction)
    def remote_start(
        self,
        id_tag: str,
        connector_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.RemoteStartTransaction:
        connector = self._connector_for_remote_start(connector_id, id_tag)
        if connector is None:
            return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.rejected)
        if charging_profile is not None and not self._smart_charging.accept_remote_start_profile(
            connector, id_tag, charging_profile
        ):
            return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.rejected)
        check = self._configuration.get_bool(K.authorize_remote_tx_requests)
        self._spawn(self._transactions.authorize_and_start(connector, id_tag, check=check))
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)

    def _connector_for_remote_start(
        self, connector_id: int | None, id_tag: str
    ) -> Connector | None:
        connectors = self._connectors
        if connector_id is not None:
            candidates = [connectors[connector_id]] if connector_id in connectors else []
        else:  # the first free connector, preferring one with a cable in
            candidates = sorted(connectors.values(), key=lambda c: not c.hardware.cable_present)
        for connector in candidates:
            if connector.may_start(
                charge_point_operative=self._availability.operative
            ) and not self._transactions.reservation_refuses(connector, id_tag):
                return connector
        return None

    @on(Action.remote_stop_transaction)
    def remote_stop(self, transaction_id: int, **_: Any) -> call_result.RemoteStopTransaction:
        for connector in self._connectors.values():
            tx = connector.transaction
            if tx is not None and tx.transaction_id == transaction_id:
                self._spawn(self._transactions.stop(connector, Reason.remote))
                return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.accepted)
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.rejected)

    # -- availability and reset ----------------------------------------------------------------

    @on(Action.change_availability)
    def change_availability(
        self, connector_id: int, type: str, **_: Any
    ) -> call_result.ChangeAvailability:
        return call_result.ChangeAvailability(
            status=self._change_availability(connector_id, AvailabilityType(type))
        )

    def _change_availability(self, connector_id: int, kind: AvailabilityType) -> AvailabilityStatus:
        operative = kind is AvailabilityType.operative
        if connector_id == 0:
            targets = list(self._connectors.values())
            self._availability.operative = operative
        elif connector_id in self._connectors:
            targets = [self._connectors[connector_id]]
        else:
            return AvailabilityStatus.rejected
        keys = [str(connector_id)] + ([str(c.id) for c in targets] if connector_id == 0 else [])

        def persist() -> None:
            for key in keys:
                self._store.put_setting("availability", key, kind.value)

        durably(self._store, persist)
        scheduled = False
        for connector in targets:
            if connector.transaction is not None and connector.operative != operative:
                connector.scheduled_operative = operative
                scheduled = True
            else:
                connector.operative = operative
        self._refresh()
        return AvailabilityStatus.scheduled if scheduled else AvailabilityStatus.accepted

    @on(Action.reset)
    def reset(self, type: str, **_: Any) -> call_result.Reset:
        reason = Reason.hard_reset if ResetType(type) is ResetType.hard else Reason.soft_reset
        self._spawn(self._reset(reason))
        return call_result.Reset(status=ResetStatus.accepted)

    async def _reset(self, reason: Reason) -> None:
        log.warning("%s requested: ending transactions and booting again", reason)
        await asyncio.gather(
            *(
                self._transactions.stop(connector, reason)
                for connector in self._connectors.values()
                if connector.transaction is not None
            )
        )
        try:
            async with asyncio.timeout(30):
                await self._outbox.drained()
        except TimeoutError:
            log.warning("reset: transaction messages still queued; they are kept")
        self._reboot()

    # -- configuration and the authorization cache ---------------------------------------------

    @on(Action.change_configuration)
    def change_configuration(
        self, key: str, value: str, **_: Any
    ) -> call_result.ChangeConfiguration:
        status = ConfigurationStatus(self._configuration.change(key, value).value)
        return call_result.ChangeConfiguration(status=status)

    @on(Action.get_configuration)
    def get_configuration(
        self, key: list[str] | None = None, **_: Any
    ) -> call_result.GetConfiguration:
        # OCPP 1.6 (5.8) lets the charge point limit the keys of one request to
        # GetConfigurationMaxKeys; a list beyond it breaks an occurrence constraint, and
        # answering only some of the keys asked for would hide the others without a word.
        limit = self._configuration.get_int(K.get_configuration_max_keys)
        if key is not None and len(key) > limit:
            raise OccurenceConstraintViolationError(
                description=f"{len(key)} keys asked; GetConfigurationMaxKeys is {limit}"
            )
        known, unknown = self._configuration.get(key)
        return call_result.GetConfiguration(
            configuration_key=[
                {"key": k.key, "readonly": k.readonly, "value": k.value} for k in known
            ]
            or None,
            unknown_key=unknown or None,
        )

    @on(Action.clear_cache)
    def clear_cache(self, **_: Any) -> call_result.ClearCache:
        self._authorization_cache.clear()
        return call_result.ClearCache(status=ClearCacheStatus.accepted)

    @on(Action.data_transfer)
    def data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)

    # -- TriggerMessage ------------------------------------------------------------------------

    @on(Action.trigger_message)
    def trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        return call_result.TriggerMessage(
            status=self._trigger(MessageTrigger(requested_message), connector_id)
        )

    def _trigger(self, requested: MessageTrigger, connector_id: int | None) -> TriggerMessageStatus:
        connectors = self._connectors
        if connector_id is not None and connector_id not in connectors and connector_id != 0:
            return TriggerMessageStatus.rejected
        if requested is MessageTrigger.boot_notification:
            self._spawn(self._send_boot_again())
        elif requested is MessageTrigger.heartbeat:
            self._outbox.send("Heartbeat", {})
        elif requested is MessageTrigger.status_notification:
            ids = [connector_id] if connector_id is not None else [0, *connectors]
            for cid in ids:
                self._send_status(cid)
        elif requested is MessageTrigger.meter_values:
            ids = [connector_id] if connector_id else list(connectors)
            for cid in ids:
                self._metering.trigger(connectors[cid])
        elif requested in self.triggers:
            self.triggers[requested]()
        else:
            return TriggerMessageStatus.not_implemented
        return TriggerMessageStatus.accepted

    async def _send_boot_again(self) -> None:
        try:
            result = await self._outbox.send("BootNotification", self._boot_info)
        except (ConnectionError, TimeoutError, CallError) as error:
            log.warning("triggered BootNotification failed: %s", error)
            return
        if result.get("status") == "Accepted":
            self._configuration.change(K.heartbeat_interval, str(result["interval"]))
