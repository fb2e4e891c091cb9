"""Embedded instances written in MOF (what cimtest and libvirt-cim clients send instead of
CIM-XML), read into a `pywbem.CIMInstance` without a schema:

    instance of HPVM_MemoryAllocationSettingData {
        VirtualQuantity = 4096;  AllocationUnits = "byte*2^20";  HostResource = {"a", "b"};
    };

Values keep their MOF form: string literals become str (escapes decoded, adjacent literals
joined), numbers stay as their text, TRUE/FALSE become bool, NULL None, `{...}` a list. The
consumer types each value from its class declaration (`hpvm_rasd.Props`), which is where a
wrong type is reported with the property's name. Only what an embedded instance can hold is
accepted: one `instance of` declaration, no qualifiers, aliases or references; anything else
is a ValueError naming the line and column.
"""
from __future__ import annotations

import re

from pywbem import CIMInstance, CIMProperty

MAX_TEXT = 256 * 1024

_TOKEN = re.compile(r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<char>'(?:[^'\\\n]|\\.)')
  | (?P<number>[+-]?(?:0[xX][0-9A-Fa-f]+|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{};=,])
""", re.VERBOSE | re.DOTALL)

_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "'": "'",
            "\\": "\\"}


def _unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "xX":
            m = re.match(r"[0-9A-Fa-f]{1,4}", body[i + 2:])
            if not m:
                raise ValueError("\\x needs hexadecimal digits")
            out.append(chr(int(m.group(0), 16)))
            i += 2 + len(m.group(0))
        else:
            raise ValueError(f"unknown escape \\{nxt}")
    return "".join(out)


class _Reader:
    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise ValueError(f"{self._where(pos)}: unexpected {text[pos]!r}")
            if m.lastgroup != "ws":
                self.tokens.append((m.lastgroup, m.group(0), pos))
            pos = m.end()
        self.i = 0

    def _where(self, pos: int) -> str:
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return f"MOF line {line}, column {col}"

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "", len(self.text))

    def take(self, kind: str | None = None, text: str | None = None):
        tok = self.peek()
        if (kind and tok[0] != kind) or (text and tok[1].lower() != text.lower()):
            want = text or kind
            got = tok[1] or "the end of the text"
            raise ValueError(f"{self._where(tok[2])}: expected {want}, found {got!r}")
        self.i += 1
        return tok

    def value(self):
        kind, text, pos = self.peek()
        if kind == "punct" and text == "{":
            self.take()
            items = []
            if self.peek()[1] != "}":
                while True:
                    item = self.value()
                    if isinstance(item, list):
                        raise ValueError(f"{self._where(pos)}: arrays do not nest")
                    items.append(item)
                    if self.peek()[1] != ",":
                        break
                    self.take()
            self.take("punct", "}")
            return items
        if kind == "string":
            parts = []
            while self.peek()[0] == "string":
                _, lit, at = self.take()
                try:
                    parts.append(_unescape(lit[1:-1]))
                except ValueError as exc:
                    raise ValueError(f"{self._where(at)}: {exc}") from None
            return "".join(parts)
        if kind == "char":
            self.take()
            return _unescape(text[1:-1])
        if kind == "number":
            self.take()
            return text
        if kind == "name" and text.lower() in ("true", "false"):
            self.take()
            return text.lower() == "true"
        if kind == "name" and text.lower() == "null":
            self.take()
            return None
        raise ValueError(f"{self._where(pos)}: expected a value, found {text or 'the end'!r}")


def instance_from_mof(text: str) -> CIMInstance:
    """The one instance a MOF `instance of` declaration describes (values untyped, see the
    module doc). Raises ValueError with the position of the fault."""
    if len(text) > MAX_TEXT:
        raise ValueError(f"the MOF text is longer than {MAX_TEXT} characters")
    r = _Reader(text)
    r.take("name", "instance")
    r.take("name", "of")
    classname = r.take("name")[1]
    r.take("punct", "{")
    inst = CIMInstance(classname)
    while r.peek()[1] != "}":
        _, name, pos = r.take("name")
        r.take("punct", "=")
        value = r.value()
        r.take("punct", ";")
        if name in inst.properties:
            raise ValueError(f"{r._where(pos)}: property {name} is given twice")
        inst.properties[name] = _property(name, value)
    r.take("punct", "}")
    r.take("punct", ";")
    if r.peek()[0] != "end":
        raise ValueError(f"{r._where(r.peek()[2])}: one instance declaration is expected")
    return inst


def _property(name: str, value) -> CIMProperty:
    if isinstance(value, list):
        kinds = {type(v) for v in value if v is not None}
        ptype = "boolean" if kinds == {bool} else "string"
        return CIMProperty(name, [v if v is None or isinstance(v, bool) else str(v)
                                  for v in value], type=ptype, is_array=True)
    if isinstance(value, bool):
        return CIMProperty(name, value, type="boolean")
    return CIMProperty(name, value, type="string")


def is_mof(text: str) -> bool:
    """Whether an embedded object's text is MOF rather than CIM-XML."""
    return not text.lstrip().startswith("<")
