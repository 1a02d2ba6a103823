"""The digital inputs: live levels through the configured polarity, events on the loop thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from cp_pi.config import CONTACTOR_AUX, LOCK_FEEDBACK, PROXIMITY, ActiveLevel
from cp_pi.core.reading import LockPosition
from cp_pi.hardware.inputs import AuxContact, LockFeedback, ProximitySensor

from .helpers import FIRST


async def test_a_plug_present_before_the_sensor_exists_is_seen(factory: Any) -> None:
    factory.pin(FIRST.proximity).drive_high()

    sensor = ProximitySensor(
        PROXIMITY,
        FIRST.proximity,
        ActiveLevel.HIGH,
        pin_factory=factory,
        loop=asyncio.get_running_loop(),
    )

    assert sensor.cable_present
    sensor.release()


async def test_feedback_and_aux_contact_follow_their_active_level(factory: Any) -> None:
    loop = asyncio.get_running_loop()
    feedback = LockFeedback(
        LOCK_FEEDBACK, FIRST.feedback, ActiveLevel.LOW, pin_factory=factory, loop=loop
    )
    aux = AuxContact(CONTACTOR_AUX, FIRST.aux, ActiveLevel.HIGH, pin_factory=factory, loop=loop)

    def both_pins(high: bool) -> tuple[LockPosition, bool]:
        for pin in (factory.pin(FIRST.feedback), factory.pin(FIRST.aux)):
            if high:
                pin.drive_high()
            else:
                pin.drive_low()
        return feedback.position, aux.closed

    assert both_pins(high=False) == (LockPosition.ENGAGED, False)
    assert both_pins(high=True) == (LockPosition.RELEASED, True)

    feedback.release()
    aux.release()


async def test_a_change_on_the_driver_thread_is_reported_on_the_loop_thread(factory: Any) -> None:
    loop = asyncio.get_running_loop()
    reported: asyncio.Future[int] = loop.create_future()
    sensor = ProximitySensor(
        PROXIMITY, FIRST.proximity, ActiveLevel.HIGH, pin_factory=factory, loop=loop
    )
    sensor.on_change = lambda: reported.set_result(threading.get_ident())
    driver = threading.Thread(target=factory.pin(FIRST.proximity).drive_high)

    driver.start()
    async with asyncio.timeout(1):
        thread = await reported
    driver.join()

    assert thread == threading.get_ident() != driver.ident
    sensor.release()
