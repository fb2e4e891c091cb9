"""hpvmstatus layouts and the -M / -X formats, on hand-built view objects.

The texts below are the guide's samples (spec 03 §1, spec 05 §6.5) with their rulers; the
views are built field by field so a layout change shows up here before any store exists.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import formats
from agent.api import views as v
from agent.cli import status_text as t
from agent.resources import CONSOLE_DEVICE, NetworkResource, StorageResource

CONFIG_LABEL = "HPVM A.03.00.00 BL02 clearcase opt Wed Dec 06 2006 05h41m04s PST"


def compass1(dynmem=None) -> v.GuestDetails:
    return v.GuestDetails(
        machine=v.MachineDetails(
            name="compass1", uuid="43d82eb8-ff27-11d9-a431-00306e39f70b", vm_number=2,
            label="", model_name=v.MODEL_NAME, serial="VM00530001", config_version="3.0.0",
            config_label=CONFIG_LABEL, os_type="HPUX", os_version="", state="On (OS)",
            start_type="Manual", console_type=v.CONSOLE_TYPE, guest_hostname="",
            guest_ip="16.116.11.135", efi_location=v.EFI_LOCATION,
            pattern_file=v.PATTERN_FILE, guest_revision=1, server_id=0, pid=24447,
            app_controller="NONE", distributed=0),
        admins=v.AdministratorDetails(),
        cpu=v.CpuDetails(vcpus=1, min_vcpus=1, max_vcpus=4, entitlement_percent=10.0,
                         max_entitlement_percent=100.0),
        memory=v.MemoryDetails(total_mb=2048, min_limit_mb=512, max_limit_mb=65536,
                               reserved_mb=64, min_reserved_mb=32, max_reserved_mb=65536,
                               vhpt_mb=1),
        dynmem=dynmem if dynmem is not None else v.DynamicMemoryDetails(
            live=True, type="driver", min_mb=1024, target_mb=2039, max_mb=2048,
            current_mb=2039, comfortable_min_mb=759, boot_mb=2039, free_mb=1148,
            available_mb=215, pressure=0, chunk_kb=65536,
            driver_modes=["STARTED", "ENABLED", "GUESTCTL"]),
        storage=[v.StorageDetails(device="disk", adapter="scsi", ioscan="0/0/1/0.0.0", bus=0,
                                  slot=1, function=0, target=0, lun=0, storage="disk",
                                  location="/dev/rdsk/c3t2d0")],
        network=[v.NetworkDetails(interface="vswitch", adapter="lan", vswitch="vswitch1",
                                  port=1, ioscan="0/0/0/0", bus=0, slot=0, function=0,
                                  mac="f6-92-cf-35-86-78")],
        misc=[v.MiscDetails()])


GUIDE_VERBOSE = """\
[Virtual Machine Details]
Virtual Machine Name     : compass1
Virtual Machine UUID     : 43d82eb8-ff27-11d9-a431-00306e39f70b
Virtual Machine ID       : 2
Virtual Machine Label    :
VM's Model Name          : server Integrity Virtual Machine
VM's Serial Number       : VM00530001
VM's Config Version      : 3.0.0
VM's Config Label        : HPVM A.03.00.00 BL02 clearcase opt Wed Dec 06 2006 05h41m04s PST
Operating System         : HPUX
OS Version Number        :
State                    : On (OS)
Start type               : Manual
Console type             : vt100-plus
Guest's hostname         :
Guest's IP address       : 16.116.11.135
EFI location             : /opt/hpvm/guest-images/common/efi
Pattern File location    : /opt/hpvm/guest-images/common/patterns.vmmpat
Guest revision           : 1
Running on serverid      : 0
Running on pid           : 24447
Application controllers  : NONE
Distributed              : 0

[Authorized Administrators]
Oper Groups:
Admin Groups:
Oper Users:
Admin Users:

[Virtual CPU Details]
Number Virtual CPUs      : 1
Minimum Virtual CPUs     : 1
Maximum Virtual CPUs     : 4
Percent Entitlement      : 10.0%
Maximum Entitlement      : 100.0%

[Memory Details]
Total memory             : 2 GB
Minimum memory limit     : 512 MB
Maximum memory limit     : 64 GB
Reserved memory          : 64 MB
Minimum reserved limit   : 32 MB
Maximum reserved limit   : 64 GB
VHPT Size                : 1 MB

