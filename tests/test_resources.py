"""The resource grammar of hpvmresources(5): the guide's examples, every refusal, round trips,
MACs and address allocation (agent/resources.py, docs/resources.md)."""
from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import AgentError
from agent.resources import (
    CONSOLE_DEVICE, MAX_STORAGE_PER_VM, NetworkResource, ResourceError, StorageResource,
    VALID_STORAGE, address_of, check_mac, complete_network, complete_storage,
    default_world_writable_dir, format_mac, format_misc, format_resource, generate_mac,
    ioscan_path, media_name, next_network_address, next_storage_address, parse_mac,
    parse_resource, selector_matches, storage_adapters,
)


def never(_path: str) -> bool:
    return False


def parse(text: str, purpose: str = "add", **kw):
    kw.setdefault("world_writable", never)
    return parse_resource(text, purpose=purpose, **kw)


def S(device, bus=None, slot=None, target=None, storage="", location=""):
    return StorageResource(device, "scsi", bus, slot, target, storage, location)


def N(bus=None, slot=None, mac=None, vswitch="", port=None):
    return NetworkResource("lan", bus, slot, mac, vswitch, port)


# --- every example the guide shows -----------------------------------------------------------

GUIDE_STORAGE = [
    # hpvmresources(5)
    ("add", "disk:scsi:0,1,0:disk:/dev/rdsk/c1t2d0", S("disk", 0, 1, 0, "disk", "/dev/rdsk/c1t2d0")),
    ("add", "dvd:scsi::null:/docs", S("dvd", storage="null", location="/docs")),
    ("add", "tape:scsi::attach:/dev/rscsi/c6t5d0", S("tape", storage="attach", location="/dev/rscsi/c6t5d0")),
    # chapter 7: per backing type
    ("add", "disk:scsi::disk:/dev/rdsk/c19t0d2", S("disk", storage="disk", location="/dev/rdsk/c19t0d2")),
    ("add", "disk:scsi::lv:/dev/lvrackA/rdisk2", S("disk", storage="lv", location="/dev/lvrackA/rdisk2")),
    ("add", "disk:scsi::lv:/dev/vx/rdsk/VxvmTest1/vxvm_2", S("disk", storage="lv", location="/dev/vx/rdsk/VxvmTest1/vxvm_2")),
    ("add", "disk:scsi::file:/fdev/frackA/disk1", S("disk", storage="file", location="/fdev/frackA/disk1")),
    ("add", "dvd:scsi::disk:/dev/rdsk/c0t0d0", S("dvd", storage="disk", location="/dev/rdsk/c0t0d0")),
    ("add", "dvd:scsi::file:/var/opt/hpvm/ISOimages/hpux/0603-FOE-D1.iso", S("dvd", storage="file", location="/var/opt/hpvm/ISOimages/hpux/0603-FOE-D1.iso")),
    ("add", "dvd:scsi::null:/dev/rdsk/c0t0d0", S("dvd", storage="null", location="/dev/rdsk/c0t0d0")),
    ("add", "dvd:scsi::file:/var/opt/hpvm/ISO-images/hpux/", S("dvd", storage="file", location="/var/opt/hpvm/ISO-images/hpux/")),
    ("add", "changer:scsi::attach:/dev/rscsi/c6t0d0", S("changer", storage="attach", location="/dev/rscsi/c6t0d0")),
    ("add", "burner:scsi::attach:/dev/rscsi/c4t3d0", S("burner", storage="attach", location="/dev/rscsi/c4t3d0")),
    ("add", "disk:scsi::disk:/dev/rdsk/c3t2d0", S("disk", storage="disk", location="/dev/rdsk/c3t2d0")),
    ("add", "dvd:scsi::disk:/dev/rdsk/c1t1d2", S("dvd", storage="disk", location="/dev/rdsk/c1t1d2")),
    ("add", "disk:scsi::lv:/dev/vg00/rguest1", S("disk", storage="lv", location="/dev/vg00/rguest1")),
    ("add", "dvd:scsi::file:/var/opt/hpvm/ISO-images/linux/RHEL4-U4-ia64-AS-disc1.iso", S("dvd", storage="file", location="/var/opt/hpvm/ISO-images/linux/RHEL4-U4-ia64-AS-disc1.iso")),
    ("add", "dvd:scsi::file:/var/opt/myguest.file", S("dvd", storage="file", location="/var/opt/myguest.file")),
    ("add", "dvd:scsi:,,2:file:/iso/a.iso", S("dvd", None, None, 2, "file", "/iso/a.iso")),
    # -m needs the full address; it may change the storage type
    ("modify", "disk:scsi:0,1,1:lv:/dev/lvrackA/rdisk2", S("disk", 0, 1, 1, "lv", "/dev/lvrackA/rdisk2")),
    ("modify", "dvd:scsi:0,0,1:file:/ISO/SmartSetup.iso", S("dvd", 0, 0, 1, "file", "/ISO/SmartSetup.iso")),
    ("modify", "disk:scsi:0,0,4:disk:/dev/rdsk/c2t2d1", S("disk", 0, 0, 4, "disk", "/dev/rdsk/c2t2d1")),
    # -d: the address alone, or the backing alone
    ("delete", "disk:scsi:0,0,2", S("disk", 0, 0, 2)),
    ("delete", "dvd:scsi:0,0,0", S("dvd", 0, 0, 0)),
    ("delete", "disk:scsi::disk:/dev/rdsk/c3t2d0", S("disk", storage="disk", location="/dev/rdsk/c3t2d0")),
    # hpvmclone -b: the location may be empty
    ("clone_boot", "disk:scsi:0,0,0:disk:", S("disk", 0, 0, 0, "disk", "")),
    # hpvmstatus -d output read back
    ("config", "disk:scsi:0,0,1:lv:/dev/vg01/rlv2", S("disk", 0, 0, 1, "lv", "/dev/vg01/rlv2")),
]

