"""The resource grammar of hpvmresources(5): virtual storage and network device specs.

    storage:  devicetype:scsi:[bus,device,target]:storage:location
    network:  network:lan:[bus,device,mac]:vswitch:name[:portid:N]

CONTRACT (frame): the two dataclasses below are shared by the model, the rules, the CLI and
the CIM providers. `parse_resource`, `format_resource` and the helpers are filled in by the
resource-grammar work (issue 2 item 3).
"""
from __future__ import annotations

from dataclasses import dataclass

STORAGE_DEVICES = ("disk", "dvd", "tape", "changer", "burner")
STORAGE_KINDS = ("disk", "lv", "file", "null", "attach")


@dataclass(frozen=True)
class StorageResource:
    """A virtual storage device and its backing store. Address parts are None until assigned."""

    device: str              # disk | dvd | tape | changer | burner
    adapter: str = "scsi"
    bus: int | None = None   # virtual PCI bus
    slot: int | None = None  # virtual PCI slot ("device" in the guide)
    target: int | None = None  # SCSI target
    storage: str = ""        # disk | lv | file | null | attach ("" only in -d/-m selectors)
    location: str = ""       # host path ("" allowed where the guide allows it, e.g. clone -b)


@dataclass(frozen=True)
class NetworkResource:
    """A vNIC and the vswitch port it is plugged into."""

    adapter: str = "lan"
    bus: int | None = None
    slot: int | None = None
    mac: str | None = None   # canonical form: lowercase aa-bb-cc-dd-ee-ff
    vswitch: str = ""
    port: int | None = None  # vswitch port; None = assign automatically