[Dynamic Memory Information]
Type                     : driver
Minimum memory           : 1024 MB
Target memory            : 2039 MB
Maximum memory           : 2048 MB
Current memory           : 2039 MB
Comfortable minimum      : 759 MB
Boot memory              : 2039 MB
Free memory              : 1148 MB
Available memory         : 215 MB
Memory pressure          : 0
Memory chunksize         : 65536 KB
Driver Mode(s)           : STARTED ENABLED GUESTCTL

[Storage Interface Details]
Guest Device type        : disk
Guest Adaptor type       : scsi
Ioscan format            : 0/0/1/0.0.0
Bus                      : 0
Device                   : 1
Function                 : 0
Target                   : 0
Lun                      : 0
Physical Storage type    : disk
Physical Device          : /dev/rdsk/c3t2d0

[Network Interface Details]
Physical Storage type    : vswitch
Guest Adaptor type       : lan
Backing                  : vswitch1
Vswitch Port             : 1
Ioscan format            : 0/0/0/0
Bus                      : 0
Device                   : 0
Function                 : 0
Mac Address              : f6-92-cf-35-86-78

[Misc Interface Details]
Guest Device type        : serial
Guest Adaptor type       : com1
Physical Storage type    : tty
Physical Device          : console
"""


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_verbose_view_is_the_guides_sample_line_for_line():
    assert t.guest_verbose(compass1()) == lines(GUIDE_VERBOSE)


def test_dynamic_memory_without_a_driver_shows_configured_values_only():
    dm = v.DynamicMemoryDetails(live=False, type="driver", min_mb=1024, target_mb=2048,
                                max_mb=3072)
    out = t.guest_verbose(compass1(dm))
    start = out.index("[Dynamic Memory Information]")
    assert out[start:start + 7] == [
        "[Dynamic Memory Information]",
        "NOTE: Dynamic data unavailable, configured values only",
        "Type                     : driver",
        "Minimum memory           : 1024 MB",
        "Target memory            : 2048 MB",
        "Maximum memory           : 3072 MB",
        "",
    ]


def test_cycles_entitlement_adds_its_mhz_line_and_table_shows_mhz():
    d = compass1()
    d.cpu = v.CpuDetails(vcpus=2, entitlement_percent=50.0, entitlement_mhz=700)
    out = t.guest_verbose(d)
    assert "Percent Entitlement      : 50.0%" in out
    assert "Entitlement cycles       : 700 Mhz" in out
    table = t.guest_table(d)
    i = table.index("[Virtual CPU Details]")
    assert table[i + 3] == "     2      700MHz  100.0%"


def test_roles_are_listed_under_their_headings():
    d = compass1()
    d.admins = v.AdministratorDetails(oper_groups=["ops"], admin_users=["testme1", "root2"])
    out = t.guest_verbose(d)
    i = out.index("[Authorized Administrators]")
    assert out[i + 1:i + 5] == ["Oper Groups: ops", "Admin Groups:", "Oper Users:",
                                "Admin Users: testme1, root2"]


GUIDE_TABLE = """\
[Virtual Machine Details]
Virtual Machine Name VM #  OS Type State
==================== ===== ======= ========
compass1                 2 HPUX    On (OS)

[Authorized Administrators]
Oper Groups:
Admin Groups:
Oper Users:
Admin Users:

[Virtual CPU Details]
#vCPUs Entitlement Maximum
====== =========== =======
     1       10.0%  100.0%

[Memory Details]
Total    Reserved
Memory   Memory
=======  ========
   2 GB     64 MB

[Dynamic Memory Information]
Minimum     Target      Maximum
Memory      Memory      Memory
=========== =========== ===========
    1024 MB     2039 MB     2048 MB

[Storage Interface Details]
Guest                                  Physical
Device  Adaptor    Bus Dev Ftn Tgt Lun Storage   Device
======= ========== === === === === === ========= =========================
disk    scsi         0   1   0   0   0 disk      /dev/rdsk/c3t2d0

[Network Interface Details]
Interface Adaptor    Name/Num   PortNum Bus Dev Ftn Mac Address
========= ========== ========== ======= === === === =================
vswitch   lan        vswitch1         1   0   0   0 f6-92-cf-35-86-78

