"""CIM-XML text <-> typed CIM values (DSP0201 value syntax), shared by parser and serializer.

pywbem's `cimvalue` is too lenient for a server (it turns the string "FALSE" into True for
booleans and accepts Python literal forms such as "1_000" or non-ASCII digits for integers),
so requests are typed here with the DSP0201 syntax only.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from pywbem import (CIMDateTime, Char16, Real32, Real64, Sint8, Sint16, Sint32, Sint64,
                    Uint8, Uint16, Uint32, Uint64)

#: The CIM data types of DSP0004 (without 'reference').
CIM_TYPES = frozenset((
    "boolean", "string", "char16", "uint8", "sint8", "uint16", "sint16", "uint32", "sint32",
    "uint64", "sint64", "datetime", "real32", "real64"))

_INT_TYPES = {
    "uint8": Uint8, "sint8": Sint8, "uint16": Uint16, "sint16": Sint16,
    "uint32": Uint32, "sint32": Sint32, "uint64": Uint64, "sint64": Sint64,
}
_REAL_TYPES = {"real32": Real32, "real64": Real64}

# ASCII only: Python's int()/float() also accept "1_000" and other scripts' digits.
_DEC_RE = re.compile(r"[+-]?[0-9]{1,40}\Z")
_HEX_RE = re.compile(r"[+-]?0[xX][0-9a-fA-F]{1,32}\Z")
_REAL_RE = re.compile(r"[+-]?(?:[0-9]{1,400}(?:\.[0-9]{0,400})?|\.[0-9]{1,400})"
                      r"(?:[eE][+-]?[0-9]{1,4})?\Z")
_REAL_SPECIAL = {"INF": float("inf"), "+INF": float("inf"), "-INF": float("-inf"),
                 "NAN": float("nan")}


def parse_boolean(text: str) -> bool:
    """DSP0201 booleans are TRUE/FALSE, case-insensitive; surrounding blanks are ignored."""
    t = text.strip().lower()
    if t == "true":
        return True
    if t == "false":
        return False
    raise ValueError(f"invalid boolean value {text[:64]!r} (expected TRUE or FALSE)")


def parse_number(text: str):
    """A numeric key value without TYPE: an int, or a float for real syntax."""
    t = text.strip()
    if _DEC_RE.match(t):
        return int(t)
    if _HEX_RE.match(t):
        return int(t, 16)
    if _REAL_RE.match(t):
        return float(t)
    raise ValueError(f"invalid numeric value {text[:64]!r}")


def parse_value(text: str, cim_type: str):
    """Type the text of a VALUE element as `cim_type` (not 'reference').

    Raises ValueError with a message fit for a client on any syntax or range violation."""
    if cim_type == "string":
        return text
    if cim_type == "boolean":
        return parse_boolean(text)
    int_type = _INT_TYPES.get(cim_type)
    if int_type is not None:
        t = text.strip()
        if _DEC_RE.match(t):
            number = int(t)
        elif _HEX_RE.match(t):
            number = int(t, 16)
        else:
            raise ValueError(f"invalid {cim_type} value {text[:64]!r}")
        if not int_type.minvalue <= number <= int_type.maxvalue:
            raise ValueError(f"value {number} is out of range for {cim_type}")
        return int_type(number)
    real_type = _REAL_TYPES.get(cim_type)
    if real_type is not None:
        t = text.strip()
        special = _REAL_SPECIAL.get(t.upper())
        if special is not None:
            return real_type(special)
        if not _REAL_RE.match(t):
            raise ValueError(f"invalid {cim_type} value {text[:64]!r}")
        return real_type(float(t))
    if cim_type == "datetime":
        try:
            return CIMDateTime(text.strip())
        except (ValueError, TypeError) as e:
            raise ValueError(f"invalid datetime value {text[:64]!r}: {e}") from None
    if cim_type == "char16":
        if len(text) != 1 or ord(text) > 0xFFFF:
            raise ValueError(f"invalid char16 value {text[:64]!r} (one UCS-2 character)")
        return Char16(text)
    raise ValueError(f"unknown CIM type {cim_type!r}")


def _real(value, digits: str) -> str:
    # DSP0201: at least 11 (real32) / 17 (real64) significant digits, INF, -INF, NaN.
    s = format(value, digits)
    if s == "NAN":
        return "NaN"
    if s in ("INF", "-INF"):
        return s
    if "." not in s:
        mantissa, sep, exponent = s.partition("E")
        s = mantissa + ".0" + sep + exponent
    return s


def _bool_text(value) -> str:
    return "TRUE" if value else "FALSE"


def _datetime_text(value: CIMDateTime) -> str:
    # pywbem's __str__ pads every field through a precision-aware helper; full-precision
    # timestamps (nearly all) are formatted here directly, the same way.
    if value.precision is not None or value.is_interval:
        return str(value)
    d = value.datetime
    offset = d.utcoffset()
    minutes = 0 if offset is None else offset.days * 1440 + offset.seconds // 60
    sign = "-" if minutes < 0 else "+"
    return (f"{d.year:04d}{d.month:02d}{d.day:02d}{d.hour:02d}{d.minute:02d}{d.second:02d}"
            f".{d.microsecond:06d}{sign}{abs(minutes):03d}")


# Exact-type dispatch for the serializer's hot path (no isinstance chains per value).
_FORMATTERS = {
    str: None,   # used as is
    bool: _bool_text,
    int: str,
    Uint8: int.__repr__, Sint8: int.__repr__, Uint16: int.__repr__, Sint16: int.__repr__,
    Uint32: int.__repr__, Sint32: int.__repr__, Uint64: int.__repr__, Sint64: int.__repr__,
    Real32: lambda v: _real(v, ".11G"),
    Real64: lambda v: _real(v, ".17G"),
    float: lambda v: _real(v, ".17G"),
    CIMDateTime: _datetime_text,
    Char16: str.__str__,
    datetime: lambda v: str(CIMDateTime(v)),
    timedelta: lambda v: str(CIMDateTime(v)),
}


def format_value(value) -> str:
    """The DSP0201 text of a scalar, non-reference CIM value (not None)."""
    cls = type(value)
    try:
        fmt = _FORMATTERS[cls]
    except KeyError:
        fmt = _slow_formatter(value)
    return value if fmt is None else fmt(value)


def _slow_formatter(value):
    # Subclasses of the builtin types (and bytes) end up here once per call.
    if isinstance(value, bool):
        return _bool_text
    if isinstance(value, str):
        return str.__str__
    if isinstance(value, bytes):
        return lambda v: v.decode("utf-8")
    if isinstance(value, Real32):
        return _FORMATTERS[Real32]
    if isinstance(value, float):
        return _FORMATTERS[float]
    if isinstance(value, int):
        return int.__repr__
    if isinstance(value, (CIMDateTime, datetime, timedelta)):
        return lambda v: str(CIMDateTime(v))
    raise TypeError(f"value {value!r} of type {type(value).__name__} is not a CIM scalar")


def keyvalue_types(value) -> tuple[str, str | None, str]:
    """(VALUETYPE, TYPE, text) of a non-reference keybinding value, as pywbem writes them."""
    if isinstance(value, bool):
        return "boolean", "boolean", _bool_text(value)
    if isinstance(value, Char16):
        return "string", "char16", str.__str__(value)
    if isinstance(value, str):
        return "string", "string", value
    if isinstance(value, CIMDateTime):
        return "string", "datetime", str(value)
    cimtype = getattr(value, "cimtype", None)
    if isinstance(value, (int, float)):
        # plain Python numbers carry no CIM type; DSP0201 2.4 wants TYPE, pywbem omits it too
        return "numeric", cimtype, format_value(value)
    raise TypeError(f"keybinding value {value!r} has no CIM-XML form")
