"""Pull operations: enumeration contexts that stream from the providers.

A context keeps the providers' iterator, not the results: each Pull takes the next
MaxObjectCount objects, so a 10,000-instance pull holds one batch at a time. Contexts belong
to the user and namespace that opened them, expire OperationTimeout seconds after the last
response (measured on the injected clock), and are bounded per server and per user.
"""
from __future__ import annotations

import itertools
import logging
import secrets
import threading
from dataclasses import dataclass, field
from typing import Iterator

import pywbem
from pywbem import CIMError

from provider.messages import PullResult
from provider.operations.associations import (iter_associator_names, iter_associators,
                                              iter_reference_names, iter_references,
                                              require_source, Traversal, class_param)
from provider.operations.common import (Shape, get_bool, get_instance_name, get_property_list,
                                        get_str, get_uint32, invalid)
from provider.operations.errors import to_cim_error
from provider.operations.instances import context, iter_instances, iter_names, require_class
from provider.operations.queries import iter_query
from provider.operations.query import compile_query

log = logging.getLogger(__name__)

# Which Pull operation continues which kind of context.
PULL_KINDS = {"PullInstancesWithPath": "instances", "PullInstancePaths": "paths",
              "PullInstances": "query"}


@dataclass
class PullLimits:
    default_timeout: int = 60        # seconds, when the client sends no OperationTimeout
    max_timeout: int = 600           # larger values (and 0, "never") are refused
    max_contexts: int = 256          # open contexts per server
    max_contexts_per_user: int = 64
    max_batch: int = 10_000          # objects per response, whatever MaxObjectCount says


@dataclass
class _Context:
    id: str
    user: str
    namespace: str
    kind: str
    iterator: Iterator
    timeout: int
    expires: float = 0.0
    busy: bool = False
    pending: list = field(default_factory=list)   # objects read ahead to detect the end
    exhausted: bool = False