[Misc Interface Details]
Guest                                  Physical
Device  Adaptor    Bus Dev Ftn Tgt Lun Storage   Device
======= ========== === === === === === ========= =========================
serial  com1                           tty       console
"""


def test_per_vm_table_form_follows_the_man_page_rulers():
    assert t.guest_table(compass1()) == lines(GUIDE_TABLE)


GUIDE_SUMMARY = """\
[Virtual Machines]
Virtual Machine Name VM #  OS Type State     #VCPUs #Devs #Nets Memory  Runsysid
==================== ===== ======= ========= ====== ===== ===== ======= ========
config1                  1 HPUX    Off            1     5     1  512 MB        0
config2                  2 HPUX    On (OS)        1     7     1    1 GB        0
winguest1                5 WINDOWS Off            1     5     1    1 GB        0
winguest2                9 WINDOWS On (OS)        1     3     1    2 GB        0
"""


def test_summary_table_is_the_guides_first_example():
    rows = [v.SummaryRow("config1", 1, "HPUX", "Off", 1, 5, 1, 512, 0),
            v.SummaryRow("config2", 2, "HPUX", "On (OS)", 1, 7, 1, 1024, 0),
            v.SummaryRow("winguest1", 5, "WINDOWS", "Off", 1, 5, 1, 1024, 0),
            v.SummaryRow("winguest2", 9, "WINDOWS", "On (OS)", 1, 3, 1, 2048, 0)]
    assert t.summary(rows) == lines(GUIDE_SUMMARY)


def test_summary_truncates_long_names_to_twenty_and_shows_invalid_guests():
    rows = [v.SummaryRow("a" * 30, 3, "LINUX", "On (EFI)", 2, 0, 0, 1536, 0),
            v.SummaryRow("broken", state="Invalid")]
    out = t.summary(rows)
    assert out[3] == "a" * 20 + "     3 LINUX   On (EFI)       2     0     0 1536 MB        0"
    assert out[4] == "broken".ljust(20) + " " * 15 + "Invalid".ljust(9) + " " * 35 + "0"


def test_host_resources_text_uses_the_guides_units_and_separator():
    h = v.HostResources(cpu_mhz=1400, memory_mb=12276, cpus=2, available_memory_mb=7367,
                        available_swap_mb=4707, max_vcpus_hpux=2, max_vcpus_windows=2,
                        max_vcpus_linux=2, available_entitlement_mhz=[1400, 1260])
    assert t.host_resources(h) == [
        "[HPVM Server System Resources]",
        "Processor speed = 1400 Mhz",
        "Total physical memory = 12276 Mbytes",
        "Total number of processors = 2",
        "Available memory = 7367 Mbytes",
        "Available swap space = 4707 Mbytes",
        "Maximum vcpus for an HP-UX virtual machine = 2",
        "Maximum vcpus for a Windows virtual machine = 2",
        "Maximum vcpus for a Linux virtual machine = 2",
        "Available entitlement for a 1 way virtual machine = 1400 Mhz",
        "Available entitlement for a 2 way virtual machine = 1260 Mhz",
    ]


def hpvm0014_devices() -> v.DeviceSpecs:
    return v.DeviceSpecs(
        name="hpvm0014",
        storage=[StorageResource("disk", "scsi", 0, 0, 1, "lv", "/dev/vg01/rlv2")],
        network=[NetworkResource("lan", 0, 1, "56-a3-e9-d7-40-99", "myswitch", 3)],
        misc=[CONSOLE_DEVICE])


def test_devices_view_prints_resource_specs_as_the_man_page():
    assert t.devices(hpvm0014_devices()) == [
        "[Virtual Machine Devices]",
        "[Storage Interface Details]",
        "disk:scsi:0,0,1:lv:/dev/vg01/rlv2",
        "[Network Interface Details]",
        "network:lan:0,1,0x56A3E9D74099:vswitch:myswitch",
        "[Misc Interface Details]",
        "serial:com1::tty:console",
    ]


def test_multi_server_view_and_its_unconfigured_message():
    m = v.MultiServer(configured=True, this_server_id=1, servers=[
        v.ServerEntry(1, 1, "1.2.3.4", "rake"), v.ServerEntry(2, 0, "1.3.5.7", "cloud")])
    assert t.multi_server(m) == [
        "HPVM Multi-server environment", "This servers identifier=1",
        "Server_id=1", "Server_state=1", "Server_ipaddr=1.2.3.4", "Server_hostname=rake",
        "Server_id=2", "Server_state=0", "Server_ipaddr=1.3.5.7", "Server_hostname=cloud"]
    assert t.multi_server(v.MultiServer()) == ["No HPVM multi-server environment configured"]


def test_scheduler_view_names_mode_controller_and_startable_guests():
    assert t.scheduler(v.SchedulerMode("NORMAL", [], ["vm1", "vm2"])) == [
        "HPVM scheduler is running in NORMAL mode.", "Startable virtual machines:",
        "vm1,vm2"]
    out = t.scheduler(v.SchedulerMode("CAPPED", ["vm3"], []))
    assert out[:3] == ["HPVM scheduler is running in CAPPED mode.",
                       "Controller process information:", "NAME=gWLM,GUEST=vm3"]


def test_events_table_lists_every_event_in_order():
    evs = [v.EventEntry(1, 1_700_000_000.0, "root", "guest.create", "compass1", "vcpus=1"),
           v.EventEntry(2, 1_700_000_060.5, "root", "guest.start", "compass1", "")]
    out = t.events(evs)
    assert out[0] == "[HPVM Event Log]"
    assert out[2].startswith("====== =================== ======== ====")
    assert out[3].split()[:6] == ["1", "2023-11-14", "22:13:20", "root", "compass1",
                                  "guest.create"]
    assert out[3].endswith("vcpus=1")
    assert out[4].split()[0] == "2" and out[4].endswith("guest.start")


# --- -M and -X -------------------------------------------------------------------------------

def every_view() -> list:
    res = v.ResourceAllocation(
        name="compass1", vm_number=1, state="On (OS)", vcpus=2, entitlement_percent=10.0,
        entitlement_mhz=None, percent_usage=10.0, cumulative_mcycles=16800, memory_mb=2048,
        current_memory_mb=2039, sampling_interval_s=60.0,
        vcpu_usage=[v.VcpuUsage(0, 8400, 10.0, 0.0, 140), v.VcpuUsage(1, 8400, 10.0, 0.0, 140)])
    invalid = v.InvalidGuestDetails(name="broken", file="uuids/x/vmm_config.current", line=7,
                                    reason="vcpus: 'x' is not a number")
    return [v.version_info(), compass1(),
            compass1(v.DynamicMemoryDetails(live=False, type="any", min_mb=1222,
                                            target_mb=2048, max_mb=6144)),
            invalid, hpvm0014_devices(),
            v.HostResources(1400, 12276, 2, 7367, 4707, 2, 2, 2, [1400, 1260]), res,
            v.EventEntry(3, 1_700_000_000.25, "root", "guest.modify", "compass1",
                         "resource=disk:scsi:0,0,1:lv:/dev/vg01/rlv2, vcpus=2"),
            v.SchedulerMode("CAPPED", ["vm3"], ["vm1", "vm2"]),
            v.MultiServer(True, 1, [v.ServerEntry(1, 1, "1.2.3.4", "rake"),
                                    v.ServerEntry(None, 0, "1.3.5.7", "cloud")]),
            v.MultiServer(),
            v.HostInfo(environment="host", model="ia64 hp server rx5670", serial="USR4319L4J",
                       partition_ident="a7d6d186-9f74-11d7-867a-636e2282571a",
                       machine_ident="a7d6d186-9f74-11d7-867a-636e2282571a",
                       hostname="rake", ipv4_addresses=["1.2.3.4"], cpus=2, cpu_mhz=1400,
                       memory_mb=12276, ipv6_addresses=["fe80::1", "2001:db8::7"])]


def test_machine_readable_output_parses_back_to_the_same_values():
    objs = every_view()
    text = formats.write_machine(objs)
    assert formats.parse_machine(text) == objs


def test_machine_readable_records_are_one_per_line_with_the_decided_delimiters():
    text = formats.write_machine([compass1()])
    out = text.splitlines()
    assert out[0].startswith("vm:compass1:43d82eb8-ff27-11d9-a431-00306e39f70b:2::")
    assert "dynmem:compass1:1:driver:1024:2039:2048:2039:759:2039:1148:215:0:65536:" \
           "STARTED,ENABLED,GUESTCTL" in out
    assert "storage:compass1:disk:scsi:0/0/1/0.0.0:0:1:0:0:0:disk:/dev/rdsk/c3t2d0" in out
    assert [line.split(":")[0] for line in out] == [
        "vm", "admins", "vcpu", "memory", "dynmem", "storage", "network", "misc"]
    res = formats.write_machine([every_view()[6]]).strip()
    assert res.endswith(":0;8400;10.0;0.0;140,1;8400;10.0;0.0;140")


def test_xml_output_parses_back_to_the_same_values():
    objs = every_view()
    doc = formats.write_xml("hpvmstatus", objs)
    root, back = formats.parse_xml(doc)
    assert root == "hpvmstatus"
    assert back == objs


def test_xml_document_follows_the_verbose_sections():
    from lxml import etree
    doc = etree.fromstring(formats.write_xml("hpvmstatus", [compass1()]).encode())
    vm = doc.find("virtual_machine")
    assert vm.get("name") == "compass1"
    assert [c.tag for c in vm] == ["vm", "admins", "vcpu", "memory", "dynmem", "storage",
                                   "network", "misc"]
    assert vm.find("memory/total_mb").text == "2048"
    assert vm.find("memory/total_mb").get("unit") == "MB"
    assert [i.text for i in vm.find("dynmem/driver_modes")] == ["STARTED", "ENABLED",
                                                                 "GUESTCTL"]
    assert vm.find("vm/pid").text == "24447"


def test_xml_reader_does_not_expand_entities():
    doc = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
           '<hpvmstatus><summary><name>&e;</name></summary></hpvmstatus>')
    _root, objs = formats.parse_xml(doc)
    assert "root:" not in objs[0].name


@pytest.mark.parametrize("text, message", [
    ("nosuch:1:2\n", "unknown record 'nosuch'"),
    ("vcpu:ghost:1:1:4:10.0:100.0:\n", "outside its guest"),
    ("host_resources:fast:1:2:3:4:2:2:2:1400\n", "not a valid int"),
    ("scheduler:CAPPED\n", "has 1 fields, expected 3"),
])
def test_machine_reader_names_the_bad_line(text, message):
    with pytest.raises(formats.FormatError) as err:
        formats.parse_machine(text)
    assert message in str(err.value)


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=20)
paths = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_/.-", min_size=1, max_size=40)


@settings(max_examples=40, deadline=None)
@given(name=names, vcpus=st.integers(1, 4), pct=st.floats(5, 100).map(lambda x: round(x, 1)),
       mem=st.integers(512, 65536), label=st.text(alphabet="abc XYZ09_.-", max_size=30),
       users=st.lists(names, max_size=3), pid=st.none() | st.integers(1, 99999),
       disks=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 7), st.integers(0, 14),
                                st.sampled_from(["disk", "lv", "file"]), paths), max_size=4))
def test_any_guest_view_round_trips_through_both_formats(name, vcpus, pct, mem, label, users,
                                                         pid, disks):
    d = compass1()
    d.machine.name, d.machine.label, d.machine.pid = name, label, pid
    d.cpu = v.CpuDetails(vcpus=vcpus, entitlement_percent=pct)
    d.memory.total_mb = mem
    d.admins = v.AdministratorDetails(oper_users=users)
    d.storage = [v.StorageDetails("disk", "scsi", f"0/{b}/{s}/0.{tg}.0", b, s, 0, tg, 0, k,
                                  "/" + p) for b, s, tg, k, p in disks]
    assert formats.parse_machine(formats.write_machine([d])) == [d]
    assert formats.parse_xml(formats.write_xml("hpvmstatus", [d]))[1] == [d]


free_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


@settings(max_examples=60, deadline=None)
@given(actor=free_text, kind=free_text, subject=free_text, detail=free_text,
       seq=st.integers(1, 10**9), when=st.floats(0, 4e9))
def test_text_holding_the_delimiters_still_round_trips(actor, kind, subject, detail, seq,
                                                       when):
    e = v.EventEntry(seq=seq, time=when, actor=actor, kind=kind, subject=subject,
                     detail=detail)
    text = formats.write_machine([e])
    assert text.count("\n") == 1          # one record, one line
    assert formats.parse_machine(text) == [e]
    assert formats.parse_xml(formats.write_xml("hpvmstatus", [e]))[1] == [e]


def test_delimiters_inside_values_are_escaped_and_plain_values_are_not():
    e = v.EventEntry(1, 0.0, "cim:admin", "guest.modify", "compass1",
                     "add=disk:scsi:0,0,1:lv:/dev/vg01/rlv2; 100%")
    line = formats.write_machine([e]).strip()
    assert line == ("event:1:0.0:cim%3Aadmin:guest.modify:compass1:"
                    "add=disk%3Ascsi%3A0%2C0%2C1%3Alv%3A/dev/vg01/rlv2%3B 100%25")
    with pytest.raises(formats.FormatError, match="bad escape"):
        formats.parse_machine("event:1:0.0:a%zz:k:s:\n")
