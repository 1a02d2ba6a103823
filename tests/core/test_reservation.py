"""The reservation rules of OCPP 1.6 section 5.13, as pure functions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from cp_pi.core.reading import ConnectorReading
from cp_pi.core.reservation import Reservation, ReserveAnswer, plan_reservation
from cp_pi.core.status import ConnectorFacts, Status, connector_status

A, P, U, F, C, R = (
    Status.AVAILABLE,
    Status.PREPARING,
    Status.UNAVAILABLE,
    Status.FAULTED,
    Status.CHARGING,
    Status.RESERVED,
)


@pytest.mark.parametrize(
    ("connector_id", "statuses", "expected"),
    [
        (1, {1: A}, (ReserveAnswer.ACCEPTED, 1)),
        (1, {1: P}, (ReserveAnswer.OCCUPIED, None)),
        (1, {1: C}, (ReserveAnswer.OCCUPIED, None)),
        (1, {1: R}, (ReserveAnswer.OCCUPIED, None)),
        (1, {1: F}, (ReserveAnswer.FAULTED, None)),
        (1, {1: U}, (ReserveAnswer.UNAVAILABLE, None)),
        (3, {1: A}, (ReserveAnswer.REJECTED, None)),
        (0, {1: A, 2: A}, (ReserveAnswer.ACCEPTED, 2)),
        (0, {1: A, 2: C}, (ReserveAnswer.ACCEPTED, 1)),
        (0, {1: F, 2: F}, (ReserveAnswer.FAULTED, None)),
        (0, {1: U, 2: U}, (ReserveAnswer.UNAVAILABLE, None)),
        (0, {1: F, 2: U}, (ReserveAnswer.OCCUPIED, None)),
        (0, {1: C, 2: R}, (ReserveAnswer.OCCUPIED, None)),
    ],
)
def test_reserve_now_answers_from_the_connectors_statuses(
    connector_id: int, statuses: dict[int, Status], expected: tuple[ReserveAnswer, int | None]
) -> None:
    plan = plan_reservation(
        connector_id, statuses, charge_point_operative=True, connector_zero_supported=True
    )
    assert plan == expected


def test_connector_0_without_support_is_rejected_and_an_unavailable_charge_point_refuses() -> None:
    assert plan_reservation(
        0, {1: A}, charge_point_operative=True, connector_zero_supported=False
    ) == (ReserveAnswer.REJECTED, None)
    for connector_id in (0, 1):
        assert plan_reservation(
            connector_id, {1: A}, charge_point_operative=False, connector_zero_supported=True
        ) == (ReserveAnswer.UNAVAILABLE, None)


def test_only_the_tag_or_its_group_is_served_whatever_the_case() -> None:
    expiry = datetime(2030, 1, 1, tzinfo=UTC)
    alone = Reservation(1, 1, 1, "Tag-A", expiry)
    family = Reservation(2, 1, 1, "TAG-A", expiry, parent_id_tag="FAMILY")
    assert alone.serves("tag-a", None)
    assert not alone.serves("TAG-B", "FAMILY")
    assert family.serves("TAG-B", "family")
    assert not family.serves("TAG-B", None)
    assert not family.serves("TAG-B", "OTHERS")


def test_a_reserved_connector_is_reserved_until_its_holder_waits_for_the_cable() -> None:
    facts = ConnectorFacts(
        operative=True,
        reading=ConnectorReading.GOOD_CONNECTION,
        cable_present=False,
        transaction_running=False,
        energy_offered=False,
        reserved=True,
    )
    assert connector_status(facts)[0] is Status.RESERVED
    assert connector_status(replace(facts, cable_present=True))[0] is Status.RESERVED
    assert connector_status(replace(facts, awaiting_cable=True))[0] is Status.PREPARING
    assert connector_status(replace(facts, operative=False))[0] is Status.UNAVAILABLE
    tripped = replace(facts, reading=ConnectorReading.RCD_TRIPPED)
    assert connector_status(tripped)[0] is Status.FAULTED