GUIDE_NETWORK = [
    ("add", "network:lan:0,1,02-02-03-04-05-06:vswitch:net1", N(0, 1, "02-02-03-04-05-06", "net1")),
    ("add", "network:lan::vswitch:clan0", N(vswitch="clan0")),
    ("add", "network:lan:,,:vswitch:myswitch", N(vswitch="myswitch")),
    ("add", "network:lan:0,0,0x00306E39F70B:vswitch:clan1", N(0, 0, "00-30-6e-39-f7-0b", "clan1")),
    ("add", "network:lan::vswitch:vmlan4:portid:1", N(vswitch="vmlan4", port=1)),
    ("add", "network:lan::vswitch:switch1", N(vswitch="switch1")),
    ("add", "network:lan:,,aa-bb-cc-00-11-22:vswitch:net1", N(mac="aa-bb-cc-00-11-22", vswitch="net1")),
    ("add", "network:lan:,,0xaabbcc001122:vswitch:net1", N(mac="aa-bb-cc-00-11-22", vswitch="net1")),
    ("modify", "network:lan:0,2,1a-01-5a-8e-99-fa:vswitch:myswitch", N(0, 2, "1a-01-5a-8e-99-fa", "myswitch")),
    ("delete", "network:lan:0,1", N(0, 1)),
    ("config", "network:lan:0,1,0x56A3E9D74099:vswitch:myswitch", N(0, 1, "56-a3-e9-d7-40-99", "myswitch")),
]


@pytest.mark.parametrize("purpose,text,expected", GUIDE_STORAGE + GUIDE_NETWORK,
                         ids=[t for _, t, _ in GUIDE_STORAGE + GUIDE_NETWORK])
def test_guide_examples_parse_to_their_fields(purpose, text, expected):
    res = parse(text, purpose)
    assert res == expected
    assert parse(format_resource(res), purpose) == res


def test_hpvmstatus_d_lines_are_formatted_as_the_guide_prints_them():
    assert format_resource(S("disk", 0, 0, 1, "lv", "/dev/vg01/rlv2")) == \
        "disk:scsi:0,0,1:lv:/dev/vg01/rlv2"
    assert format_resource(N(0, 1, "56-a3-e9-d7-40-99", "myswitch", port=3), show_port=False) \
        == "network:lan:0,1,0x56A3E9D74099:vswitch:myswitch"
    assert format_misc() == "serial:com1::tty:console"
    assert format_misc(CONSOLE_DEVICE) == "serial:com1::tty:console"


def test_format_keeps_omitted_parts_empty():
    assert format_resource(S("dvd", storage="null", location="/docs")) == "dvd:scsi::null:/docs"
    assert format_resource(S("dvd", None, None, 2, "file", "/a.iso")) == "dvd:scsi:,,2:file:/a.iso"
    assert format_resource(S("disk", 0, 0, 2)) == "disk:scsi:0,0,2"
    assert format_resource(S("disk", 0, 0, 0, "disk", "")) == "disk:scsi:0,0,0:disk:"
    assert format_resource(N(0, 1)) == "network:lan:0,1"
    assert format_resource(N(mac="aa-bb-cc-00-11-22", vswitch="n"), mac_style="dash") == \
        "network:lan:,,aa-bb-cc-00-11-22:vswitch:n"
    assert format_resource(N(vswitch="vmlan4", port=2)) == "network:lan::vswitch:vmlan4:portid:2"


