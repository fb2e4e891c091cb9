"""Checking a parsed query against its class, then filtering and projecting instances.

WHERE follows SQL's three-valued logic: a comparison with NULL is unknown, and only rows
whose condition is true are selected. Types are checked once, against the FROM class, so a
query that compares a string property with a number is refused before any instance is read.
"""
from __future__ import annotations

import re
from typing import Callable

import pywbem
from pywbem import CIMDateTime, CIMInstance, CIMInstanceName

from provider.operations.query.parser import (And, Compare, Isa, IsNull, Like, Literal, Not,
                                              Or, Prop, Statement)
from provider.operations.query.tokens import QueryError
from provider.providers.base import path_key
from provider.providers.registry import is_a

_NUMERIC = frozenset({"uint8", "uint16", "uint32", "uint64", "sint8", "sint16", "sint32",
                      "sint64", "real32", "real64"})
_STRING = frozenset({"string", "char16"})


def _category(cim_type: str) -> str:
    if cim_type in _NUMERIC:
        return "number"
    if cim_type in _STRING:
        return "string"
    return cim_type                    # boolean, datetime, reference


def _literal_category(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def like_regex(pattern: str, language: str) -> re.Pattern:
    """WQL: % any run, _ one character, [set]. DMTF:CQL: . one character, * repeats the
    previous atom, [set], backslash escapes."""
    out: list[str] = []
    i, n = 0, len(pattern)
    cql = language == "DMTF:CQL"
    while i < n:
        ch = pattern[i]
        if ch == "[":
            j = i + 1
            if j < n and pattern[j] in "^!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                raise QueryError(f"unterminated '[' in LIKE pattern {pattern!r}")
            body = pattern[i + 1:j]
            negate = body[:1] in ("^", "!")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("[", "\\[")
            out.append("[" + ("^" if negate else "") + body + "]")
            i = j + 1
            continue
        if cql:
            if ch == ".":
                out.append(".")
            elif ch == "*":
                if not out or out[-1] == "*":
                    raise QueryError(f"'*' with nothing to repeat in LIKE pattern {pattern!r}")
                out.append("*")
            elif ch == "\\":
                if i + 1 >= n:
                    raise QueryError(f"LIKE pattern {pattern!r} ends with an escape")
                i += 1
                out.append(re.escape(pattern[i]))
            else:
                out.append(re.escape(ch))
        else:
            if ch == "%":
                out.append(".*")
            elif ch == "_":
                out.append(".")
            else:
                out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _order_key(value):
    if isinstance(value, CIMDateTime):
        return value.timedelta if value.is_interval else value.datetime
    return value


def _compare(op: str, left, right):
    if left is None or right is None:
        return None
    if isinstance(left, CIMInstanceName) or isinstance(right, CIMInstanceName):
        equal = path_key(left, "") == path_key(right, "")
        return equal if op == "=" else not equal
    try:
        a, b = _order_key(left), _order_key(right)
        if op == "=":
            return a == b
        if op == "<>":
            return a != b
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        return a >= b
    except TypeError:
        return None                    # interval against point in time: unknown


class CompiledQuery:
    """A statement checked against its FROM class in one namespace."""

    def __init__(self, statement: Statement, schema, namespace: str):
        self.statement = statement
        self.schema = schema
        self.namespace = namespace
        try:
            self.cim_class = schema.get_class(namespace, statement.classname)
        except pywbem.CIMError:
            raise QueryError(f"class {statement.classname} does not exist in {namespace}") \
                from None
        self.classname = self.cim_class.classname
        self._names = {self.classname.lower()}
        if statement.alias:
            self._names.add(statement.alias.lower())
        self.where_properties: set[str] = set()
        self.selected = self._check_selects()
        self._test = self._compile(statement.where) if statement.where is not None else None

    # -- checks ------------------------------------------------------------------------

    def _decl(self, prop: Prop) -> pywbem.CIMProperty:
        if prop.qualifier is not None and prop.qualifier.lower() not in self._names:
            raise QueryError(f"{prop.qualifier} is not the class or alias of the query")
        decl = self.cim_class.properties.get(prop.name)
        if decl is None:
            raise QueryError(f"class {self.classname} has no property {prop.name}")
        return decl

    def _check_selects(self) -> list[str] | None:
        names: list[str] = []
        for item in self.statement.selects:
            if item.qualifier is not None and item.qualifier.lower() not in self._names:
                raise QueryError(f"{item.qualifier} is not the class or alias of the query")
            if item.name is None:
                return None
            decl = self._decl(Prop(item.name))
            if decl.name not in names:
                names.append(decl.name)
        return names

    def _is_self(self, prop: Prop) -> bool:
        return prop.qualifier is None and prop.name.lower() in self._names

    def _operand(self, node) -> tuple[str, Callable]:
        """(category, getter) for an operand."""
        if isinstance(node, Literal):
            value = node.value
            return _literal_category(value), (lambda inst, v=value: v)
        decl = self._decl(node)
        if decl.is_array:
            raise QueryError(f"array property {decl.name} cannot be compared")
        self.where_properties.add(decl.name)
        name = decl.name

        def get(inst, name=name):
            prop = inst.properties.get(name)
            return None if prop is None else prop.value
        return _category(decl.type), get

    def _literal_as(self, category: str, node: Literal):
        """A string literal compared with a datetime or reference becomes one."""
        if category == "datetime":
            try:
                return CIMDateTime(node.value)
            except (ValueError, TypeError):
                raise QueryError(f"{node.value!r} is not a CIM datetime") from None
        if category == "reference":
            try:
                return CIMInstanceName.from_wbem_uri(node.value)
            except ValueError:
                raise QueryError(f"{node.value!r} is not an instance path") from None
        return node.value

    def _compile(self, node) -> Callable:
        if isinstance(node, Or):
            parts = [self._compile(n) for n in node.items]

            def test_or(inst):
                result = False
                for part in parts:
                    value = part(inst)
                    if value is True:
                        return True
                    if value is None:
                        result = None
                return result
            return test_or
        if isinstance(node, And):
            parts = [self._compile(n) for n in node.items]

            def test_and(inst):
                result = True
                for part in parts:
                    value = part(inst)
                    if value is False:
                        return False
                    if value is None:
                        result = None
                return result
            return test_and
        if isinstance(node, Not):
            inner = self._compile(node.expr)

            def test_not(inst):
                value = inner(inst)
                return None if value is None else not value
            return test_not
        if isinstance(node, IsNull):
            if isinstance(node.operand, Prop):
                decl = self._decl(node.operand)
                self.where_properties.add(decl.name)
                name = decl.name

                def get(inst, name=name):
                    prop = inst.properties.get(name)
                    return None if prop is None else prop.value
            else:
                _, get = self._operand(node.operand)
            negated = node.negated
            return lambda inst: (get(inst) is None) != negated
        if isinstance(node, Isa):
            return self._compile_isa(node)
        if isinstance(node, Like):
            category, get = self._operand(node.operand)
            if category != "string":
                raise QueryError("LIKE needs a string property")
            regex = like_regex(node.pattern, self.statement.language)
            negated = node.negated

            def test_like(inst):
                value = get(inst)
                if value is None:
                    return None
                return bool(regex.fullmatch(value)) != negated
            return test_like
        if isinstance(node, Compare):
            return self._compile_compare(node)
        raise QueryError("unsupported condition")

    def _compile_compare(self, node: Compare) -> Callable:
        lcat, lget = self._operand(node.left)
        rcat, rget = self._operand(node.right)
        op = node.op
        # Bind string literals to datetime / reference operands on the other side.
        if isinstance(node.right, Literal) and rcat == "string" and lcat in ("datetime", "reference"):
            value = self._literal_as(lcat, node.right)
            rcat, rget = lcat, (lambda inst, v=value: v)
        if isinstance(node.left, Literal) and lcat == "string" and rcat in ("datetime", "reference"):
            value = self._literal_as(rcat, node.left)
            lcat, lget = rcat, (lambda inst, v=value: v)
        if "null" not in (lcat, rcat) and lcat != rcat:
            raise QueryError(f"cannot compare a {lcat} with a {rcat}")
        if op not in ("=", "<>") and (lcat in ("boolean", "reference") or
                                      rcat in ("boolean", "reference")):
            raise QueryError(f"operator {op} does not apply to {lcat} values")
        return lambda inst: _compare(op, lget(inst), rget(inst))

    def _compile_isa(self, node: Isa) -> Callable:
        target = node.classname
        if self.schema_has(target) is False:
            raise QueryError(f"class {target} does not exist in {self.namespace}")
        schema, ns = self.schema, self.namespace
        if self._is_self(node.operand):
            return lambda inst: is_a(schema, ns, inst.classname, target)
        decl = self._decl(node.operand)
        if decl.type != "reference" and not decl.embedded_object:
            raise QueryError(f"ISA needs the class alias, a reference or an embedded object, "
                             f"not {decl.name}")
        self.where_properties.add(decl.name)
        name = decl.name

        def test_isa(inst):
            prop = inst.properties.get(name)
            value = None if prop is None else prop.value
            if value is None:
                return None
            classname = getattr(value, "classname", None)
            if classname is None:
                return False
            try:
                return is_a(schema, ns, classname, target)
            except pywbem.CIMError:
                return False
        return test_isa

    def schema_has(self, classname: str) -> bool:
        try:
            self.schema.get_class(self.namespace, classname)
            return True
        except pywbem.CIMError:
            return False

    # -- use -----------------------------------------------------------------------------

    def matches(self, inst: CIMInstance) -> bool:
        return self._test is None or self._test(inst) is True

    def needed_properties(self) -> list[str] | None:
        """The properties a provider must fill (None: all of them)."""
        if self.selected is None:
            return None
        return sorted(set(self.selected) | self.where_properties, key=str.lower)

    def project(self, inst: CIMInstance) -> CIMInstance:
        """Keep the selected properties only (in place)."""
        if self.selected is not None:
            keep = {n.lower() for n in self.selected}
            for name in [n for n in inst.properties if n.lower() not in keep]:
                del inst.properties[name]
        return inst

    def result_class(self) -> pywbem.CIMClass:
        """The class describing the projected instances (OpenQueryInstances)."""
        cls = self.cim_class.copy()
        if self.selected is not None:
            keep = {n.lower() for n in self.selected}
            for name in [n for n in cls.properties if n.lower() not in keep]:
                del cls.properties[name]
        return cls


LANGUAGES = {"wql": "WQL", "dmtf:cql": "DMTF:CQL", "cql": "DMTF:CQL", "cim:cql": "DMTF:CQL"}


def language_of(name: str | None) -> str:
    """The canonical language name, or CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED."""
    canonical = LANGUAGES.get((name or "").strip().lower())
    if canonical is None:
        raise pywbem.CIMError(pywbem.CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED,
                              f"query language {name!r} is not supported (WQL, DMTF:CQL)")
    return canonical
