"""Meter values: sampled during a transaction, read at clock-aligned instants, triggered, and
kept for StopTransaction (OCPP 1.6 section 3.16).

Every reading carries each measurand its configuration key lists, and the keys accept only what
the meters measure, so what is configured is what is sent. Readings that belong to a transaction
are transaction messages (stored until the central system answered); the others are sent when the
link is up and dropped when it is not.

Clock-aligned readings are scheduled: the next aligned instant is computed and slept to, and a
change of ClockAlignedDataInterval reschedules at once. Each connector has its own meter and there
is no main meter, so no clock-aligned values are sent for connector 0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from ocpp.v16.enums import ConfigurationKey as K

from cp_pi.core.metering import (
    ENERGY_REGISTER,
    next_aligned_instant,
    seconds_until,
    timestamp,
)
from cp_pi.core.outbox import PROVISIONAL_TRANSACTION_ID
from cp_pi.station.configuration import ConfigurationKeys
from cp_pi.station.connector import Connector, Transaction
from cp_pi.station.outbox import Outbox
from cp_pi.store import Store
from cp_pi.tasks import cancel_and_wait

log = logging.getLogger("cp_pi.metering")

ALIGNED_INTERVAL = K.clock_aligned_data_interval


class Metering:
    def __init__(
        self,
        *,
        store: Store,
        outbox: Outbox,
        configuration: ConfigurationKeys,
        connectors: dict[int, Connector],
        refresh: Callable[[], None],
        now: Callable[[], datetime],
    ) -> None:
        """``now``: the charge point's clock, the one every timestamp it sends comes from."""
        self._store = store
        self._outbox = outbox
        self._configuration = configuration
        self._connectors = connectors
        self._refresh = refresh
        self._now = now
        self._aligned: asyncio.Task[None] | None = None
        configuration.subscribe(self._on_configuration)

    # -- what is read --------------------------------------------------------------------------

    def _listed(self, key: str) -> list[str]:
        """The measurands a key lists; an empty MeterValues list means the energy register (the
        compliance tests assume it)."""
        measurands = self._configuration.get_list(key)
        if not measurands and key in (K.meter_values_sampled_data, K.meter_values_aligned_data):
            return [ENERGY_REGISTER]
        return measurands

    def meter_value(
        self, connector: Connector, measurands: Iterable[str], context: str, at: str | None = None
    ) -> dict[str, Any]:
        """One MeterValue: a reading of each measurand, with one timestamp."""
        readings = connector.read(measurands)
        return {
            "timestamp": at or timestamp(self._now()),
            "sampledValue": [reading.sampled_value(context) for reading in readings],
        }

    @staticmethod
    def payload(
        connector: Connector, tx: Transaction | None, meter_value: dict[str, Any]
    ) -> dict[str, Any]:
        """A MeterValues payload; one of a transaction names it (a provisional id until the
        central system gave one, replaced in the queue when it does)."""
        payload: dict[str, Any] = {"connectorId": connector.id, "meterValue": [meter_value]}
        if tx is not None:
            payload["transactionId"] = (
                tx.transaction_id if tx.transaction_id is not None else PROVISIONAL_TRANSACTION_ID
            )
        return payload

    def _send(self, connector: Connector, meter_value: dict[str, Any]) -> None:
        tx = connector.transaction
        payload = self.payload(connector, tx, meter_value)
        if tx is None:
            self._outbox.send("MeterValues", payload)
        else:
            self._outbox.send_transaction_message("MeterValues", payload, transaction_ref=tx.ref)

    # -- triggered -----------------------------------------------------------------------------

    def trigger(self, connector: Connector) -> None:
        """TriggerMessage(MeterValues): the MeterValuesSampledData measurands, now."""
        measurands = self._listed(K.meter_values_sampled_data)
        tx = connector.transaction
        # Volatile, so never patched later: without the central system's id, none.
        known = tx if tx is not None and tx.transaction_id is not None else None
        payload = self.payload(connector, known, self.meter_value(connector, measurands, "Trigger"))
        self._outbox.send("MeterValues", payload)

    # -- during a transaction ------------------------------------------------------------------

    async def follow(self, connector: Connector, tx: Transaction) -> None:
        """From the start of a transaction: its Transaction.Begin values, then a sample every
        MeterValueSampleInterval (MeterValuesSampledData sent, StopTxnSampledData kept)."""
        stop_measurands = self._stop_measurands()
        if stop_measurands:
            tx.data.begin = self.meter_value(connector, stop_measurands, "Transaction.Begin")
        while True:
            interval = self._configuration.get_int(K.meter_value_sample_interval)
            if interval <= 0:
                return
            await asyncio.sleep(interval)
            self._store.update_transaction_meter(tx.ref, connector.meter.read_wh())
            meter_value = self.meter_value(
                connector, self._listed(K.meter_values_sampled_data), "Sample.Periodic"
            )
            self._outbox.send_transaction_message(
                "MeterValues", self.payload(connector, tx, meter_value), transaction_ref=tx.ref
            )
            kept = self._configuration.get_list(K.stop_txn_sampled_data)
            if kept:
                tx.data.add(self.meter_value(connector, kept, "Sample.Periodic"))
            self._refresh()  # the meter reading and the queue changed: tell the listeners

    def transaction_data(self, connector: Connector, tx: Transaction) -> list[dict[str, Any]]:
        """StopTransaction's transactionData: nothing when both StopTxn lists are empty (3.16.5)."""
        stop_measurands = self._stop_measurands()
        if not stop_measurands:
            return []
        return tx.data.with_end(self.meter_value(connector, stop_measurands, "Transaction.End"))

    def _stop_measurands(self) -> list[str]:
        listed = [
            *self._configuration.get_list(K.stop_txn_sampled_data),
            *self._configuration.get_list(K.stop_txn_aligned_data),
        ]
        return list(dict.fromkeys(listed))

    # -- clock-aligned -------------------------------------------------------------------------

    def start(self) -> None:
        """Begin the clock-aligned readings (if ClockAlignedDataInterval asks for them)."""
        if self._configuration.get_int(ALIGNED_INTERVAL) > 0:
            self._aligned = asyncio.create_task(self._clock_aligned(), name="clock-aligned")

    async def close(self) -> None:
        if self._aligned is not None:
            await cancel_and_wait([self._aligned])
            self._aligned = None

    def _on_configuration(self, key: str, _value: str) -> None:
        """A new interval counts from the next instant it aligns to, not after the old one."""
        if key == ALIGNED_INTERVAL:
            if self._aligned is not None:
                self._aligned.cancel()
                self._aligned = None
            self.start()

    async def _clock_aligned(self) -> None:
        interval = self._configuration.get_int(ALIGNED_INTERVAL)
        instant = next_aligned_instant(self._now(), interval)
        while True:
            await asyncio.sleep(seconds_until(instant, self._now()))
            now = self._now()
            if now < instant:
                continue  # the loop's timer ran ahead of the wall clock: never read early
            self._read_aligned(timestamp(instant))
            instant = next_aligned_instant(now, interval)

    def _read_aligned(self, at: str) -> None:
        measurands = self._listed(K.meter_values_aligned_data)
        kept = self._configuration.get_list(K.stop_txn_aligned_data)
        for connector in self._connectors.values():
            tx = connector.transaction
            self._send(connector, self.meter_value(connector, measurands, "Sample.Clock", at))
            if tx is not None:
                self._store.update_transaction_meter(tx.ref, connector.meter.read_wh())
                if kept:
                    tx.data.add(self.meter_value(connector, kept, "Sample.Clock", at))