def test_keywords_are_case_insensitive_and_stored_lowercase():
    assert parse("DISK:SCSI::LV:/dev/vg00/rGuest") == S("disk", storage="lv", location="/dev/vg00/rGuest")
    assert parse("Network:LAN::VSwitch:sw1:PortId:4") == N(vswitch="sw1", port=4)


# --- every malformed spec: one line naming the field ------------------------------------------

BAD = [
    ("add", "dsk:scsi::disk:/dev/rdsk/c1t2d0", "device type", "Invalid device type 'dsk' in resource 'dsk:scsi::disk:/dev/rdsk/c1t2d0'"),
    ("add", "disk:ide::disk:/dev/rdsk/c1t2d0", "adapter type", "Invalid adapter type 'ide'"),
    ("add", "network:scsi::vswitch:sw", "adapter type", "Invalid adapter type 'scsi'"),
    ("add", "disk:scsi:7,0,0:disk:/dev/rdsk/c1t2d0", "PCI bus", "Invalid PCI bus '7'"),
    ("add", "disk:scsi:x,0,0:disk:/dev/rdsk/c1t2d0", "PCI bus", "Invalid PCI bus 'x'"),
    ("add", "disk:scsi:0,8,0:disk:/dev/rdsk/c1t2d0", "PCI slot", "Invalid PCI slot '8'"),
    ("add", "disk:scsi:0,-1,0:disk:/dev/rdsk/c1t2d0", "PCI slot", "Invalid PCI slot '-1'"),
    ("add", "disk:scsi:0,0,15:disk:/dev/rdsk/c1t2d0", "SCSI target", "Invalid SCSI target '15'"),
    ("add", "disk:scsi:0,0:disk:/dev/rdsk/c1t2d0", "hardware address", "Invalid hardware address '0,0'"),
    ("add", "disk:scsi:0,0,0,0:disk:/dev/rdsk/c1t2d0", "hardware address", "Invalid hardware address '0,0,0,0'"),
    ("add", "disk:scsi::dsk:/dev/rdsk/c1t2d0", "storage type", "Invalid storage type 'dsk'"),
    ("add", "disk:scsi::null:/docs", "storage type", "a disk takes disk, lv or file"),
    ("add", "disk:scsi::attach:/dev/rscsi/c6t5d0", "storage type", "Invalid storage type 'attach'"),
    ("add", "dvd:scsi::lv:/dev/vg00/rlvol1", "storage type", "a dvd takes disk, file or null"),
    ("add", "tape:scsi::disk:/dev/rdsk/c1t2d0", "storage type", "a tape takes attach"),
    ("add", "disk:scsi:::/dev/rdsk/c1t2d0", "storage type", "Missing storage type"),
    ("add", "disk:scsi::disk:", "physical device", "Missing physical device"),
    ("add", "disk:scsi::disk:dev/rdsk/c1t2d0", "physical device", "an absolute path is required"),
    ("add", "disk:scsi::file:/images/a,b", "physical device", "must not contain ':', ';' or ','"),
    ("add", "disk:scsi::file:/images/a;b", "physical device", "must not contain ':', ';' or ','"),
    ("add", "disk:scsi::file:/images/a:b", "physical device", "Invalid physical device '/images/a:b'"),
    ("add", "disk:scsi::file:/images/a\nb", "physical device", "control characters"),
    ("add", "disk:scsi::file:/images/", "physical device", "not a directory"),
    ("add", "disk:scsi::file:/" + "a" * 1100, "physical device", "longer than 1023"),
    ("add", "disk:scsi:0,0,0", "resource", "Invalid resource 'disk:scsi:0,0,0'"),
    ("add", "disk:scsi::disk", "resource", "Invalid resource"),
    ("add", "disk", "resource", "Invalid resource 'disk'"),
    ("add", "", "resource", "Missing resource"),
    ("add", "network:lan", "resource", "Invalid resource 'network:lan'"),
    ("add", "network:lan::vswitch", "resource", "Invalid resource"),
    ("add", "network:lan::", "resource", "Invalid resource"),
    ("add", "network:lan:0,1", "vswitch", "Missing vswitch"),
    ("add", "network:lan::vswtch:sw1", "network backing type", "Invalid network backing type 'vswtch'"),
    ("add", "network:lan::vswitch:", "vswitch name", "Missing vswitch name"),
    ("add", "network:lan::vswitch:vmlan9000", "vswitch name", "Invalid vswitch name 'vmlan9000'"),
    ("add", "network:lan::vswitch:my sw", "vswitch name", "Invalid vswitch name 'my sw'"),
    ("add", "network:lan::vswitch:sw1:port:1", "port keyword", "Invalid port keyword 'port'"),
    ("add", "network:lan::vswitch:sw1:portid:0", "port number", "Invalid port number '0'"),
    ("add", "network:lan::vswitch:sw1:portid:101", "port number", "Invalid port number '101'"),
    ("add", "network:lan::vswitch:sw1:portid:", "port number", "Invalid port number ''"),
    ("add", "network:lan:0,1,2,3:vswitch:sw1", "hardware address", "Invalid hardware address '0,1,2,3'"),
    ("add", "network:lan:0,9,:vswitch:sw1", "PCI slot", "Invalid PCI slot '9'"),
    ("add", "network:lan:,,aa-bb-cc-00-11:vswitch:sw1", "MAC address", "Invalid MAC address 'aa-bb-cc-00-11'"),
    ("add", "network:lan:,,0xAABBCC00112:vswitch:sw1", "MAC address", "Invalid MAC address '0xAABBCC00112'"),
    ("add", "network:lan:,,aa:bb:cc:00:11:22:vswitch:sw1", "resource", "Invalid resource"),
    ("add", "network:lan:,,01-00-5e-00-00-01:vswitch:sw1", "MAC address", "multicast"),
    ("add", "network:lan:,,ff-ff-ff-ff-ff-ff:vswitch:sw1", "MAC address", "multicast or broadcast"),
    ("add", "network:lan:,,0x000000000000:vswitch:sw1", "MAC address", "all-zero"),
    ("modify", "disk:scsi::lv:/dev/vg00/rlvol1", "hardware address", "-m needs the full hardware address"),
    ("modify", "disk:scsi:0,1,:lv:/dev/vg00/rlvol1", "hardware address", "-m needs the full hardware address"),
    ("modify", "disk:scsi:0,1,1", "resource", "Invalid resource"),
    ("modify", "network:lan:,,1a-01-5a-8e-99-fa:vswitch:myswitch", "hardware address", "-m needs the hardware address bus,device"),
    ("delete", "disk:scsi:0,0,", "hardware address", "-d needs bus,device,target"),
    ("delete", "disk:scsi::", "resource", "Invalid resource"),
    ("delete", "disk:scsi::disk:", "physical device", "Missing physical device"),
    ("delete", "network:lan:0,", "hardware address", "-d needs bus,device"),
    ("delete", "network:lan:", "hardware address", "-d needs bus,device"),
    ("clone_boot", "dvd:scsi:0,0,0:file:", "device type", "-b duplicates disks only"),
    ("clone_boot", "disk:scsi::disk:", "hardware address", "-b needs bus,device,target"),
    ("clone_boot", "network:lan:0,1", "device type", "-b duplicates storage"),
    ("config", "disk:scsi::lv:/dev/vg00/rlvol1", "hardware address", "config needs the full"),
    ("config", "network:lan:0,1:vswitch:sw", "MAC address", "Missing MAC address"),
]


