"""The schema as MOF files: which files make up each namespace, in compile order.

A glob names every file that matches, in sorted order; a file named here must exist.
The files of one namespace are compiled into it alone, so a class that both namespaces
need (the CIM_ subset) is listed for both.
"""
from pathlib import Path

MOF_ROOT = Path(__file__).resolve().parent

NAMESPACES = {
    "root/cimv2": ["qualifiers.mof", "cim/cim_schema_subset.mof", "cimv2/*.mof"],
    "root/interop": ["qualifiers.mof", "cim/cim_schema_subset.mof", "interop/*.mof"],
}