class PullManager:
    def __init__(self, clock, limits: PullLimits | None = None):
        self.clock = clock
        self.limits = limits or PullLimits()
        self._lock = threading.Lock()
        self._contexts: dict[str, _Context] = {}

    # -- bookkeeping -----------------------------------------------------------------------

    def open_count(self) -> int:
        with self._lock:
            self._expire_locked()
            return len(self._contexts)

    def _expire_locked(self) -> list[_Context]:
        now = self.clock.monotonic()
        dead = [c for c in self._contexts.values() if not c.busy and c.expires <= now]
        for ctx in dead:
            del self._contexts[ctx.id]
        for ctx in dead:
            _close_iterator(ctx.iterator)
        return dead

    def _timeout(self, params) -> int:
        value = get_uint32(params, "OperationTimeout")
        if value is None:
            return self.limits.default_timeout
        if value == 0:
            raise CIMError(pywbem.CIM_ERR_INVALID_OPERATION_TIMEOUT,
                           "OperationTimeout 0 (no timeout) is not supported; "
                           f"the maximum is {self.limits.max_timeout} seconds")
        if value > self.limits.max_timeout:
            raise CIMError(pywbem.CIM_ERR_INVALID_OPERATION_TIMEOUT,
                           f"OperationTimeout {value} exceeds the maximum of "
                           f"{self.limits.max_timeout} seconds")
        return value

    def check_open(self, params, *, filtered: bool = True) -> tuple[int, int]:
        """Validate the common Open* parameters before any provider work:
        (timeout, MaxObjectCount)."""
        if filtered and (params.get("FilterQueryLanguage") is not None
                         or params.get("FilterQuery") is not None):
            raise CIMError(pywbem.CIM_ERR_FILTERED_ENUMERATION_NOT_SUPPORTED,
                           "filtered enumerations (FilterQuery) are not supported; "
                           "use OpenQueryInstances or ExecQuery")
        if get_bool(params, "ContinueOnError", False):
            raise CIMError(pywbem.CIM_ERR_CONTINUATION_ON_ERROR_NOT_SUPPORTED,
                           "ContinueOnError is not supported")
        timeout = self._timeout(params)
        max_count = get_uint32(params, "MaxObjectCount")
        return timeout, (0 if max_count is None else max_count)

    def _take(self, ctx: _Context, count: int) -> list:
        count = min(count, self.limits.max_batch)
        batch = ctx.pending[:count]
        del ctx.pending[:count]
        if len(batch) < count and not ctx.exhausted:
            batch.extend(itertools.islice(ctx.iterator, count - len(batch)))
        if not ctx.pending and not ctx.exhausted:
            # Read one ahead: a client must learn the end in the response carrying the last
            # objects, not in an extra empty round trip.
            ahead = list(itertools.islice(ctx.iterator, 1))
            if ahead:
                ctx.pending.extend(ahead)
            else:
                ctx.exhausted = True
        return batch

    # -- operations ------------------------------------------------------------------------

    def open(self, principal, namespace: str, kind: str, iterator: Iterator,
             timeout: int, max_count: int, query_result_class=None) -> PullResult:
        ctx = _Context(id=secrets.token_hex(16), user=principal.user, namespace=namespace,
                       kind=kind, iterator=iterator, timeout=timeout, busy=True)
        try:
            batch = self._take(ctx, max_count)
        except BaseException:
            _close_iterator(iterator)
            raise
        if ctx.exhausted and not ctx.pending:
            # Done in one response: no context is kept, so no limit applies.
            return PullResult(batch, True, None, query_result_class)
        with self._lock:
            self._expire_locked()
            refusal = None
            if len(self._contexts) >= self.limits.max_contexts:
                refusal = f"too many open enumerations ({self.limits.max_contexts})"
            elif sum(1 for c in self._contexts.values() if c.user == principal.user) >= \
                    self.limits.max_contexts_per_user:
                refusal = (f"too many open enumerations for user {principal.user} "
                           f"({self.limits.max_contexts_per_user})")
            if refusal is None:
                ctx.busy = False
                ctx.expires = self.clock.monotonic() + timeout
                self._contexts[ctx.id] = ctx
        if refusal is not None:
            _close_iterator(iterator)
            raise CIMError(pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED, refusal)
        return PullResult(batch, False, ctx.id, query_result_class)

    def _claim(self, principal, namespace: str, params) -> _Context:
        ident = get_str(params, "EnumerationContext", required=True)
        with self._lock:
            self._expire_locked()
            ctx = self._contexts.get(ident)
            # Someone else's context is reported exactly like one that does not exist.
            if ctx is None or ctx.user != principal.user or \
                    ctx.namespace.strip("/").lower() != namespace.strip("/").lower():
                raise CIMError(pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT,
                               "no such enumeration context (closed, expired or not yours)")
            if ctx.busy:
                raise CIMError(pywbem.CIM_ERR_PULL_CANNOT_BE_ABANDONED,
                               "the enumeration context is in use by another request")
            ctx.busy = True
            return ctx

    def _release(self, ctx: _Context, finished: bool) -> None:
        with self._lock:
            if finished:
                self._contexts.pop(ctx.id, None)
            else:
                ctx.busy = False
                ctx.expires = self.clock.monotonic() + ctx.timeout
        if finished:
            _close_iterator(ctx.iterator)

    def pull(self, principal, namespace: str, operation: str, params) -> PullResult:
        max_count = get_uint32(params, "MaxObjectCount")
        if max_count is None:
            raise invalid(f"{operation} needs MaxObjectCount")
        ctx = self._claim(principal, namespace, params)
        if ctx.kind != PULL_KINDS[operation]:
            self._release(ctx, False)
            raise invalid(f"{operation} does not continue this enumeration "
                          f"(it was opened for {_kind_pull(ctx.kind)})")
        try:
            batch = self._take(ctx, max_count)
        except BaseException as exc:
            # Without ContinueOnError an error ends the enumeration.
            self._release(ctx, True)
            if isinstance(exc, Exception):
                raise to_cim_error(exc) from exc
            raise
        done = ctx.exhausted and not ctx.pending
        self._release(ctx, done)
        return PullResult(batch, done, None if done else ctx.id)

    def close(self, principal, namespace: str, params) -> None:
        ctx = self._claim(principal, namespace, params)
        self._release(ctx, True)

    def count(self, principal, namespace: str, params) -> int | None:
        """The number of objects left. Counting reads ahead from the providers, up to
        `max_batch` objects (kept for the next Pulls); beyond that the count is NULL
        ("unknown"), which DSP0200 allows."""
        ctx = self._claim(principal, namespace, params)
        try:
            if not ctx.exhausted:
                room = self.limits.max_batch + 1 - len(ctx.pending)
                more = list(itertools.islice(ctx.iterator, max(room, 0)))
                ctx.pending.extend(more)
                if len(more) < room:
                    ctx.exhausted = True
        except BaseException as exc:
            self._release(ctx, True)
            if isinstance(exc, Exception):
                raise to_cim_error(exc) from exc
            raise
        result = len(ctx.pending) if ctx.exhausted else None
        self._release(ctx, False)
        return result