@pytest.mark.parametrize("purpose,text,field,words", BAD, ids=[repr(t[1])[:60] for t in BAD])
def test_malformed_spec_gives_one_line_naming_the_field(purpose, text, field, words):
    with pytest.raises(ResourceError) as info:
        parse(text, purpose, command="hpvmmodify")
    err = info.value
    assert err.field == field
    assert err.kind == "invalid"
    assert len(err.lines) == 1 and "\n" not in err.lines[0]
    assert err.lines[0].startswith("hpvmmodify: ")
    assert words in err.lines[0]


def test_error_without_command_has_no_prefix_and_is_an_agent_error():
    with pytest.raises(AgentError) as info:
        parse("dsk:scsi::disk:/dev/rdsk/c1t2d0")
    assert info.value.lines == ["Invalid device type 'dsk' in resource "
                                "'dsk:scsi::disk:/dev/rdsk/c1t2d0': expected disk, dvd, tape, "
                                "changer, burner or network"]


def test_unknown_purpose_is_a_programming_error():
    with pytest.raises(ValueError):
        parse_resource("disk:scsi::disk:/x", purpose="remove")


def test_every_device_storage_pair_is_accepted_exactly_when_the_table_says():
    for device in ("disk", "dvd", "tape", "changer", "burner"):
        for storage in ("disk", "lv", "file", "null", "attach"):
            text = f"{device}:scsi::{storage}:/dev/x"
            if storage in VALID_STORAGE[device]:
                assert parse(text).storage == storage
            else:
                with pytest.raises(ResourceError, match="Invalid storage type"):
                    parse(text)


# --- null must not be a world-writable directory (the real filesystem) ------------------------

