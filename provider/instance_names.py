"""Instance paths without pywbem's per-value checks when they cannot change anything.

`CIMInstanceName(...)` and `.copy()` run every key value through pywbem's validating
setters; for the paths a server builds on every request (the parsed InstanceName of a
GetInstance, the dispatcher's copy of it) that is a measurable share of a small request.
When every key value is one pywbem keeps exactly as given (str, bool, a CIM typed value, an
instance path), the objects are filled in directly; anything else goes through pywbem's
constructor. Both give equal objects (tests/test_instance_names.py).
"""
from __future__ import annotations

from pywbem import CIMInstanceName, CIMType
from pywbem._nocasedict import NocaseDict

# pywbem is pinned to 1.9.x; should a release rename these slots, every path takes
# pywbem's constructor.
_FAST = ({"_classname", "_keybindings", "_host", "_namespace"}
         <= set(getattr(CIMInstanceName, "__slots__", ()))
         and isinstance(getattr(NocaseDict(), "_data", None), dict))
# keybinding values pywbem stores unchanged (pywbem._cim_obj._cim_keybinding)
_KEEPS_AS_IS = (str, bool, CIMType, CIMInstanceName)
_new_path = CIMInstanceName.__new__


def instance_name(classname: str, keybindings: NocaseDict, *, namespace: str | None = None,
                  host: str | None = None) -> CIMInstanceName:
    """`CIMInstanceName(classname, keybindings, host=host, namespace=namespace)`; the
    keybindings dictionary is copied, its values are shared (as pywbem does)."""
    if (_FAST and type(classname) is str and type(keybindings) is NocaseDict
            and (namespace is None or type(namespace) is str)
            and (host is None or type(host) is str)):
        data = keybindings._data
        if data and all(type(k) is str and isinstance(v, _KEEPS_AS_IS)
                        for k, v in data.values()):
            keys = NocaseDict()
            keys._data.update(data)
            path = _new_path(CIMInstanceName)
            path._classname = classname
            path._keybindings = keys
            path._host = host
            path._namespace = namespace.strip("/") if namespace is not None else None
            return path
    return CIMInstanceName(classname, keybindings, host=host, namespace=namespace)


def relocated(path: CIMInstanceName, namespace: str | None,
              host: str | None = None) -> CIMInstanceName:
    """A copy of `path` in `namespace` on `host` (`path.copy()` with both set)."""
    return instance_name(path.classname, path.keybindings, namespace=namespace, host=host)
