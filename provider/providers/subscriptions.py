"""Indication filters, listener destinations and subscriptions (DSP1054 classes in interop).

They are created, enumerated and deleted through the instance operations and kept in one
JSON file in the state folder, rewritten atomically (temporary file, fsync, rename; mode
0600 because a destination may carry a password). Delivering indications to the listeners
is not part of this release: nothing here sends anything.
"""
from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pywbem
from pywbem import CIMDateTime, CIMError, CIMInstance, CIMInstanceName

from provider.providers.base import (ADMIN, NO_HOST_ROLE, AssociationProvider, InstanceFactory,
                                     InstanceProvider, path_key, same_path)

INTEROP = "root/interop"
FILE_NAME = "interop-subscriptions.json"
FORMAT = 1
KINDS = {"filters": "CIM_IndicationFilter",
         "destinations": "CIM_ListenerDestinationCIMXML",
         "subscriptions": "CIM_IndicationSubscription"}
DEFAULT_LIMITS = {"filters": 100, "destinations": 100, "subscriptions": 100}
SECRET_PROPERTIES = ("password",)


def _encode(value):
    if value is None:
        return None
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, CIMInstanceName):
        return value.to_wbem_uri(format="standard")
    if isinstance(value, CIMDateTime):
        return str(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


class SubscriptionStore:
    """The stored DSP1054 instances, keyed by path; every change is written before it is
    acknowledged."""

    def __init__(self, state_dir, schema, clock, host_name: str, limits: dict | None = None):
        self.path = Path(state_dir) / FILE_NAME
        self.schema = schema
        self.clock = clock
        self.host_name = host_name
        self.limits = dict(DEFAULT_LIMITS, **(limits or {}))
        self.factories = {kind: InstanceFactory.for_class(schema, INTEROP, cls)
                          for kind, cls in KINDS.items()}
        self._lock = threading.Lock()
        self._items: dict[str, dict[tuple, CIMInstance]] = {k: {} for k in KINDS}
        self._load()

    # -- persistence -----------------------------------------------------------------------

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            for kind in KINDS:
                for values in data.get(kind, []):
                    inst = self._decode(kind, values)
                    self._items[kind][path_key(inst.path)] = inst
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"{self.path}: cannot read the stored subscriptions: {exc}") \
                from None

    def _decode(self, kind: str, values: dict) -> CIMInstance:
        factory = self.factories[kind]
        typed = {}
        for name, value in values.items():
            decl = factory.declaration(name)
            if decl is None:
                raise ValueError(f"{KINDS[kind]} has no property {name}")
            if value is not None and decl.type == "reference":
                value = CIMInstanceName.from_wbem_uri(value)
            elif value is not None and decl.type == "datetime":
                value = [CIMDateTime(v) for v in value] if decl.is_array else CIMDateTime(value)
            typed[name] = value
        return factory.make(typed)

    def _save_locked(self) -> None:
        data = {"format": FORMAT}
        for kind, items in self._items.items():
            data[kind] = [{p.name: _encode(p.value) for p in inst.properties.values()}
                          for inst in items.values()]
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)         # a stale temp file keeps its mode on O_CREAT
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # -- access ----------------------------------------------------------------------------

    def list(self, kind: str) -> list[CIMInstance]:
        with self._lock:
            return [inst.copy() for inst in self._items[kind].values()]

    def get(self, kind: str, path: CIMInstanceName) -> CIMInstance | None:
        with self._lock:
            inst = self._items[kind].get(path_key(path, INTEROP))
            return inst.copy() if inst is not None else None

    def add(self, kind: str, inst: CIMInstance) -> CIMInstanceName:
        key = path_key(inst.path, INTEROP)
        with self._lock:
            items = self._items[kind]
            if key in items:
                raise CIMError(pywbem.CIM_ERR_ALREADY_EXISTS,
                               f"{inst.path.to_wbem_uri()} already exists")
            if len(items) >= self.limits[kind]:
                raise CIMError(pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED,
                               f"at most {self.limits[kind]} {KINDS[kind]} instances")
            if kind == "subscriptions":
                for role, ref_kind in (("Filter", "filters"), ("Handler", "destinations")):
                    target = inst[role]
                    if path_key(target, INTEROP) not in self._items[ref_kind]:
                        raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                                       f"{role} {target.to_wbem_uri()} does not exist")
            items[key] = inst
            try:
                self._save_locked()
            except OSError as exc:
                del items[key]
                raise CIMError(pywbem.CIM_ERR_FAILED,
                               f"cannot store the subscription data: {exc.strerror}") from None
        return inst.path.copy()

    def remove(self, kind: str, path: CIMInstanceName) -> None:
        key = path_key(path, INTEROP)
        with self._lock:
            items = self._items[kind]
            if key not in items:
                raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"no instance {path.to_wbem_uri()}")
            if kind in ("filters", "destinations"):
                role = "Filter" if kind == "filters" else "Handler"
                for sub in self._items["subscriptions"].values():
                    if path_key(sub[role], INTEROP) == key:
                        raise CIMError(pywbem.CIM_ERR_FAILED,
                                       f"{path.to_wbem_uri()} is used by a subscription; "
                                       f"delete the subscription first")
            removed = items.pop(key)
            try:
                self._save_locked()
            except OSError as exc:
                items[key] = removed
                raise CIMError(pywbem.CIM_ERR_FAILED,
                               f"cannot store the subscription data: {exc.strerror}") from None


def _invalid(message: str) -> CIMError:
    return CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, message)


def _values(inst: CIMInstance) -> dict:
    return {p.name: p.value for p in inst.properties.values() if p.value is not None}