def test_null_on_world_writable_directory_is_refused(tmp_path):
    open_dir = tmp_path / "isos"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o755)
    os.chmod(closed, 0o755)
    assert default_world_writable_dir(str(open_dir))
    assert not default_world_writable_dir(str(closed))
    assert not default_world_writable_dir(str(tmp_path / "missing"))
    with pytest.raises(ResourceError, match="must not be a world-writable directory") as info:
        parse_resource(f"dvd:scsi::null:{open_dir}")
    assert info.value.field == "physical device"
    # the guide's file:/dir/ form is a NullDVD over a directory too
    with pytest.raises(ResourceError, match="world-writable"):
        parse_resource(f"dvd:scsi::file:{open_dir}/")
    assert parse_resource(f"dvd:scsi::null:{closed}").location == str(closed)
    # a plain world-writable *file* is not the null rule's business
    iso = tmp_path / "a.iso"
    iso.write_bytes(b"x" * 2048)
    os.chmod(iso, 0o666)
    assert parse_resource(f"dvd:scsi::file:{iso}").storage == "file"


def test_world_writable_check_is_injectable_and_skipped_for_config_and_delete():
    seen = []

    def always(path):
        seen.append(path)
        return True

    with pytest.raises(ResourceError):
        parse_resource("dvd:scsi::null:/docs", world_writable=always)
    assert seen == ["/docs"]
    assert parse_resource("dvd:scsi:0,0,1:null:/docs", purpose="config", world_writable=always)
    assert parse_resource("dvd:scsi::null:/docs", purpose="delete", world_writable=always)
    assert seen == ["/docs"]


def test_media_names():
    assert media_name(S("disk", storage="lv")) == "Virtual LvDisk"
    assert media_name(S("disk", storage="file")) == "Virtual FileDisk"
    assert media_name(S("disk", storage="disk")) == "Virtual Disk"
    assert media_name(S("dvd", storage="disk", location="/dev/rdsk/c0t0d0")) == "Virtual DVD"
    assert media_name(S("dvd", storage="file", location="/iso/a.iso")) == "Virtual FileDVD"
    assert media_name(S("dvd", storage="file", location="/iso/")) == "Virtual NullDVD"
    assert media_name(S("dvd", storage="null", location="/docs")) == "Virtual NullDVD"
    assert media_name(S("tape", storage="attach")) == "Attached Tape"


def test_ioscan_paths_follow_the_guide():
    assert ioscan_path(S("disk", 0, 1, 0)) == "0/0/1/0.0.0"
    assert ioscan_path(S("dvd", 0, 1, 7)) == "0/0/1/0.7.0"
    assert ioscan_path(N(0, 0)) == "0/0/0/0"


# --- selectors ---------------------------------------------------------------------------------

def test_selectors_pick_the_device_the_guide_means():
    c7 = S("disk", 0, 1, 0, "disk", "/dev/rdsk/c7t0d0")
    c3 = S("disk", 0, 1, 1, "disk", "/dev/rdsk/c3t2d0")
    dvd = S("dvd", 0, 1, 2, "file", "/iso/a.iso")
    devices = [c7, c3, dvd]
    by_backing = parse("disk:scsi::disk:/dev/rdsk/c3t2d0", "delete")
    assert [d for d in devices if selector_matches(by_backing, d)] == [c3]
    by_address = parse("disk:scsi:0,1,0", "delete")
    assert [d for d in devices if selector_matches(by_address, d)] == [c7]
    wrong_type = parse("dvd:scsi:0,1,0", "delete")
    assert not any(selector_matches(wrong_type, d) for d in devices)
    new = parse("disk:scsi:0,1,1:lv:/dev/lvrackA/rdisk2", "modify")
    assert [d for d in devices if selector_matches(address_of(new), d)] == [c3]
    assert not selector_matches(new, c3)     # the backing in -m is the new one
    nics = [N(0, 0, "f6-92-cf-35-86-78", "vswitch1", 1), N(0, 1, "56-a3-e9-d7-40-99", "myswitch", 1)]
    assert [n for n in nics if selector_matches(parse("network:lan:0,1", "delete"), n)] == [nics[1]]
    assert [n for n in nics if selector_matches(parse("network:lan::vswitch:vswitch1", "delete"), n)] == [nics[0]]
    assert [n for n in nics if selector_matches(parse("network:lan:,,0xF692CF358678:vswitch:vswitch1", "delete"), n)] == [nics[0]]
    assert not selector_matches(parse("network:lan:0,1", "delete"), c7)
    assert not selector_matches(by_address, nics[0])


# --- MAC addresses -----------------------------------------------------------------------------

def test_mac_forms():
    assert parse_mac("0xAABBCC001122") == "aa-bb-cc-00-11-22"
    assert parse_mac("0Xaabbcc001122") == "aa-bb-cc-00-11-22"
    assert parse_mac("AA-BB-CC-00-11-22") == "aa-bb-cc-00-11-22"
    assert format_mac("56-a3-e9-d7-40-99", "hex") == "0x56A3E9D74099"
    assert format_mac("0x00306E3977AB", "hexlower") == "0x00306e3977ab"
    assert format_mac("0xF692CF358678", "dash") == "f6-92-cf-35-86-78"
    for bad in ("aa-bb-cc-00-11", "aabbcc001122", "0xaabbcc00112g", "aa-bb-cc-00-11-22-33", "", "a-bb-cc-00-11-22"):
        with pytest.raises(ResourceError) as info:
            parse_mac(bad)
        assert info.value.field == "MAC address"
    with pytest.raises(ValueError):
        format_mac("aa-bb-cc-00-11-22", "colon")


