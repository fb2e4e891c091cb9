"""The `-M` (machine-readable) and `-X` (XML) forms of the status views, both ways.

`-M` (DECISIONS §1.14, docs/formats.md): one record per line; the first field is the record's
tag; fields are separated by `:`, the items of a list by `,`, and the sub-fields of one item
of a list of records by `;`. Fields follow the `-V` order. A guest's section records carry the
guest's name as their first field, so each line stands on its own. Inside a text value the
delimiters and `%` are written `%3A`, `%3B`, `%2C`, `%25` (a newline `%0A`); names, labels and
paths cannot hold them, so in practice only event details, actors and IPv6 addresses do.

`-X`: one XML document; its root is the command's name, each record is an element named by its
tag, each field a child element named by the field, a list's items `<item>` children (or
record elements), sizes and rates carry a `unit` attribute. An absent value has no element.

`write_machine` / `parse_machine` and `write_xml` / `parse_xml` are exact inverses on the view
objects of `agent.api.views`, so tests and clients can read the output back into values.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from lxml import etree

from agent.api import views as v
from agent.errors import AgentError

FORMAT_VERSION = "1"

_RECORDS = (v.SummaryRow, v.MachineDetails, v.AdministratorDetails, v.CpuDetails,
            v.MemoryDetails, v.DynamicMemoryDetails, v.StorageDetails, v.NetworkDetails,
            v.MiscDetails, v.InvalidGuestDetails, v.HostResources, v.ResourceAllocation,
            v.VcpuUsage, v.EventEntry, v.SchedulerMode, v.ServerEntry, v.MultiServer,
            v.HostInfo, v.VersionInfo)
_BY_TAG = {cls.TAG: cls for cls in _RECORDS}

# GuestDetails attribute -> record class, in -V order.
_SECTIONS = (("machine", v.MachineDetails), ("admins", v.AdministratorDetails),
             ("cpu", v.CpuDetails), ("memory", v.MemoryDetails),
             ("dynmem", v.DynamicMemoryDetails), ("storage", v.StorageDetails),
             ("network", v.NetworkDetails), ("misc", v.MiscDetails))
_SECTION_OF_TAG = {cls.TAG: attr for attr, cls in _SECTIONS}

_DEVICE_KINDS = ("storage", "network", "misc")


class FormatError(AgentError):
    def __init__(self, line: str):
        super().__init__(line, kind="invalid")


# --- type plumbing ---------------------------------------------------------------------------

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _fields(cls):
    return [f for f in dataclasses.fields(cls)]


def _unwrap(tp):
    """(base type, optional?, list item type or None)."""
    optional = False
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = True
        tp = args[0]
    if typing.get_origin(tp) is list:
        return list, optional, typing.get_args(tp)[0]
    return tp, optional, None


def _scalar_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _scalar_value(text: str, tp, optional: bool, where: str):
    if text == "" and optional:
        return None
    try:
        if tp is bool:
            if text not in ("0", "1"):
                raise ValueError(text)
            return text == "1"
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
    except ValueError:
        raise FormatError(f"{where}: not a valid {tp.__name__}: '{text}'") from None
    return text


# -M escapes its delimiters (and the escape character) inside text values, so a value that
# does hold one (an event's details, an IPv6 address, a "cim:user" actor) still parses back.
# Names, labels and paths cannot hold them (DECISIONS §1.14, hpvmresources(5)), so for those
# the output is exactly the plain text.
_ESCAPES = {"%": "%25", ":": "%3A", ";": "%3B", ",": "%2C", "\n": "%0A"}
_UNESCAPES = {v.lower(): k for k, v in _ESCAPES.items()}


def _escape(text: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in text)


def _unescape(text: str, where: str) -> str:
    if "%" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "%":
            code = text[i:i + 3].lower()
            if code not in _UNESCAPES:
                raise FormatError(f"{where}: bad escape '{text[i:i + 3]}'")
            out.append(_UNESCAPES[code])
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _m_text(value) -> str:
    return _escape(value) if isinstance(value, str) else _scalar_text(value)


def _m_value(text: str, tp, optional: bool, where: str):
    if tp is str:
        return _unescape(text, where)
    return _scalar_value(text, tp, optional, where)


def _is_record_type(tp) -> bool:
    return dataclasses.is_dataclass(tp)


# --- -M --------------------------------------------------------------------------------------

def _field_text(obj, f) -> str:
    value = getattr(obj, f.name)
    base, _opt, item = _unwrap(_hints(type(obj))[f.name])
    if base is list:
        if _is_record_type(item):
            return ",".join(";".join(_field_text(i, sf) for sf in _fields(item))
                            for i in value)
        return ",".join(_m_text(i) for i in value)
    return _m_text(value)


def _record_line(obj, owner: str | None = None) -> str:
    parts = [obj.TAG]
    if owner is not None:
        parts.append(_escape(owner))
    parts.extend(_field_text(obj, f) for f in _fields(type(obj)))
    return ":".join(parts)


def machine_lines(obj) -> list[str]:
    """The -M lines of one view object (a record, a GuestDetails or a DeviceSpecs)."""
    from agent.resources import format_resource

    if isinstance(obj, v.GuestDetails):
        name = obj.machine.name
        lines = [_record_line(obj.machine)]
        for attr, _cls in _SECTIONS[1:]:
            part = getattr(obj, attr)
            for rec in (part if isinstance(part, list) else [part] if part else []):
                lines.append(_record_line(rec, owner=name))
        return lines
    if isinstance(obj, v.DeviceSpecs):
        lines = [f"device:{obj.name}:storage:{format_resource(r)}" for r in obj.storage]
        lines += [f"device:{obj.name}:network:{format_resource(r)}" for r in obj.network]
        lines += [f"device:{obj.name}:misc:{misc_spec(m)}" for m in obj.misc]
        return lines
    return [_record_line(obj)]


def write_machine(objs) -> str:
    out: list[str] = []
    for obj in objs:
        out.extend(machine_lines(obj))
    return "".join(line + "\n" for line in out)


def _parse_record(cls, values: list[str], where: str):
    kwargs = {}
    hints = _hints(cls)
    for f, text in zip(_fields(cls), values):
        base, optional, item = _unwrap(hints[f.name])
        if base is list:
            if text == "":
                kwargs[f.name] = []
            elif _is_record_type(item):
                kwargs[f.name] = [_parse_record(item, part.split(";"), where)
                                  for part in text.split(",")]
            else:
                ibase, iopt, _ = _unwrap(item)
                kwargs[f.name] = [_m_value(t, ibase, iopt, where) for t in text.split(",")]
        else:
            kwargs[f.name] = _m_value(text, base, optional, where)
    if len(values) != len(_fields(cls)):
        raise FormatError(f"{where}: {cls.TAG} has {len(values)} fields, "
                          f"expected {len(_fields(cls))}")
    return cls(**kwargs)


def misc_spec(m) -> str:
    """A misc device in resource-spec form, as -d prints it: `serial:com1::tty:console`."""
    from agent.resources import format_misc
    return format_misc(m)


def parse_misc_spec(text: str, where: str = "misc"):
    """`serial:com1::tty:console` -> `agent.resources.MiscDevice`."""
    from agent.resources import MiscDevice
    parts = text.split(":", 4)
    if len(parts) != 5 or parts[2] or not all(parts[:2] + parts[3:]):
        raise FormatError(f"{where}: not a misc device spec: '{text}'")
    return MiscDevice(device=parts[0], adapter=parts[1], storage=parts[3], location=parts[4])


def parse_machine(text: str) -> list:
    """Read -M output back into view objects (section records regrouped into GuestDetails)."""
    from agent.resources import parse_resource

    out: list = []
    current: v.GuestDetails | None = None
    devices: v.DeviceSpecs | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        where = f"line {number}"
        tag, _, rest = line.partition(":")
        if tag == "device":
            name, kind, spec = (rest.split(":", 2) + ["", ""])[:3]
            if kind not in _DEVICE_KINDS:
                raise FormatError(f"{where}: unknown device kind '{kind}'")
            if devices is None or devices.name != name:
                devices = v.DeviceSpecs(name=name, storage=[], network=[], misc=[])
                out.append(devices)
            if kind == "misc":
                devices.misc.append(parse_misc_spec(spec, where))
            else:
                res = parse_resource(spec, purpose="add")
                getattr(devices, kind).append(res)
            continue
        cls = _BY_TAG.get(tag)
        if cls is None:
            raise FormatError(f"{where}: unknown record '{tag}'")
        section = _SECTION_OF_TAG.get(tag)
        if section is not None and section != "machine":
            owner, _, rest = rest.partition(":")
            owner = _unescape(owner, where)
            if current is None or current.machine.name != owner:
                raise FormatError(f"{where}: {tag} record for '{owner}' outside its guest")
            rec = _parse_record(cls, rest.split(":"), where)
            part = getattr(current, section)
            if isinstance(part, list):
                part.append(rec)
            else:
                setattr(current, section, rec)
            continue
        rec = _parse_record(cls, rest.split(":"), where)
        if section == "machine":
            current = v.GuestDetails(machine=rec, admins=v.AdministratorDetails(),
                                     cpu=v.CpuDetails(), memory=v.MemoryDetails(),
                                     dynmem=None, storage=[], network=[], misc=[])
            out.append(current)
        else:
            current = None
            out.append(rec)
    return out


# --- -X --------------------------------------------------------------------------------------

def _record_element(obj, tag: str | None = None) -> etree._Element:
    el = etree.Element(tag or obj.TAG)
    hints = _hints(type(obj))
    for f in _fields(type(obj)):
        value = getattr(obj, f.name)
        if value is None:
            continue
        base, _opt, item = _unwrap(hints[f.name])
        child = etree.SubElement(el, f.name)
        unit = f.metadata.get("unit")
        if unit:
            child.set("unit", unit)
        if base is list:
            for i in value:
                if _is_record_type(item):
                    child.append(_record_element(i))
                else:
                    etree.SubElement(child, "item").text = _scalar_text(i)
        else:
            child.text = _scalar_text(value)
    return el


def xml_element(obj) -> etree._Element:
    from agent.resources import format_resource

    if isinstance(obj, v.GuestDetails):
        el = etree.Element(obj.TAG, name=obj.machine.name)
        for attr, _cls in _SECTIONS:
            part = getattr(obj, attr)
            for rec in (part if isinstance(part, list) else [part] if part else []):
                el.append(_record_element(rec))
        return el
    if isinstance(obj, v.DeviceSpecs):
        el = etree.Element(obj.TAG, name=obj.name)
        for kind, items, fmt in (("storage", obj.storage, format_resource),
                                 ("network", obj.network, format_resource),
                                 ("misc", obj.misc, misc_spec)):
            for item in items:
                etree.SubElement(el, kind).text = fmt(item)
        return el
    return _record_element(obj)


def write_xml(command: str, objs) -> str:
    root = etree.Element(command, format_version=FORMAT_VERSION)
    for obj in objs:
        root.append(xml_element(obj))
    return etree.tostring(root, pretty_print=True, xml_declaration=True,
                          encoding="UTF-8").decode("utf-8")


def _parse_record_element(cls, el, where: str):
    kwargs = {}
    hints = _hints(cls)
    known = {f.name for f in _fields(cls)}
    for child in el:
        if child.tag not in known:
            raise FormatError(f"{where}: unknown element <{child.tag}> in <{cls.TAG}>")
    for f in _fields(cls):
        child = el.find(f.name)
        base, optional, item = _unwrap(hints[f.name])
        if child is None:
            if base is list:
                kwargs[f.name] = []
            elif optional:
                kwargs[f.name] = None
            continue   # the dataclass default
        if base is list:
            if _is_record_type(item):
                kwargs[f.name] = [_parse_record_element(item, i, where) for i in child]
            else:
                ibase, iopt, _ = _unwrap(item)
                kwargs[f.name] = [_scalar_value(i.text or "", ibase, iopt, where)
                                  for i in child]
        else:
            kwargs[f.name] = _scalar_value(child.text or "", base, optional, where)
    return cls(**kwargs)


# Hardened: no entities, no DTD, no network, bounded tree.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          dtd_validation=False, huge_tree=False, remove_blank_text=True)


def parse_xml(text: str | bytes) -> tuple[str, list]:
    """Read -X output back: (root element name, view objects)."""
    from agent.resources import parse_resource

    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise FormatError(f"not a well-formed document: {exc}") from None
    out: list = []
    for el in root:
        where = f"<{el.tag}>"
        if el.tag == v.GuestDetails.TAG:
            g = v.GuestDetails(machine=v.MachineDetails(), admins=v.AdministratorDetails(),
                               cpu=v.CpuDetails(), memory=v.MemoryDetails(), dynmem=None,
                               storage=[], network=[], misc=[])
            for sec in el:
                attr = _SECTION_OF_TAG.get(sec.tag)
                if attr is None:
                    raise FormatError(f"{where}: unknown section <{sec.tag}>")
                rec = _parse_record_element(_BY_TAG[sec.tag], sec, where)
                part = getattr(g, attr)
                if isinstance(part, list):
                    part.append(rec)
                else:
                    setattr(g, attr, rec)
            out.append(g)
        elif el.tag == v.DeviceSpecs.TAG:
            d = v.DeviceSpecs(name=el.get("name", ""), storage=[], network=[], misc=[])
            for dev in el:
                if dev.tag == "misc":
                    d.misc.append(parse_misc_spec(dev.text or "", where))
                elif dev.tag in ("storage", "network"):
                    getattr(d, dev.tag).append(parse_resource(dev.text or "", purpose="add"))
                else:
                    raise FormatError(f"{where}: unknown device <{dev.tag}>")
            out.append(d)
        elif el.tag in _BY_TAG:
            out.append(_parse_record_element(_BY_TAG[el.tag], el, where))
        else:
            raise FormatError(f"{where}: unknown record")
    return root.tag, out


__all__ = ["FORMAT_VERSION", "FormatError", "machine_lines", "write_machine", "parse_machine",
           "xml_element", "write_xml", "parse_xml", "misc_spec", "parse_misc_spec"]