class _StoredProvider(InstanceProvider):
    namespaces = (INTEROP,)
    write_roles = ADMIN
    kind = ""

    def __init__(self, store: SubscriptionStore):
        self.store = store

    def _public(self, inst: CIMInstance) -> CIMInstance:
        for name in SECRET_PROPERTIES:
            if name in inst.properties:
                del inst.properties[name]
        return inst

    def enumerate(self, ctx, classname):
        if ctx.principal.role == NO_HOST_ROLE:
            return   # subscriptions are host-wide: users with guest rights only see none
        for inst in self.store.list(self.kind):
            yield self._public(inst)

    def get(self, ctx, path):
        if ctx.principal.role == NO_HOST_ROLE:
            return None
        inst = self.store.get(self.kind, path)
        return self._public(inst) if inst is not None else None

    def delete(self, ctx, path):
        self.store.remove(self.kind, path)

    def _system_keys(self, values: dict, classname: str) -> dict:
        """Fill the keys the server owns; refuse values that name another system."""
        expected = {"SystemCreationClassName": "CIM_ComputerSystem",
                    "SystemName": self.store.host_name, "CreationClassName": classname}
        lowered = {k.lower(): k for k in values}
        for name, value in expected.items():
            given = values.get(lowered.get(name.lower(), name))
            if given is not None and str(given).lower() != value.lower():
                raise _invalid(f"{name} must be {value!r}, not {given!r}")
            values.pop(lowered.get(name.lower(), name), None)
            values[name] = value
        name_key = lowered.get("name", "Name")
        if not values.get(name_key):
            values.pop(name_key, None)
            values["Name"] = f"HPVM:{self.kind[:-1]}:{uuid.uuid4()}"
        return values


class FilterProvider(_StoredProvider):
    classnames = ("CIM_IndicationFilter",)
    kind = "filters"

    def create(self, ctx, instance):
        from provider.operations.query import parse, language_of
        values = self._system_keys(_values(instance), instance.classname)
        query = values.get("Query")
        if not isinstance(query, str) or not query.strip():
            raise _invalid("Query is required")
        language = language_of(values.get("QueryLanguage"))
        parse(query, language)          # CIM_ERR_INVALID_QUERY when it does not parse
        namespaces = list(values.get("SourceNamespaces") or [])
        if values.get("SourceNamespace"):
            namespaces.append(values["SourceNamespace"])
        for ns in namespaces:
            if not self.store.schema.has_namespace(ns):
                raise _invalid(f"source namespace {ns} does not exist")
        values.setdefault("IndividualSubscriptionSupported", True)
        inst = self.store.factories[self.kind].make(values)
        return self.store.add(self.kind, inst)


class ListenerDestinationProvider(_StoredProvider):
    classnames = ("CIM_ListenerDestinationCIMXML",)
    kind = "destinations"

    def create(self, ctx, instance):
        values = self._system_keys(_values(instance), instance.classname)
        dest = values.get("Destination")
        if not isinstance(dest, str):
            raise _invalid("Destination is required")
        parts = urlsplit(dest)
        if "@" in parts.netloc:
            # credentials in the URL would be shown to every reader of the instance and
            # echoed into errors and the audit log; the password property stays hidden
            raise _invalid("Destination must not carry a user name or password; give them "
                           "in the username and password properties")
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise _invalid(f"Destination {dest!r} must be an http:// or https:// URL")
        try:
            parts.port
        except ValueError:
            raise _invalid(f"Destination {dest!r} has a bad port") from None
        persistence = int(values.setdefault("PersistenceType", 2))
        if persistence not in (1, 2, 3):
            raise _invalid(f"PersistenceType {persistence} is not 1, 2 or 3")
        if persistence == 1 and not values.get("OtherPersistenceType"):
            raise _invalid("PersistenceType 1 (Other) needs OtherPersistenceType")
        protocol = int(values.setdefault("Protocol", 2))
        if protocol != 2:
            raise _invalid(f"Protocol {protocol} is not supported (2, CIM-XML, only)")
        inst = self.store.factories[self.kind].make(values)
        return self.store.add(self.kind, inst)


class SubscriptionProvider(_StoredProvider, AssociationProvider):
    classnames = ("CIM_IndicationSubscription",)
    kind = "subscriptions"

    def references(self, ctx, classname, source, role):
        for inst in self.store.list(self.kind):
            for name in ("Filter", "Handler"):
                if (role is None or role.lower() == name.lower()) \
                        and same_path(inst[name], source, INTEROP):
                    yield inst
                    break

    def create(self, ctx, instance):
        values = _values(instance)
        refs = {}
        for role, classname in (("Filter", "CIM_IndicationFilter"),
                                ("Handler", "CIM_ListenerDestinationCIMXML")):
            value = next((v for k, v in values.items() if k.lower() == role.lower()), None)
            if not isinstance(value, CIMInstanceName):
                raise _invalid(f"{role} must be a reference")
            if value.classname.lower() != classname.lower():
                raise _invalid(f"{role} must refer to a {classname}")
            if value.namespace and value.namespace.strip("/").lower() != INTEROP:
                raise _invalid(f"{role} must be in {INTEROP}")
            path = value.copy()
            path.namespace, path.host = INTEROP, None
            refs[role] = path
        values = {k: v for k, v in values.items() if k.lower() not in ("filter", "handler")}
        values.update(refs)
        now = CIMDateTime.fromtimestamp(self.store.clock.now())
        values.setdefault("SubscriptionState", 2)
        values.setdefault("OnFatalErrorPolicy", 2)
        values.setdefault("RepeatNotificationPolicy", 2)
        values.setdefault("SubscriptionStartTime", now)
        values.setdefault("TimeOfLastStateChange", now)
        inst = self.store.factories[self.kind].make(values)
        return self.store.add(self.kind, inst)