def _kind_pull(kind: str) -> str:
    return next(op for op, k in PULL_KINDS.items() if k == kind)


def _close_iterator(iterator) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        try:
            close()
        except Exception:                       # a provider's cleanup must not mask the answer
            log.exception("closing an enumeration")


# -- the Open operations -----------------------------------------------------------------------

def open_enumerate_instances(d, req, principal):
    ns = req.namespace
    timeout, max_count = d.pulls.check_open(req.params)
    classname = get_str(req.params, "ClassName", required=True)
    cls = require_class(d, ns, classname)
    props = get_property_list(req.params)
    shape = Shape.of(props, deep_inheritance=get_bool(req.params, "DeepInheritance", True),
                     include_class_origin=get_bool(req.params, "IncludeClassOrigin", False))
    ctx = context(d, principal, ns, "OpenEnumerateInstances", props)
    return d.pulls.open(principal, ns, "instances", iter_instances(d, ctx, cls.classname, shape),
                        timeout, max_count)


def open_enumerate_instance_paths(d, req, principal):
    ns = req.namespace
    timeout, max_count = d.pulls.check_open(req.params)
    classname = get_str(req.params, "ClassName", required=True)
    cls = require_class(d, ns, classname)
    ctx = context(d, principal, ns, "OpenEnumerateInstancePaths", ())
    return d.pulls.open(principal, ns, "paths", iter_names(d, ctx, cls.classname),
                        timeout, max_count)


def _open_traversal(d, req, associators: bool) -> Traversal:
    ns = req.namespace
    source = get_instance_name(req.params, "InstanceName", ns)
    require_class(d, ns, source.classname, pywbem.CIM_ERR_INVALID_PARAMETER)
    if associators:
        return Traversal(source, class_param(d, ns, req.params, "AssocClass"),
                         class_param(d, ns, req.params, "ResultClass"),
                         get_str(req.params, "Role") or None,
                         get_str(req.params, "ResultRole") or None)
    return Traversal(source, None, class_param(d, ns, req.params, "ResultClass"),
                     get_str(req.params, "Role") or None, None)


def _open_assoc(d, req, principal, *, associators: bool, paths: bool):
    ns = req.namespace
    timeout, max_count = d.pulls.check_open(req.params)
    t = _open_traversal(d, req, associators)
    props = None if paths else get_property_list(req.params)
    ctx = context(d, principal, ns, req.name, () if paths else props)
    require_source(d, ctx, t.source)
    shape = Shape.of(props, include_class_origin=get_bool(req.params, "IncludeClassOrigin",
                                                          False))
    if associators:
        it = iter_associator_names(d, ctx, t) if paths else iter_associators(d, ctx, t, shape)
    else:
        it = iter_reference_names(d, ctx, t) if paths else iter_references(d, ctx, t, shape)
    return d.pulls.open(principal, ns, "paths" if paths else "instances", it, timeout,
                        max_count)


def open_associator_instances(d, req, principal):
    return _open_assoc(d, req, principal, associators=True, paths=False)


def open_associator_instance_paths(d, req, principal):
    return _open_assoc(d, req, principal, associators=True, paths=True)


def open_reference_instances(d, req, principal):
    return _open_assoc(d, req, principal, associators=False, paths=False)


def open_reference_instance_paths(d, req, principal):
    return _open_assoc(d, req, principal, associators=False, paths=True)


def open_query_instances(d, req, principal):
    ns = req.namespace
    timeout, max_count = d.pulls.check_open(req.params, filtered=False)
    language = get_str(req.params, "FilterQueryLanguage", required=True)
    text = get_str(req.params, "FilterQuery", required=True)
    query = compile_query(language, text, d.schema, ns)
    result_class = query.result_class() if get_bool(req.params, "ReturnQueryResultClass",
                                                    False) else None
    ctx = context(d, principal, ns, "OpenQueryInstances")
    return d.pulls.open(principal, ns, "query", iter_query(d, ctx, query), timeout, max_count,
                        result_class)


def pull_operation(d, req, principal):
    return d.pulls.pull(principal, req.namespace, req.name, req.params)


def close_enumeration(d, req, principal):
    d.pulls.close(principal, req.namespace, req.params)


def enumeration_count(d, req, principal):
    return d.pulls.count(principal, req.namespace, req.params)

