"""The Authorization Cache (OCPP 1.6 section 3.5.1): the central system's last word on each idTag.

It lets a driver start charging while the link is down (LocalAuthorizeOffline) or without
waiting for an answer (LocalPreAuthorize), so it lives in the store and survives a restart.
Whether to consult it (AuthorizationCacheEnabled) is the caller's decision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cp_pi.store import Store

NAMESPACE = "authorization_cache"


class AuthorizationCache:
    def __init__(self, store: Store) -> None:
        self._store = store

    def update(self, id_tag: str, id_tag_info: Mapping[str, Any]) -> None:
        """Remember ``idTagInfo`` as received (camelCase), whatever its status: a Blocked or
        Invalid answer must be remembered as much as an Accepted one."""
        self._store.put_setting(NAMESPACE, _cache_key(id_tag), json.dumps(dict(id_tag_info)))

    def lookup(self, id_tag: str, *, now: datetime) -> Mapping[str, Any] | None:
        """The cached ``idTagInfo``, or None when there is none or its expiryDate has passed.

        ``now`` must be timezone-aware. An expiryDate that cannot be read counts as passed:
        an entry whose validity is unknown must not let anyone charge.
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        text = self._store.settings(NAMESPACE).get(_cache_key(id_tag))
        if text is None:
            return None
        info: dict[str, Any] = json.loads(text)
        expiry = info.get("expiryDate")
        if expiry is not None:
            expires_at = parse_datetime(expiry)
            if expires_at is None or now > expires_at:
                return None
        return info

    def clear(self) -> None:
        """ClearCache.req: forget every entry."""
        self._store.clear_settings(NAMESPACE)


def _cache_key(id_tag: str) -> str:
    # IdToken is a CiString: "ABC123" and "abc123" are the same card.
    return id_tag.upper()


def parse_datetime(value: object) -> datetime | None:
    """An OCPP dateTime (ISO 8601, normally UTC with ``Z``); a time without zone is taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
