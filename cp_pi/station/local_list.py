"""The Local Authorization List (OCPP 1.6 sections 3.5.3, 5.10 and 5.15): the central system's
own list of cards, kept by the charge point so that its users charge while the link is down.

Unlike the authorization cache it is written only by SendLocalList, never by an answer to
Authorize or StartTransaction, and ClearCache leaves it alone. It lives in the store, one row
per idTag, and each update is one store transaction with the new version: a list is either the
old one or the new one, never half of each. Nothing is loaded into memory: a look-up is one
primary-key read, so a list of LocalAuthListMaxLength entries costs nothing at start.

Updates are bounded by SendLocalListMaxLength entries, which keeps each one (the schema check
of the request, then the write) within a few tens of milliseconds of the event loop; a central
system fills a long list with a Full update and Differential ones after it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ocpp.exceptions import OccurenceConstraintViolationError
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, UpdateStatus, UpdateType
from ocpp.v16.enums import ConfigurationKey as K

from cp_pi.core.routing import on
from cp_pi.station.auth_cache import parse_datetime
from cp_pi.station.configuration import ConfigurationKeys
from cp_pi.store import Store, StoreError

log = logging.getLogger("cp_pi.charge_point")

NAMESPACE = "local_auth_list"


class LocalAuthList:
    def __init__(self, store: Store, configuration: ConfigurationKeys) -> None:
        self._store = store
        self._configuration = configuration
        self._version = int(store.settings(NAMESPACE).get("version", "0"))
        self._size = store.local_list_size()

    @property
    def enabled(self) -> bool:
        return self._configuration.get_bool(K.local_auth_list_enabled)

    @property
    def size(self) -> int:
        return self._size

    def version(self) -> int:
        """GetLocalListVersion: -1 while the list is disabled, 0 while it is empty (5.10)."""
        if not self.enabled:
            return -1
        return self._version if self._size else 0

    def lookup(self, id_tag: str, *, now: datetime) -> Mapping[str, Any] | None:
        """The entry's idTagInfo (camelCase), or None when the tag is not listed (or the list is
        disabled). An entry past its expiryDate says Expired: the list still has the last word
        on that tag, and it is not Accepted."""
        if not self.enabled:
            return None
        text = self._store.local_list_entry(id_tag.upper())
        if text is None:
            return None
        info: dict[str, Any] = json.loads(text)
        expiry = info.get("expiryDate")
        if expiry is not None:
            expires_at = parse_datetime(expiry)
            if expires_at is None or now > expires_at:
                info["status"] = "Expired"
        return info

    def update(
        self, version: int, update_type: UpdateType, entries: list[dict[str, Any]]
    ) -> UpdateStatus:
        """SendLocalList: ``entries`` as received (snake_case), each an idTag and, to add or
        change it, its idTagInfo; a Differential entry without one removes the tag."""
        if not self.enabled:
            return UpdateStatus.not_supported
        full = update_type is UpdateType.full
        if not full and version <= self._version:
            log.info(
                "SendLocalList %d: VersionMismatch (the list is at %d)", version, self._version
            )
            return UpdateStatus.version_mismatch
        upserts: dict[str, str] = {}
        removals: set[str] = set()
        for entry in entries:
            key = str(entry["id_tag"]).upper()
            info = entry.get("id_tag_info")
            if info is None:
                if full:
                    raise OccurenceConstraintViolationError(
                        description=f"idTagInfo is required in a Full update ({entry['id_tag']})"
                    )
                removals.add(key)
                upserts.pop(key, None)
            else:
                upserts[key] = json.dumps(_camel_info(info))
                removals.discard(key)
        size = len(upserts) if full else self._size_after(upserts, removals)
        limit = self._configuration.get_int(K.local_auth_list_max_length)
        if size > limit:
            log.warning(
                "SendLocalList %d: Failed: %d entries, LocalAuthListMaxLength is %d",
                version,
                size,
                limit,
            )
            return UpdateStatus.failed
        try:
            with self._store.atomic():
                self._store.update_local_list(
                    full=full, upserts=list(upserts.items()), removals=sorted(removals)
                )
                self._store.put_setting(NAMESPACE, "version", str(version))
        except StoreError as error:
            log.error(
                "SendLocalList %d: Failed: %s; the list stays at %d", version, error, self._version
            )
            return UpdateStatus.failed
        self._version, self._size = version, size
        log.info("local authorization list %d: %d entries (%s)", version, size, update_type)
        return UpdateStatus.accepted

    def _size_after(self, upserts: Mapping[str, str], removals: set[str]) -> int:
        listed = self._store.local_list_entry
        added = sum(1 for key in upserts if listed(key) is None)
        removed = sum(1 for key in removals if listed(key) is not None)
        return self._size + added - removed


def _camel_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """idTagInfo as it travels (and as the authorization cache keeps it)."""
    names = {"status": "status", "expiry_date": "expiryDate", "parent_id_tag": "parentIdTag"}
    return {names[k]: v for k, v in info.items() if k in names and v is not None}


class LocalListRequests:
    """The Local Auth List Management profile's requests."""

    def __init__(
        self,
        local_list: LocalAuthList,
        configuration: ConfigurationKeys,
        changed: Callable[[], None],
    ) -> None:
        self._list = local_list
        self._configuration = configuration
        self._changed = changed

    @on(Action.send_local_list)
    def send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> call_result.SendLocalList:
        entries = local_authorization_list or []
        limit = self._configuration.get_int(K.send_local_list_max_length)
        if len(entries) > limit:
            # As GetConfigurationMaxKeys: a request beyond the announced limit breaks an
            # occurrence constraint; taking part of it would hide the rest without a word.
            raise OccurenceConstraintViolationError(
                description=f"{len(entries)} entries; SendLocalListMaxLength is {limit}"
            )
        status = self._list.update(list_version, UpdateType(update_type), entries)
        self._changed()
        return call_result.SendLocalList(status=status)

    @on(Action.get_local_list_version)
    def get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(list_version=self._list.version())