def test_check_mac_refuses_host_nic_macs_and_duplicates():
    host = {"lan0": "0x00306e3977ab", "lan1": "0x00306E4A92EF"}
    with pytest.raises(ResourceError) as info:
        check_mac("00-30-6e-39-77-ab", host_macs=host)
    assert info.value.kind == "conflict"
    assert "the VM Host's network adapter lan0" in info.value.lines[0]
    with pytest.raises(ResourceError, match="a VM Host network adapter"):
        check_mac("0x00306E4A92EF", host_macs=list(host.values()))
    with pytest.raises(ResourceError, match="already in use") as info:
        check_mac("0x1A015A8E99FA", taken=["1a-01-5a-8e-99-fa"])
    assert info.value.kind == "conflict"
    with pytest.raises(ResourceError, match="multicast"):
        check_mac("03-00-00-00-00-01")
    # the guide's own universally administered example MAC is acceptable
    assert check_mac("0x00306E39F70B", host_macs=host, taken=["de-19-57-23-74-bd"]) == \
        "00-30-6e-39-f7-0b"


class ScriptedRng:
    """Returns the given 48-bit values in turn (to force collisions)."""

    def __init__(self, values):
        self.values = list(values)

    def getrandbits(self, bits):
        assert bits == 48
        return self.values.pop(0)


def test_generate_mac_skips_taken_and_host_macs():
    taken = "02-00-00-00-00-01"
    host = "02-00-00-00-00-02"
    rng = ScriptedRng([0x020000000001, 0x020000000002, 0x020000000003])
    assert generate_mac(rng, taken=[taken], host_macs={"lan0": host}) == "02-00-00-00-00-03"
    # raw bits are forced to locally administered unicast
    assert generate_mac(ScriptedRng([0xFFFFFFFFFFFF])) == "fe-ff-ff-ff-ff-ff"
    assert generate_mac(ScriptedRng([0])) == "02-00-00-00-00-00"


def test_generate_mac_gives_up_with_one_line_when_everything_is_taken():
    class Stuck:
        def getrandbits(self, bits):
            return 0x020000000001

    with pytest.raises(AgentError) as info:
        generate_mac(Stuck(), taken=["02-00-00-00-00-01"])
    assert info.value.lines == ["Unable to generate a unique MAC address"]


def test_generate_mac_default_rng_gives_valid_distinct_macs():
    macs = {generate_mac() for _ in range(50)}
    assert len(macs) == 50
    for mac in macs:
        assert int(mac[:2], 16) & 0x03 == 0x02


macs_st = st.integers(min_value=0, max_value=2**48 - 1).map(
    lambda v: "-".join(f"{v:012x}"[i:i + 2] for i in range(0, 12, 2)))


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32), taken=st.lists(macs_st, max_size=30),
       host=st.lists(macs_st, max_size=4))
def test_generated_mac_is_never_taken_or_a_host_mac_and_passes_the_checks(seed, taken, host):
    rng = random.Random(seed)
    # make collisions likely: also take what this rng would produce first
    first = generate_mac(random.Random(seed))
    taken = taken + [first]
    mac = generate_mac(rng, taken=taken, host_macs=host)
    assert mac not in taken and mac not in host
    assert check_mac(mac, host_macs=host, taken=taken) == mac
    first_octet = int(mac[:2], 16)
    assert first_octet & 0x01 == 0 and first_octet & 0x02 == 0x02


# --- address allocation and limits -------------------------------------------------------------

def test_first_device_gets_0_0_0_and_the_next_fills_the_same_adapter():
    assert next_storage_address([]) == (0, 0, 0)
    # the Windows example: disk then dvd -> 0,0,0 and 0,0,1
    disk = complete_storage(parse("disk:scsi::disk:/dev/rdsk/c3t2d0"), [])
    dvd = complete_storage(parse("dvd:scsi::disk:/dev/rdsk/c0t0d0"), [disk])
    assert (disk.bus, disk.slot, disk.target) == (0, 0, 0)
    assert (dvd.bus, dvd.slot, dvd.target) == (0, 0, 1)


