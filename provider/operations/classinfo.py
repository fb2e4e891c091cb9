"""Per-class facts the operations need on every request, computed once per schema class.

The schema's classes are shared and never modified after load (provider/schema.py), so what
is derived from them -- declared property names, key names, the property set a request's
shape keeps -- is computed on first use and reused. Asking a pywbem class for these each time
costs a case-folding NocaseDict lookup per property and per qualifier, which showed as tens of
microseconds per instance on large enumerations.

Keys of the sets are case-folded the way pywbem's NocaseDict folds them (``str.casefold``), so
they compare directly with the keys of a NocaseDict's internal table (see `nocase_keys`).
"""
from __future__ import annotations

import threading

import pywbem

_MAX_CLASSES = 4096        # schema classes are few; this only bounds misuse with temporaries
_MAX_SHAPES = 64           # distinct (requested class, property list, deep) per class


def _fold(name: str) -> str:
    return name.casefold()


class ClassInfo:
    """What the operations read from one resolved class, precomputed."""

    __slots__ = ("cim_class", "declared", "key_names", "keys_lower", "_kept", "_lock")

    def __init__(self, cim_class: pywbem.CIMClass):
        self.cim_class = cim_class
        props = cim_class.properties
        self.declared = frozenset(_fold(n) for n in props)
        self.key_names = tuple(p.name for p in props.values()
                               if p.qualifiers.get("Key") is not None
                               and p.qualifiers["Key"].value)
        self.keys_lower = frozenset(k.lower() for k in self.key_names)
        self._kept: dict = {}
        self._lock = threading.Lock()

    def kept(self, requested: pywbem.CIMClass | None, property_list, deep: bool) -> frozenset:
        """Case-folded names of this class's properties that survive a shape: declared here,
        named in `property_list` (lower-case names, None = all), and declared by `requested`
        too when `deep` is false."""
        narrow = (not deep) and requested is not None
        key = (id(requested) if narrow else None, property_list)
        hit = self._kept.get(key)
        if hit is not None and (not narrow or hit[0] is requested):
            return hit[1]
        props = self.cim_class.properties
        names = []
        for decl in props.values():
            name = decl.name
            if property_list is not None and name.lower() not in property_list:
                continue
            if narrow and name not in requested.properties:
                continue
            names.append(_fold(name))
        kept = frozenset(names)
        with self._lock:
            if len(self._kept) >= _MAX_SHAPES:
                self._kept.clear()
            self._kept[key] = (requested if narrow else None, kept)
        return kept


_INFOS: dict[int, ClassInfo] = {}
_INFOS_LOCK = threading.Lock()


def class_info(cim_class: pywbem.CIMClass) -> ClassInfo:
    """The ClassInfo of a (shared, unmodified) schema class."""
    info = _INFOS.get(id(cim_class))
    if info is not None and info.cim_class is cim_class:
        return info
    info = ClassInfo(cim_class)
    with _INFOS_LOCK:
        if len(_INFOS) >= _MAX_CLASSES:
            _INFOS.clear()
        _INFOS[id(cim_class)] = info     # holds the class, so its id is not reused
    return info


def nocase_keys(ncd):
    """The case-folded key table of a pywbem NocaseDict ({folded: (name, value)}), or None
    when this pywbem's NocaseDict does not keep one (callers then take the public API)."""
    data = getattr(ncd, "_data", None)
    return data if isinstance(data, dict) else None
