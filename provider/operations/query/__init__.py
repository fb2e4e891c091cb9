"""WQL and DMTF:CQL: SELECT from one class, WHERE, ISA, LIKE; projection of the select list."""
from __future__ import annotations

from provider.operations.query.evaluate import CompiledQuery, language_of, like_regex
from provider.operations.query.parser import Statement, parse
from provider.operations.query.tokens import QueryError


def compile_query(language: str | None, text: str, schema, namespace: str) -> CompiledQuery:
    """Parse and check a query; CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED or CIM_ERR_INVALID_QUERY."""
    canonical = language_of(language)
    return CompiledQuery(parse(text, canonical), schema, namespace)


__all__ = ["CompiledQuery", "QueryError", "Statement", "compile_query", "language_of",
           "like_regex", "parse"]