def test_add_fills_the_next_target_on_the_existing_adapter_as_in_the_guide():
    existing = [S("disk", 0, 1, 0, "disk", "/dev/rdsk/c7t0d0")]
    assert next_storage_address(existing, nics=[N(0, 0, "f6-92-cf-35-86-78", "vswitch1")]) == (0, 1, 1)


def test_gaps_left_by_delete_are_reused_without_renumbering():
    existing = [S("disk", 0, 1, 0, "disk", "/a"), S("disk", 0, 1, 2, "disk", "/c")]
    assert next_storage_address(existing) == (0, 1, 1)


def test_new_adapter_skips_slots_used_by_vnics():
    assert next_storage_address([], nics=[N(0, 0), N(0, 1)]) == (0, 2, 0)
    assert next_network_address([], storage=[S("disk", 0, 0, 0)]) == (0, 1)
    assert next_network_address([N(0, 0), N(0, 1)], storage=[S("disk", 0, 2, 0)]) == (0, 3)


def test_partial_addresses_are_honoured():
    existing = [S("disk", 0, 0, 0), S("disk", 0, 0, 2)]
    assert next_storage_address(existing, target=2) == (0, 1, 2)      # ,,2 with 0,0,2 taken
    assert next_storage_address(existing, target=1) == (0, 0, 1)
    assert next_storage_address(existing, bus=1) == (1, 0, 0)
    assert next_storage_address(existing, bus=0, slot=0) == (0, 0, 1)
    assert next_storage_address(existing, bus=2, slot=5, target=9) == (2, 5, 9)
    assert next_storage_address(existing, slot=3) == (0, 3, 0)
    assert next_network_address([N(0, 0)], bus=3) == (3, 0)
    assert next_network_address([N(0, 0)], slot=0) == (1, 0)
    assert next_network_address([], bus=0, slot=5) == (0, 5)


def test_occupied_addresses_are_refused_as_conflicts():
    existing = [S("disk", 0, 0, 0)]
    with pytest.raises(ResourceError, match="0,0,0 is already in use") as info:
        next_storage_address(existing, bus=0, slot=0, target=0)
    assert info.value.kind == "conflict"
    with pytest.raises(ResourceError, match="used by a virtual network device") as info:
        next_storage_address([], nics=[N(0, 1)], bus=0, slot=1)
    assert info.value.kind == "conflict"
    with pytest.raises(ResourceError, match="PCI slot 0,0 is already in use"):
        next_network_address([], storage=existing, bus=0, slot=0)


def test_fifteen_devices_per_adapter_then_a_new_adapter():
    existing = [S("disk", 0, 0, t) for t in range(15)]
    assert next_storage_address(existing) == (0, 1, 0)
    with pytest.raises(ResourceError, match="already has 15 devices") as info:
        next_storage_address(existing, bus=0, slot=0)
    assert info.value.kind == "capacity"
    # bus 0: both adapters have target 14 taken, every other slot holds a vNIC
    crowded = [S("disk", 0, 0, 14), S("disk", 0, 1, 14)]
    with pytest.raises(ResourceError, match="No free hardware address for a storage device "
                       "at 0,,14") as info:
        next_storage_address(crowded, nics=[N(0, s) for s in range(2, 8)], bus=0, target=14)
    assert info.value.kind == "capacity"


def test_thirty_storage_devices_per_vm():
    existing = []
    for _ in range(MAX_STORAGE_PER_VM):
        existing.append(complete_storage(S("disk", storage="disk", location="/x"), existing))
    assert len({(d.bus, d.slot, d.target) for d in existing}) == 30
    assert storage_adapters(existing) == {(0, 0): set(range(15)), (0, 1): set(range(15))}
    with pytest.raises(ResourceError, match="at most 30") as info:
        next_storage_address(existing)
    assert info.value.kind == "capacity"
    assert len(info.value.lines) == 1


def test_network_slots_run_out_after_56():
    nics = [N(b, s) for b in range(7) for s in range(8)]
    with pytest.raises(ResourceError, match="No free PCI slot") as info:
        next_network_address(nics)
    assert info.value.kind == "capacity"
    assert next_network_address(nics[:-1]) == (6, 7)


def test_complete_network_fills_address_and_mac():
    rng = random.Random(7)
    storage = [S("disk", 0, 0, 0, "disk", "/d")]
    first = complete_network(parse("network:lan::vswitch:localnet"), [], storage=storage, rng=rng)
    assert (first.bus, first.slot) == (0, 1) and first.mac and first.port is None
    second = complete_network(parse("network:lan::vswitch:localnet"), [first], storage=storage,
                              rng=ScriptedRng([int(first.mac.replace("-", ""), 16), 0x0A0000000001]))
    assert (second.bus, second.slot) == (0, 2) and second.mac == "0a-00-00-00-00-01"
    given_mac = parse("network:lan:,,0x00306E39F70B:vswitch:clan1")
    assert complete_network(given_mac, [first]).mac == "00-30-6e-39-f7-0b"
    with pytest.raises(ResourceError, match="VM Host's network adapter lan0"):
        complete_network(given_mac, [], host_macs={"lan0": "0x00306E39F70B"})
    with pytest.raises(ResourceError, match="already in use"):
        complete_network(parse(f"network:lan:,,{first.mac}:vswitch:x"), [first])


