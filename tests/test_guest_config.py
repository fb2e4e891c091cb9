"""The vmm_config text format: round trip, and a broken file marks only its guest Invalid,
naming the file and the line."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.cli import hpvmcreate, hpvmmodify, hpvmstart
from agent.errors import ConfigError
from agent.guest import DynamicMemoryConfig, Entitlement, Guest, RoleGrant
from agent.guestconfig import format_config, parse_config
from agent.resources import NetworkResource, StorageResource
from guest_support import init_state, make_agent, run_cli

names = st.from_regex(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,30}", fullmatch=True)
accounts = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}", fullmatch=True)
labels = st.from_regex(r"[A-Za-z0-9_. -]{0,40}", fullmatch=True).map(str.strip)
paths = st.from_regex(r"/[A-Za-z0-9_.]{1,12}(/[A-Za-z0-9_.-]{1,12}){0,3}", fullmatch=True)
macs = st.integers(0, 2 ** 48 - 1).map(
    lambda v: "-".join(f"{(v | (2 << 40)) & ~(1 << 40):012x}"[i:i + 2] for i in range(0, 12, 2)))
storage = st.builds(StorageResource, device=st.sampled_from(["disk", "dvd", "tape"]),
                    bus=st.integers(0, 6), slot=st.integers(0, 7), target=st.integers(0, 14),
                    storage=st.sampled_from(["disk", "lv", "file", "null", "attach"]),
                    location=paths)
nics = st.builds(NetworkResource, bus=st.integers(0, 6), slot=st.integers(0, 7), mac=macs,
                 vswitch=st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True),
                 port=st.one_of(st.none(), st.integers(1, 100)))
entitlements = st.one_of(
    st.builds(Entitlement, percent=st.integers(5, 100).map(float), mhz=st.none()),
    st.builds(Entitlement, percent=st.none(), mhz=st.integers(1, 5000)))
dynmem = st.builds(DynamicMemoryConfig, control=st.one_of(st.none(), st.booleans()),
                   type=st.sampled_from(["none", "any", "driver"]),
                   min_mb=st.one_of(st.none(), st.integers(1, 9999)),
                   max_mb=st.one_of(st.none(), st.integers(1, 9999)),
                   target_start_mb=st.one_of(st.none(), st.integers(1, 9999)))
guests = st.builds(
    Guest, uuid=st.uuids().map(str), name=names, vm_number=st.integers(1, 99999),
    serial=st.integers(0, 10 ** 8 - 1).map(lambda n: f"VM{n:08d}"),
    os_type=st.sampled_from(["HPUX", "WINDOWS", "LINUX", "UNKNOWN"]), os_version=labels,
    vcpus=st.integers(1, 4), entitlement=entitlements, memory_mb=st.integers(1, 65536),
    storage=st.lists(storage, max_size=4), nics=st.lists(nics, max_size=3), label=labels,
    start_attr=st.sampled_from(["auto", "manual"]), dynmem=dynmem,
    roles=st.lists(st.builds(RoleGrant, kind=st.sampled_from(["user", "group"]), name=accounts,
                             role=st.sampled_from(["admin", "oper"])), max_size=3),
    app_controller=st.sampled_from(["NONE", "SG", "SG_pkg1", "GWLM", "SG_a,GWLM"]),
    distributed=st.booleans(), reserved_mb=st.one_of(st.none(), st.integers(1, 4096)))


@settings(max_examples=60, deadline=None)
@given(guests)
def test_format_then_parse_is_identity(g):
    assert parse_config(format_config(g), "vmm_config.current") == g


@pytest.mark.parametrize("mutate,line_of,reason", [
    (lambda t: t.replace("vcpus = 1", "vcpus = lots"), "vcpus", "not a whole number"),
    (lambda t: t.replace("memory = 2048M", "memory = 2GB"), "memory", "not a size"),
    (lambda t: t + "colour = blue\n", "colour", "unknown key 'colour'"),
    (lambda t: t.replace("start_attr = auto", "start_attr = always"), "start_attr", "auto or manual"),
    (lambda t: t + "name = again\n", "name = again", "given twice"),
    (lambda t: t.replace("label = ", "label - broken"), "label - broken", "expected 'key = value'"),
    (lambda t: t + "storage = disk:scsi:0,0:disk:/dev/x\n", "storage", "bus,slot,target"),
])
def test_broken_config_marks_only_that_guest_invalid(tmp_path, mutate, line_of, reason):
    state = init_state(tmp_path / "state")
    for name in ("good1", "broken", "good2"):
        assert run_cli(hpvmcreate.main, ["-P", name], state)[0] == 0
    path = state / "guests" / "broken" / "vmm_config.current"
    text = mutate(path.read_text())
    path.write_text(text)
    want_line = next(i for i, l in enumerate(text.split("\n"), 1) if l.startswith(line_of))
    a = make_agent(state)
    assert [g.name for g in a.guests()] == ["good1", "good2"]
    [inv] = a.invalid_guests()
    assert inv.name == "broken" and inv.line == want_line and reason in inv.reason
    assert inv.file.endswith("/vmm_config.current")
    assert a.runtime(inv).state == "Invalid"
    # every other guest keeps working
    assert run_cli(hpvmmodify.main, ["-P", "good1", "-c", "2"], state)[0] == 0
    assert run_cli(hpvmstart.main, ["-P", "good2"], state)[0] == 0
    # and the broken one is named with its file and line
    code, out, err = run_cli(hpvmstart.main, ["-P", "broken"], state)
    assert code == 1
    assert f"vmm_config.current:{want_line}: " in err.splitlines()[0]


def test_parse_error_names_file_and_line():
    with pytest.raises(ConfigError) as exc:
        parse_config(b"uuid = nope\n", "uuids/x/vmm_config.current")
    assert exc.value.path == "uuids/x/vmm_config.current" and exc.value.line >= 1


def test_missing_config_file_is_invalid(tmp_path):
    state = init_state(tmp_path / "state")
    run_cli(hpvmcreate.main, ["-P", "gone"], state)
    (state / "guests" / "gone" / "vmm_config.current").unlink()
    a = make_agent(state)
    [inv] = a.invalid_guests()
    assert inv.name == "gone" and "missing" in inv.reason


def test_a_broken_guest_can_be_removed_with_F(tmp_path):
    from agent.cli import hpvmremove
    state = init_state(tmp_path / "state")
    run_cli(hpvmcreate.main, ["-P", "broken"], state)
    run_cli(hpvmcreate.main, ["-P", "fine"], state)
    path = state / "guests" / "broken" / "vmm_config.current"
    path.write_text("garbage\n")
    code, out, err = run_cli(hpvmremove.main, ["-P", "broken", "-Q"], state)
    assert code == 1 and "vmm_config.current:1: expected 'key = value'" in err
    assert run_cli(hpvmremove.main, ["-P", "broken", "-F"], state) == (0, "", "")
    a = make_agent(state)
    assert a.invalid_guests() == [] and [g.name for g in a.guests()] == ["fine"]
    assert not (state / "guests" / "broken").exists()
    assert run_cli(hpvmcreate.main, ["-P", "broken"], state)[0] == 0
