"""host.toml: made from the machine on first use, read back as written, hand errors named."""
from __future__ import annotations

import os
import re
import stat
import threading
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.hostfacts import (HostDisk, LogicalVolume, Timings, load_host, parse_host,
                             probe_host, write_host)
from agent.store import Store


def fake_machine(tmp_path, *, swap_kb=8388608, mhz_khz="1600000", nics=None, cpuinfo=None):
    proc, sys = tmp_path / "proc", tmp_path / "sys"
    (proc / "net").mkdir(parents=True)
    (proc / "meminfo").write_text(f"MemTotal:       16777216 kB\nMemFree: 1 kB\n"
                                  f"SwapTotal:      {swap_kb} kB\n")
    (proc / "cpuinfo").write_text(cpuinfo or "processor\t: 0\ncpu MHz\t\t: 2400.123\n")
    (proc / "net/fib_trie").write_text(
        "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 10.1.2.3\n        /32 host LOCAL\n"
        "     |-- 127.0.0.1\n        /32 host LOCAL\n")
    (proc / "net/if_inet6").write_text(
        "fd000000000000000000000000000002 02 40 00 80 eth0\n"
        "00000000000000000000000000000001 01 80 10 80 lo\n")
    if mhz_khz is not None:
        freq = sys / "devices/system/cpu/cpu0/cpufreq"
        freq.mkdir(parents=True)
        (freq / "cpuinfo_max_freq").write_text(mhz_khz + "\n")
    for name, mac, physical in nics if nics is not None else [
            ("lo", "00:00:00:00:00:00", False), ("eth1", "AA:BB:CC:00:00:02", True),
            ("eth0", "aa:bb:cc:00:00:01", True), ("veth9", "aa:bb:cc:00:00:09", False)]:
        d = sys / "class/net" / name
        d.mkdir(parents=True)
        (d / "address").write_text(mac + "\n")
        if physical:
            (d / "device").mkdir()
    return str(proc), str(sys)


def test_probe_reads_the_machine(tmp_path):
    proc, sys = fake_machine(tmp_path)
    h = probe_host(proc=proc, sys=sys, hostname="hpvmhost")
    assert (h.memory_mb, h.swap_mb, h.cpu_mhz) == (16384, 8192, 1600)
    assert h.cpus >= 1 and h.hostname == "hpvmhost"
    # physical interfaces only, in name order, named like HP-UX host NICs
    assert [(n.name, n.device, n.mac) for n in h.nics] == [
        ("lan0", "eth0", "aa:bb:cc:00:00:01"), ("lan1", "eth1", "aa:bb:cc:00:00:02")]
    assert h.ip_addresses == ("10.1.2.3", "fd00::2")
    uuid.UUID(h.host_uuid)
    assert h.notes == ()


def test_probe_falls_back_with_a_note(tmp_path):
    proc, sys = fake_machine(tmp_path, swap_kb=0, mhz_khz=None, cpuinfo="processor : 0\n",
                             nics=[("veth0", "aa:bb:cc:00:00:07", False)])
    h = probe_host(proc=proc, sys=sys)
    assert h.cpu_mhz == 1000
    assert h.swap_mb == h.memory_mb + 4096
    # a container's virtual interface still gives the host a lan0
    assert [(n.name, n.device) for n in h.nics] == [("lan0", "veth0")]
    assert any("cpu_mhz = 1000" in n for n in h.notes)
    assert any("no swap" in n for n in h.notes)
    proc2, sys2 = fake_machine(tmp_path / "bare", nics=[])
    bare = probe_host(proc=proc2, sys=sys2)
    assert [n.name for n in bare.nics] == ["lan0"] and bare.nics[0].mac.startswith("02:")


def test_cpu_mhz_from_cpuinfo_when_sysfs_has_none(tmp_path):
    proc, sys = fake_machine(tmp_path, mhz_khz=None)
    assert probe_host(proc=proc, sys=sys).cpu_mhz == 2400


def test_first_use_writes_the_file_and_later_loads_read_it(tmp_path):
    state = tmp_path / "state"
    first = load_host(state)
    path = state / "host.toml"
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert first.source == str(path)
    # plausible, not exact: this depends on the real machine
    assert first.cpus >= 1 and first.cpu_mhz >= 1 and first.memory_mb >= 1
    assert first.nics and all(re.fullmatch(r"lan\d+", n.name) for n in first.nics)
    assert first.disks and first.logical_volumes
    again = load_host(state)
    assert again == first
    assert again.host_uuid == first.host_uuid          # stable identity
    [event] = Store(state).events(kind="host.create")
    assert event.subject == first.host_uuid