# --- property tests: parse(format(x)) == x -----------------------------------------------------

_segment = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFXYZ0123456789_-. +@"),
                   min_size=1, max_size=12)
locations = st.lists(_segment, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))
opt = lambda lo, hi: st.one_of(st.none(), st.integers(lo, hi))  # noqa: E731


@st.composite
def storage_resources(draw, purpose):
    device = draw(st.sampled_from(sorted(VALID_STORAGE)))
    storage = draw(st.sampled_from(VALID_STORAGE[device]))
    location = draw(locations)
    if device == "dvd" and storage == "file" and draw(st.booleans()):
        location += "/"
    if purpose == "add":
        bus, slot, target = draw(opt(0, 6)), draw(opt(0, 7)), draw(opt(0, 14))
    else:
        bus, slot, target = draw(st.integers(0, 6)), draw(st.integers(0, 7)), draw(st.integers(0, 14))
    if purpose == "delete" and draw(st.booleans()):
        storage, location = "", ""
    return StorageResource(device, "scsi", bus, slot, target, storage, location)


unicast = st.integers(0, 2**48 - 1).map(lambda v: v & ~(1 << 40)).filter(bool).map(
    lambda v: "-".join(f"{v:012x}"[i:i + 2] for i in range(0, 12, 2)))
vswitch_names = st.text(alphabet=st.sampled_from("abcxyzABC0129_.-"), min_size=1, max_size=8)


@st.composite
def network_resources(draw, purpose):
    full = purpose in ("modify", "config")
    bus = draw(st.integers(0, 6) if full else opt(0, 6))
    slot = draw(st.integers(0, 7) if full else opt(0, 7))
    mac = draw(unicast if purpose == "config" else st.one_of(st.none(), unicast))
    vswitch = draw(vswitch_names)
    port = draw(opt(1, 100))
    return NetworkResource("lan", bus, slot, mac, vswitch, port)


@pytest.mark.parametrize("purpose", ["add", "modify", "config", "delete"])
@settings(max_examples=300, deadline=None)
@given(data=st.data(), mac_style=st.sampled_from(["hex", "dash", "hexlower"]))
def test_parse_format_round_trip_storage(purpose, data, mac_style):
    res = data.draw(storage_resources(purpose))
    assert parse(format_resource(res, mac_style=mac_style), purpose) == res


@pytest.mark.parametrize("purpose", ["add", "modify", "config", "delete"])
@settings(max_examples=300, deadline=None)
@given(data=st.data(), mac_style=st.sampled_from(["hex", "dash", "hexlower"]))
def test_parse_format_round_trip_network(purpose, data, mac_style):
    res = data.draw(network_resources(purpose))
    assert parse(format_resource(res, mac_style=mac_style), purpose) == res


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("diskcvnetworla:,/0123456789xX-;"), max_size=40))
def test_any_text_parses_or_fails_with_one_resource_error_line(text):
    try:
        res = parse(text)
    except ResourceError as err:
        assert len(err.lines) == 1 and err.field
    else:
        assert parse(format_resource(res)) == res


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_allocation_never_collides_and_respects_limits(data):
    nic_slots = data.draw(st.sets(st.tuples(st.integers(0, 6), st.integers(0, 7)), max_size=20))
    nics = [N(b, s) for b, s in nic_slots]
    storage: list[StorageResource] = []
    for _ in range(data.draw(st.integers(1, 35))):
        want = data.draw(st.tuples(opt(0, 6), opt(0, 7), opt(0, 14)))
        try:
            res = complete_storage(S("disk", *want, "disk", "/x"), storage, nics=nics)
        except ResourceError as err:
            assert err.kind in ("conflict", "capacity") and len(err.lines) == 1
            continue
        assert all(v == w for v, w in zip((res.bus, res.slot, res.target), want) if w is not None)
        storage.append(res)
    addresses = [(d.bus, d.slot, d.target) for d in storage]
    assert len(addresses) == len(set(addresses)) <= MAX_STORAGE_PER_VM
    adapters = storage_adapters(storage)
    assert not set(adapters) & nic_slots
    assert all(len(t) <= 15 for t in adapters.values())
    new_nic = next_network_address(nics, storage=storage) if len(nic_slots) + len(adapters) < 56 else None
    if new_nic:
        assert new_nic not in nic_slots and new_nic not in adapters
