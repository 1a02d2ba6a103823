"""The contactor and its aux contact: confirmation awaited on events, welds reported."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from cp_pi.core.reading import ConnectorReading, ContactorOutcome
from cp_pi.hardware import safety
from cp_pi.hardware.contactor import Contactor
from cp_pi.hardware.parts import build_contactor
from cp_pi.hardware.rig import BenchRig, RigFault

from .helpers import CONFIRM_TIMEOUT, FIRST, RIG, connector

ContactorMaker = Callable[..., Contactor]


@pytest.fixture
async def make_contactor(factory: Any) -> AsyncIterator[ContactorMaker]:
    """Connector 1's contactor inside the rig; with ``rig=False`` its aux contact stays open."""
    built: list[Contactor] = []
    rigs: list[BenchRig] = []

    def make(
        *, rig: bool = True, aux: bool = True, fault: RigFault = RigFault.NONE, **changes: Any
    ) -> Contactor:
        config = connector(aux=aux)
        loop = asyncio.get_running_loop()
        if rig:
            rigs.append(BenchRig(factory, [config], RIG, loop=loop))
            rigs[-1].set_fault(1, fault)
        else:
            factory.pin(FIRST.aux).drive_high()  # the aux contact is active low
        config = config.model_copy(
            update={"contactor": config.contactor.model_copy(update=changes)}
        )
        contactor = build_contactor(1, config, pin_factory=factory, loop=loop)
        built.append(contactor)
        return contactor

    yield make
    for contactor in built:
        contactor.release()
    for rig in rigs:
        rig.close()


async def test_closing_is_confirmed_by_the_aux_contact(make_contactor: ContactorMaker) -> None:
    contactor = make_contactor()

    assert (await contactor.close()).ok

    assert contactor.commanded_closed
    assert contactor.feedback_closed
    assert not contactor.settling


async def test_opening_is_confirmed_by_the_aux_contact(make_contactor: ContactorMaker) -> None:
    contactor = make_contactor()
    await contactor.close()

    assert (await contactor.open()).ok

    assert not contactor.commanded_closed
    assert contactor.feedback_closed is False


async def test_without_an_aux_contact_the_command_is_all_there_is(
    make_contactor: ContactorMaker, factory: Any
) -> None:
    contactor = make_contactor(aux=False)

    assert (await contactor.close()).ok
    assert factory.pin(FIRST.contactor).state
    assert contactor.feedback_closed is None


async def test_an_aux_contact_that_never_closes_is_not_confirmed(
    make_contactor: ContactorMaker, factory: Any
) -> None:
    contactor = make_contactor(rig=False)

    assert not (await contactor.close()).ok

    assert contactor.commanded_closed, "left commanded so the reading names the fault"
    assert not contactor.settling


async def test_a_welded_contactor_does_not_confirm_opening(
    make_contactor: ContactorMaker, factory: Any
) -> None:
    contactor = make_contactor(fault=RigFault.CONTACTOR_WELDED)
    assert (await contactor.close()).ok

    assert not (await contactor.open()).ok

    assert not factory.pin(FIRST.contactor).state, "the output dropped at once all the same"
    assert contactor.feedback_closed
    assert not contactor.settling


async def test_opening_overrides_a_close_still_waiting_for_its_aux_contact(
    make_contactor: ContactorMaker,
) -> None:
    contactor = make_contactor(rig=False, confirm_timeout=5)
    closing = asyncio.create_task(contactor.close())
    await asyncio.sleep(0)  # the close is now waiting for an aux contact that never moves

    assert (await contactor.open()).ok

    async with asyncio.timeout(1):  # well inside the 5 s confirmation timeout
        assert not (await closing).ok
    assert not contactor.commanded_closed
    assert not contactor.settling


async def test_two_openings_at_once_are_both_confirmed(make_contactor: ContactorMaker) -> None:
    """A safety switch-off and a stop may open the contactor together: neither cries weld."""
    contactor = make_contactor()
    await contactor.close()

    first, second = await asyncio.gather(contactor.open(), contactor.open())

    assert (first.ok, second.ok) == (True, True)
    assert not contactor.settling


async def test_the_safety_nets_switch_off_gives_the_aux_contact_its_settling_window(
    make_contactor: ContactorMaker, factory: Any
) -> None:
    contactor = make_contactor()
    assert (await contactor.close()).ok

    safety.all_outputs_off()  # what SIGTERM does, behind every command's back

    assert not factory.pin(FIRST.contactor).state
    assert not contactor.commanded_closed
    assert contactor.settling, "the aux contact has not had its time to follow yet"
    async with asyncio.timeout(CONFIRM_TIMEOUT / 2):  # it follows: confirmed, no weld
        assert (await contactor.open()).ok
    assert not contactor.settling


async def test_a_weld_found_by_the_safety_nets_switch_off_is_a_weld_once_settled(
    make_contactor: ContactorMaker,
) -> None:
    contactor = make_contactor(fault=RigFault.CONTACTOR_WELDED)
    assert (await contactor.close()).ok

    safety.all_outputs_off()

    assert contactor.settling
    assert not (await contactor.open()).ok  # waited for the aux contact: it stayed closed
    assert contactor.feedback_closed
    assert not contactor.settling, "the reading now names the weld"


async def test_a_contactor_result_names_its_fault_like_a_lock_result(
    make_contactor: ContactorMaker,
) -> None:
    welded = make_contactor(fault=RigFault.CONTACTOR_WELDED)
    assert (await welded.close()).outcome is ContactorOutcome.CLOSED

    result = await welded.open()

    assert (result.ok, result.outcome, result.fault) == (
        False,
        ContactorOutcome.FAILED,
        ConnectorReading.CONTACTOR_WELDED,
    )
