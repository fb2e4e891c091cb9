"""The Dispatcher: one entry point from a parsed CIMRequest to its result or CIMError."""
from __future__ import annotations

import threading
from dataclasses import replace

import pywbem
from pywbem import CIMError

from provider.messages import CIMRequest, Principal
from provider.operations import associations, classes, instances, methods, pull, queries
from provider.operations.common import check_parameters
from provider.operations.errors import to_cim_error
from provider.operations.pull import PullLimits, PullManager
from provider.providers.base import PRINCIPAL_ROLES

# operation -> (handler, changes something). Writes need a role the provider names; reads
# are open to every role (providers may narrow what a principal sees).
OPERATIONS = {
    "GetClass": (classes.get_class, False),
    "EnumerateClasses": (classes.enumerate_classes, False),
    "EnumerateClassNames": (classes.enumerate_class_names, False),
    "GetQualifier": (classes.get_qualifier, False),
    "EnumerateQualifiers": (classes.enumerate_qualifiers, False),
    "CreateClass": (classes.refuse_schema_change, True),
    "ModifyClass": (classes.refuse_schema_change, True),
    "DeleteClass": (classes.refuse_schema_change, True),
    "SetQualifier": (classes.refuse_schema_change, True),
    "DeleteQualifier": (classes.refuse_schema_change, True),
    "GetInstance": (instances.get_instance, False),
    "EnumerateInstances": (instances.enumerate_instances, False),
    "EnumerateInstanceNames": (instances.enumerate_instance_names, False),
    "CreateInstance": (instances.create_instance, True),
    "ModifyInstance": (instances.modify_instance, True),
    "DeleteInstance": (instances.delete_instance, True),
    "GetProperty": (instances.get_property, False),
    "SetProperty": (instances.set_property, True),
    "Associators": (associations.associators, False),
    "AssociatorNames": (associations.associator_names, False),
    "References": (associations.references, False),
    "ReferenceNames": (associations.reference_names, False),
    "ExecQuery": (queries.exec_query, False),
    "OpenEnumerateInstances": (pull.open_enumerate_instances, False),
    "OpenEnumerateInstancePaths": (pull.open_enumerate_instance_paths, False),
    "OpenAssociatorInstances": (pull.open_associator_instances, False),
    "OpenAssociatorInstancePaths": (pull.open_associator_instance_paths, False),
    "OpenReferenceInstances": (pull.open_reference_instances, False),
    "OpenReferenceInstancePaths": (pull.open_reference_instance_paths, False),
    "OpenQueryInstances": (pull.open_query_instances, False),
    "PullInstancesWithPath": (pull.pull_operation, False),
    "PullInstancePaths": (pull.pull_operation, False),
    "PullInstances": (pull.pull_operation, False),
    "CloseEnumeration": (pull.close_enumeration, False),
    "EnumerationCount": (pull.enumeration_count, False),
}
_CANONICAL = {name.lower(): name for name in OPERATIONS}


def is_write(request: CIMRequest) -> bool:
    """Whether a request changes something or calls a method (the audit log records these)."""
    if request.kind == "method":
        return True
    entry = OPERATIONS.get(_CANONICAL.get(request.name.lower(), ""))
    return bool(entry and entry[1])


class Dispatcher:
    """Answers CIM operations over the schema and the registered providers.

    `handle` may block (providers read the agent); call it from a worker thread, never the
    reactor. It is safe to call from several threads at once.
    """

    def __init__(self, schema, registry, *, clock, host_name: str,
                 pull_limits: PullLimits | None = None):
        self.schema = schema
        self.registry = registry
        self.clock = clock
        self.host_name = host_name
        self.pulls = PullManager(clock, pull_limits)
        self._assoc_lock = threading.Lock()
        self._assoc_names: dict[str, tuple[str, ...]] = {}

    def handle(self, request: CIMRequest, principal: Principal):
        """The result of `request` (shapes as in docs/architecture.md) or a pywbem.CIMError."""
        try:
            if principal.role not in PRINCIPAL_ROLES:
                raise CIMError(pywbem.CIM_ERR_ACCESS_DENIED,
                               f"user {principal.user} has no role on this host")
            if not request.namespace or not self.schema.has_namespace(request.namespace):
                raise CIMError(pywbem.CIM_ERR_INVALID_NAMESPACE,
                               f"namespace {request.namespace!r} does not exist")
            namespace = request.namespace.strip("/")
            if namespace != request.namespace:
                request = replace(request, namespace=namespace)
            if request.kind == "method":
                return methods.invoke_method(self, request, principal)
            if request.kind != "imethod":
                raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED, f"unknown request kind {request.kind}")
            name = _CANONICAL.get(request.name.lower())
            if name is None:
                raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                               f"operation {request.name} is not supported")
            if name != request.name:
                request = replace(request, name=name)
            check_parameters(name, request.params)
            handler, _ = OPERATIONS[name]
            return handler(self, request, principal)
        except CIMError:
            raise
        except Exception as exc:
            raise to_cim_error(exc) from exc

    def association_class_names(self, namespace: str) -> tuple[str, ...]:
        """Every association class of the schema in `namespace` (class-level traversals)."""
        key = namespace.lower()
        with self._assoc_lock:
            hit = self._assoc_names.get(key)
        if hit is not None:
            return hit
        names = []
        for name in self.schema.class_names(namespace, None, deep=True):
            qual = self.schema.get_class(namespace, name).qualifiers.get("Association")
            if qual is not None and qual.value:
                names.append(name)
        result = tuple(sorted(names, key=str.lower))
        with self._assoc_lock:
            self._assoc_names[key] = result
        return result