def test_first_use_by_two_threads_writes_one_file(tmp_path):
    state = tmp_path / "state"
    results = []
    threads = [threading.Thread(target=lambda: results.append(load_host(state)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len({r.host_uuid for r in results}) == 1
    assert len(Store(state).events(kind="host.create")) == 1


def test_edits_round_trip(tmp_path):
    state = tmp_path / "state"
    host = load_host(state)
    edited = replace(host, cpus=8, cpu_mhz=1400, memory_mb=32768,
                     timings=Timings(efi_seconds=1, os_boot_seconds=2, stop_seconds=3,
                                     memory_mb_per_second=512),
                     disks=host.disks + (HostDisk("/dev/rdsk/c9t0d0", 1024, wwid="0x6005"),),
                     logical_volumes=host.logical_volumes + (
                         LogicalVolume("/dev/vgtest/rdata", 512, "vgtest",
                                       ("/dev/rdsk/c9t0d0",)),))
    write_host(state, edited)
    back = load_host(state)
    assert back == edited
    assert back.disk("/dev/dsk/c9t0d0").wwid == "0x6005"
    assert back.logical_volume("/dev/vgtest/data").disks == ("/dev/rdsk/c9t0d0",)


def _good_text(tmp_path):
    return probe_host(proc=fake_machine(tmp_path)[0], sys=str(tmp_path / "sys"),
                      hostname="h").to_toml()


def _line_of(text, needle, nth=0):
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[nth]


@pytest.mark.parametrize("change, field, needle", [
    (lambda t: t.replace("cpus = ", "cpus = -", 1), "cpus", "cpus = "),
    (lambda t: t.replace("cpu_mhz = 1600", 'cpu_mhz = "fast"'), "cpu_mhz", "cpu_mhz = "),
    (lambda t: t.replace('name = "lan1"', 'name = "eth1"'), "nics[1].name", 'name = "eth1"'),
    (lambda t: t.replace('mac = "aa:bb:cc:00:00:02"', 'mac = "zz"'), "nics[1].mac", 'mac = "zz"'),
    (lambda t: t.replace('mac = "aa:bb:cc:00:00:02"', 'mac = "0xAABBCC000001"'), "nics[1].mac",
     'mac = "0xAABBCC000001"'),
    (lambda t: t.replace("stop_seconds = 3.0", "stop_seconds = -1"), "timings.stop_seconds",
     "stop_seconds"),
    (lambda t: t.replace('"/dev/rdsk/c4t2d0",\n]', '"/dev/rdsk/c99t0d0",\n]', 1),
     "logical_volumes[3].disks", "c99t0d0"),
    (lambda t: t.replace("[timings]", "colour = 3\n\n[timings]"), "colour", "colour = 3"),
    (lambda t: t.replace('kind = "dvd"', 'kind = "floppy"'), "disks[9].kind", 'kind = "floppy"'),
])
def test_hand_broken_file_names_file_line_and_field(tmp_path, change, field, needle):
    text = change(_good_text(tmp_path))
    with pytest.raises(ConfigError) as err:
        parse_host(text, "/st/host.toml")
    # a list value is reported at its first line (`disks = [`), two above the bad item here
    line = _line_of(text, needle) - (2 if needle == "c99t0d0" else 0)
    assert str(err.value).startswith(f"/st/host.toml:{line}: {field}")
    assert "\n" not in str(err.value)


def test_syntax_error_names_the_line(tmp_path):
    text = _good_text(tmp_path).replace('hostname = "h"', "hostname = h h")
    with pytest.raises(ConfigError, match=rf"^/x/host.toml:{_line_of(text, 'hostname')}: "
                                          "not valid TOML"):
        parse_host(text, "/x/host.toml")


def test_missing_required_field(tmp_path):
    text = re.sub(r"^memory_mb = .*\n", "", _good_text(tmp_path), flags=re.M)
    with pytest.raises(ConfigError, match=r"^host.toml:\d+: memory_mb: missing"):
        parse_host(text)


def test_broken_file_on_disk_is_reported_not_replaced(tmp_path):
    state = tmp_path / "state"
    load_host(state)
    path = state / "host.toml"
    path.write_text(path.read_text().replace("cpus = ", "cpus = 0 #", 1))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:\d+: cpus: "):
        load_host(state)
    assert "cpus = 0 #" in path.read_text()


def test_inline_entries_written_by_hand_are_located(tmp_path):
    text = _good_text(tmp_path)
    text = re.sub(r"\n\[\[nics\]\]\n(?:.+\n)+", "\n", text)
    text = text.replace("[timings]", 'nics = [\n  { name = "lan0", mac = "aa:bb:cc:00:00:01" },\n'
                                     '  { name = "lan0", mac = "aa:bb:cc:00:00:03" },\n]\n\n'
                                     "[timings]")
    with pytest.raises(ConfigError) as err:
        parse_host(text, "h.toml")
    assert str(err.value) == f"h.toml:{_line_of(text, 'aa:bb:cc:00:00:03')}: nics[1].name: " \
                             "lan0 is listed twice"


def test_default_file_describes_lv_disk_overlap(tmp_path):
    host = load_host(tmp_path / "state")
    disks = {d.path for d in host.disks}
    for lv in host.logical_volumes:
        assert lv.disks and set(lv.disks) <= disks
        assert lv.path.startswith(f"/dev/{lv.volume_group}/r")
    assert os.path.isabs(host.filesystems[0].mount)


def test_the_documented_example_is_a_valid_host_file():
    doc = (Path(__file__).resolve().parents[1] / "docs/host-file.md").read_text()
    example = doc.split("## Example", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    host = parse_host(example, "docs/host-file.md")
    assert (host.cpus, host.cpu_mhz, host.memory_mb) == (2, 1400, 16384)
    assert host.logical_volume("/dev/vg01/lvol1").disks == ("/dev/rdsk/c4t1d0",)
    assert host.nic("lan0").mac == "00:30:6e:4a:92:b4"
