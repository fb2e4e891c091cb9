"""Developer tool: transcribe the interface of DMTF CIM Schema 2.49 classes into compact MOF.

Not used at run time. It keeps what clients and our code rely on (names, types, keys,
ValueMap/Values, array and embedded-object typing, method signatures, In/Out, Required,
Override, Abstract/Association/Indication) and drops prose (Description, ModelCorrespondence,
MappingStrings...), so mof/cim/ stays small and readable. The superclass closure of the
requested classes is written too, in dependency order.

    python scripts/mof_extract.py SCHEMA_DIR OUT.mof CIM_Class [CIM_Class ...]

SCHEMA_DIR is the unpacked DMTF MOF zip (the folder with cim_schema_2.49.0.mof).
"""
from __future__ import annotations

import os
import sys

import pywbem
from pywbem import MOFCompiler, MOFWBEMConnection

KEEP_QUALIFIERS = {
    "abstract", "aggregate", "aggregation", "arraytype", "association", "composition",
    "deprecated", "embeddedinstance", "embeddedobject", "experimental", "in", "indication",
    "key", "max", "maxlen", "min", "out", "override", "propagated", "punit", "required",
    "static", "terminal", "units", "valuemap", "values", "version", "weak", "write",
    "octetstring", "bitmap", "bitvalues", "exception", "maxvalue", "minvalue",
}


def closure(schema_dir: str, names: list[str]) -> dict:
    index = {}
    for root, _dirs, files in os.walk(schema_dir):
        for f in files:
            if f.startswith("CIM_") and f.endswith(".mof"):
                index[f[:-4].lower()] = os.path.join(root, f)
    conn = MOFWBEMConnection()
    mofcomp = MOFCompiler(conn, search_paths=[schema_dir] + [
        os.path.join(schema_dir, d) for d in os.listdir(schema_dir)
        if os.path.isdir(os.path.join(schema_dir, d))], log_func=lambda *a: None)
    mofcomp.compile_file(os.path.join(schema_dir, "qualifiers.mof"), "root/cimv2")
    mofcomp.compile_file(os.path.join(schema_dir, "qualifiers_optional.mof"), "root/cimv2")
    for n in names:
        mofcomp.compile_file(index[n.lower()], "root/cimv2")
    return conn.classes["root/cimv2"]


def strip(cls: pywbem.CIMClass) -> pywbem.CIMClass:
    def keep(quals):
        for q in list(quals):
            if q.lower() not in KEEP_QUALIFIERS:
                del quals[q]
    keep(cls.qualifiers)
    for p in cls.properties.values():
        keep(p.qualifiers)
    for m in cls.methods.values():
        keep(m.qualifiers)
        for prm in m.parameters.values():
            keep(prm.qualifiers)
    return cls


def ordered(classes) -> list:
    done, visiting, out = set(), set(), []

    def visit(name):
        key = name.lower()
        if key in done or key in visiting:
            return
        visiting.add(key)
        cls = classes[name]
        if cls.superclass:
            visit(cls.superclass)
        # reference targets must exist before the association that names them
        for p in cls.properties.values():
            if p.type == "reference" and p.reference_class and p.reference_class in classes:
                if p.reference_class.lower() != key:
                    visit(p.reference_class)
        # so must classes named by method references and EmbeddedInstance qualifiers
        elements = list(cls.properties.values())
        for m in cls.methods.values():
            elements.extend(m.parameters.values())
        for el in elements:
            refs = [getattr(el, "reference_class", None)]
            emb = el.qualifiers.get("EmbeddedInstance")
            refs.append(emb.value if emb is not None else None)
            for ref in refs:
                if ref and ref in classes and ref.lower() != key:
                    visit(ref)
        done.add(key)
        out.append(cls)
    for name in sorted(classes, key=str.lower):
        visit(name)
    return out


def main(argv):
    schema_dir, out, *names = argv
    classes = closure(schema_dir, names)
    with open(out, "w") as f:
        f.write("// Interface of DMTF CIM Schema 2.49 classes used by vmprovider: names, types,\n"
                "// keys, value maps and method signatures (no prose). Regenerate with\n"
                "// scripts/mof_extract.py; see docs/decisions.md.\n\n")
        for cls in ordered(classes):
            text = strip(cls).tomof()
            # only local definitions: drop propagated copies of inherited elements
            f.write(text + "\n")
    print(f"{len(classes)} classes -> {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
