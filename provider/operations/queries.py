"""ExecQuery (and the iterator OpenQueryInstances pulls from)."""
from __future__ import annotations

from typing import Iterator

from provider.operations.common import Shape, get_str
from provider.operations.instances import context, iter_instances
from provider.operations.query import CompiledQuery, compile_query


def iter_query(d, ctx, query: CompiledQuery) -> Iterator:
    """Instances of the FROM class (and subclasses) that satisfy WHERE, projected."""
    needed = query.needed_properties()
    shape = Shape.of(needed)
    pctx = ctx.with_properties(needed)
    for inst in iter_instances(d, pctx, query.classname, shape):
        if query.matches(inst):
            yield query.project(inst)


def exec_query(d, req, principal):
    ns = req.namespace
    language = get_str(req.params, "QueryLanguage", required=True)
    text = get_str(req.params, "Query", required=True)
    query = compile_query(language, text, d.schema, ns)
    ctx = context(d, principal, ns, "ExecQuery")
    return list(iter_query(d, ctx, query))
