"""The table of providers: which provider serves which class in which namespace."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from agent.clock import Clock
from provider.providers.base import AssociationProvider, InstanceProvider


class ProviderRegistry:
    """Collects the providers of every class family, checked against the schema.

    One provider per (namespace, class). A class is served only by the provider registered
    for it exactly; instances of subclasses come from their own providers. Registration
    happens at start, before the Dispatcher serves requests; lookups are read-only after.
    """

    def __init__(self, schema):
        self.schema = schema
        self._lock = threading.Lock()
        # namespace (lower) -> class (lower) -> provider
        self._by_ns: dict[str, dict[str, InstanceProvider]] = {}
        self._assoc: dict[str, set[str]] = {}
        self._served_cache: dict[tuple, tuple[str, ...]] = {}

    def register(self, provider: InstanceProvider) -> None:
        if not provider.namespaces or not provider.classnames:
            raise ValueError(f"{type(provider).__name__} names no namespace or class")
        with self._lock:
            for ns in provider.namespaces:
                if not self.schema.has_namespace(ns):
                    raise ValueError(f"{type(provider).__name__}: no namespace {ns} in the schema")
                table = self._by_ns.setdefault(ns.lower(), {})
                for name in provider.classnames:
                    cls = self._class_or_none(ns, name)
                    if cls is None:
                        raise ValueError(f"{type(provider).__name__}: no class {name} in {ns}")
                    is_assoc = _is_association(cls)
                    if is_assoc and not isinstance(provider, AssociationProvider):
                        raise ValueError(f"{name} is an association: serve it with an "
                                         f"AssociationProvider")
                    if name.lower() in table:
                        raise ValueError(f"{name} in {ns} already served by "
                                         f"{type(table[name.lower()]).__name__}")
                    table[name.lower()] = provider
                    if is_assoc:
                        self._assoc.setdefault(ns.lower(), set()).add(cls.classname)
            self._served_cache.clear()

    def _class_or_none(self, ns: str, name: str):
        import pywbem
        try:
            return self.schema.get_class(ns, name)
        except pywbem.CIMError:
            return None

    def provider_for(self, namespace: str, classname: str) -> InstanceProvider | None:
        return self._by_ns.get(namespace.lower(), {}).get(classname.lower())

    def served(self, namespace: str, base: str | None = None) -> tuple[str, ...]:
        """The served classes in `namespace` that are `base` or its subclasses (all served
        classes when `base` is None), in the schema's spelling, sorted."""
        key = (namespace.lower(), (base or "").lower())
        hit = self._served_cache.get(key)
        if hit is not None:
            return hit
        table = self._by_ns.get(namespace.lower(), {})
        names = []
        for low in table:
            cls = self.schema.get_class(namespace, low)
            if base is None or is_a(self.schema, namespace, cls.classname, base):
                names.append(cls.classname)
        result = tuple(sorted(names, key=str.lower))
        self._served_cache[key] = result
        return result

    def association_classes(self, namespace: str) -> tuple[str, ...]:
        return tuple(sorted(self._assoc.get(namespace.lower(), ()), key=str.lower))

    def providers(self) -> Iterator[InstanceProvider]:
        seen = set()
        for table in self._by_ns.values():
            for prov in table.values():
                if id(prov) not in seen:
                    seen.add(id(prov))
                    yield prov


def is_a(schema, namespace: str, name: str, base: str) -> bool:
    """`name` is `base` or one of its subclasses."""
    return name.lower() == base.lower() or bool(schema.is_subclass(namespace, name, base))


def _is_association(cls) -> bool:
    qual = cls.qualifiers.get("Association")
    return bool(qual is not None and qual.value)


@dataclass
class ProviderEnvironment:
    """What every family's ``install(registry, env)`` gets: the shared services."""

    schema: Any
    host_name: str
    clock: Clock
    state_dir: Path
    profiles: Any = None            # provider.providers.profiles.ProfileRegistry
    agent: Any = None               # the agent API (issue 4's families read through it)
    version: str = ""
    options: dict = field(default_factory=dict)
