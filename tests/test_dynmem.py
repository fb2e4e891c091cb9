"""Dynamic memory on the host side (spec 03 §6, DECISIONS §2): the -x keywords and their
constraints, ram_target on a running guest, the twelve statistics, the guide's examples."""
from __future__ import annotations

import pytest

from agent.api.guests import GuestChanges
from agent.backends.ivm import SYSLOG
from agent.cli import hpvmclone, hpvmcreate, hpvmmodify, hpvmstatus
from agent.clock import ManualClock
from agent.errors import AgentError
from guest_support import fingerprint, init_state, make_agent, run_cli

GUIDE_DM = {"ram_dyn_type": "any", "ram_dyn_min": 1222, "ram_dyn_max": 6144}
DM_LABELS = ["Type", "Minimum memory", "Target memory", "Maximum memory", "Current memory",
             "Comfortable minimum", "Boot memory", "Free memory", "Available memory",
             "Memory pressure", "Memory chunksize", "Driver Mode(s)"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An agent on a ManualClock that the commands run in-process also use."""
    clock = ManualClock()
    agent = make_agent(tmp_path / "state", clock=clock)

    def opened(opts, argv):
        agent.command = " ".join(argv)
        return agent
    monkeypatch.setattr(hpvmmodify, "open_agent", opened)
    monkeypatch.setattr(hpvmstatus, "open_agent", opened)
    return agent, clock, tmp_path / "state"


def guide_guest(agent, clock, name="guest1", *, workload_mb=1655, kit="A.03.00", **dm):
    """The guide's 6 GB HP-UX guest with the guest kit, running in its OS."""
    agent.create_guest(name, GuestChanges(memory_mb=6144, dynmem={**GUIDE_DM, **dm}))
    g = agent.find_guest(name)
    agent.set_guest_model(g, os="HPUX", os_version="11.23", kit=kit, workload_mb=workload_mb)
    agent.start_guest(g)
    clock.advance(40)
    return agent.find_guest(name)


def dm_block(state) -> list[str]:
    code, out, err = run_cli(hpvmstatus.main, ["-V", "-P", "guest1"], state)
    assert code == 0, err
    lines = out.splitlines()
    i = lines.index("[Dynamic Memory Information]")
    return lines[i + 1:lines.index("", i)]


def value(block: list[str], label: str) -> str:
    return next(line.split(" : ", 1)[1] for line in block if line.startswith(label + " "))


# --- the keywords ----------------------------------------------------------------------------

def test_keywords_are_kept_on_create_modify_and_clone(tmp_path):
    state = init_state(tmp_path / "s")
    assert run_cli(hpvmcreate.main, ["-P", "guest1", "-r", "6G", "-x", "ram_dyn_type=any",
                                     "-x", "ram_dyn_min=1222M", "-x", "ram_dyn_max=6G",
                                     "-x", "ram_dyn_target_start=2G"], state)[0] == 0
    assert run_cli(hpvmmodify.main, ["-P", "guest1", "-x", "dynamic_memory_control=1"],
                   state)[0] == 0
    assert run_cli(hpvmclone.main, ["-P", "guest1", "-N", "guest2",
                                    "-x", "ram_dyn_target_start=3G"], state)[0] == 0
    from agent.api import Agent
    a = Agent(state)
    one, two = a.find_guest("guest1").dynmem, a.find_guest("guest2").dynmem
    assert (one.type, one.min_mb, one.max_mb, one.target_start_mb, one.control) == \
        ("any", 1222, 6144, 2048, True)
    assert (two.type, two.min_mb, two.max_mb, two.target_start_mb, two.control) == \
        ("any", 1222, 6144, 3072, True)


@pytest.mark.parametrize("xs", [
    ["ram_dyn_min=2G", "ram_dyn_max=2G"],                         # min < max
    ["ram_dyn_min=3G", "ram_dyn_max=2G"],
    ["ram_dyn_target_start=1222M"],                               # min < target_start
    ["ram_dyn_target_start=1G"],
    ["ram_dyn_target_start=6G", "ram_dyn_max=5G"],                # target_start <= max
    ["ram_dyn_min=7G", "ram_dyn_max=8G"],                         # min below the memory
])
def test_settings_that_break_the_ordering_are_refused_and_change_nothing(tmp_path, xs):
    state = init_state(tmp_path / "s")
    run_cli(hpvmcreate.main, ["-P", "guest1", "-r", "6G", "-x", "ram_dyn_type=any",
                              "-x", "ram_dyn_min=1222M", "-x", "ram_dyn_max=6G"], state)
    before = fingerprint(state)
    argv = ["-P", "guest1"]
    for x in xs:
        argv += ["-x", x]
    code, out, err = run_cli(hpvmmodify.main, argv, state)
    assert code == 1 and out == ""
    assert "ram_dyn_" in err and len(err.splitlines()) == 1
    assert fingerprint(state) == before


def test_a_new_memory_size_revalidates_the_ranges(tmp_path):
    state = init_state(tmp_path / "s")
    run_cli(hpvmcreate.main, ["-P", "guest1", "-r", "6G", "-x", "ram_dyn_type=driver",
                              "-x", "ram_dyn_min=1222M", "-x", "ram_dyn_max=6G",
                              "-x", "ram_dyn_target_start=5G"], state)
    assert run_cli(hpvmmodify.main, ["-P", "guest1", "-r", "4G"], state)[0] == 0
    from agent.api import Agent
    dm = Agent(state).find_guest("guest1").dynmem
    assert (dm.min_mb, dm.max_mb, dm.target_start_mb) == (1222, 4096, 4096)
    before = fingerprint(state)
    code, _, err = run_cli(hpvmmodify.main, ["-P", "guest1", "-r", "1G"], state)
    assert code == 1 and "ram_dyn_min (1222 MB)" in err
    assert fingerprint(state) == before


def test_ram_target_is_not_a_create_or_clone_keyword(tmp_path):
    state = init_state(tmp_path / "s")
    code, _, err = run_cli(hpvmcreate.main, ["-P", "g", "-x", "ram_target=1G"], state)
    assert code == 1 and "ram_target" in err


def test_ram_dyn_type_none_removes_the_range_and_control(tmp_path):
    state = init_state(tmp_path / "s")
    run_cli(hpvmcreate.main, ["-P", "guest1", "-r", "6G", "-x", "ram_dyn_type=any",
                              "-x", "ram_dyn_min=1222M", "-x", "dynamic_memory_control=1"], state)
    run_cli(hpvmmodify.main, ["-P", "guest1", "-x", "ram_dyn_type=none"], state)
    from agent.api import Agent
    dm = Agent(state).find_guest("guest1").dynmem
    assert (dm.type, dm.min_mb, dm.control) == ("none", None, None)


# --- the guide's examples --------------------------------------------------------------------

def test_a_6_gb_guest_boots_with_6135_mb(env):
    a, clock, state = env
    guide_guest(a, clock)
    block = dm_block(state)
    assert [line.split(" : ")[0].rstrip() for line in block] == DM_LABELS
    assert value(block, "Boot memory") == "6135 MB"
    assert value(block, "Current memory") == "6135 MB"
    assert value(block, "Target memory") == "6135 MB"
    assert value(block, "Memory chunksize") == "65536 KB"
    assert value(block, "Driver Mode(s)") == "STARTED ENABLED"
    # `any` became `driver` once the driver loaded (the boot decided)
    assert value(block, "Type") == "driver"


def test_ram_target_2048M_settles_at_2103_mb(env):
    a, clock, state = env
    guide_guest(a, clock)
    code, out, err = run_cli(hpvmmodify.main, ["-x", "ram_target=2048M", "-P", "guest1"], state)
    assert code == 0, err
    assert out.splitlines() == ["Attempting to decrease memory from 6135 MB to 2103 MB.",
                                "Successfully began to change ram_target to 2103 MB."]
    clock.advance(1)                                  # 256 MB/s: four chunks moved
    mem = a.runtime(a.find_guest("guest1")).memory
    assert (mem.current_mb, mem.target_mb, mem.moving) == (6135 - 4 * 64, 2103, True)
    clock.advance(60)
    block = dm_block(state)
    assert value(block, "Current memory") == "2103 MB"
    assert value(block, "Target memory") == "2103 MB"
    assert value(block, "Minimum memory") == "1222 MB"
    assert value(block, "Maximum memory") == "6144 MB"
    assert value(block, "Comfortable minimum") == "2167 MB"


def test_a_new_target_aborts_the_move_in_progress(env):
    a, clock, state = env
    guide_guest(a, clock)
    a.set_memory_target(a.find_guest("guest1"), "2048M")
    clock.advance(2)                                  # 8 chunks gone: 5623 MB
    out = a.set_memory_target(a.find_guest("guest1"), "start")
    assert out.info == ["Attempting to increase memory from 5623 MB to 6135 MB.",
                        "Successfully began to change ram_target to 6135 MB."]
    clock.advance(60)
    mem = a.runtime(a.find_guest("guest1")).memory
    assert (mem.current_mb, mem.moving) == (6135, False)


def test_a_squeezed_guest_shows_free_0_and_pressure_100(env):
    a, clock, state = env
    guide_guest(a, clock)                             # needs 2167 MB to be comfortable
    out = a.set_memory_target(a.find_guest("guest1"), 1024)
    assert out.info[0] == ("Warning: ram_target 1024 MB is outside the dynamic memory range "
                           "1222 MB - 6144 MB.")
    clock.advance(60)
    block = dm_block(state)
    # the shrink stops at ram_dyn_min, rounded up to a whole chunk removed from 6135 MB
    assert value(block, "Current memory") == "1271 MB"
    assert value(block, "Free memory") == "0 MB"
    assert value(block, "Memory pressure") == "100"
    # the guide's fix: give the guest memory again from the host
    a.set_memory_target(a.find_guest("guest1"), "4G")
    clock.advance(60)
    block = dm_block(state)
    assert value(block, "Memory pressure") == "0" and value(block, "Current memory") == "4096 MB"


def test_growth_stops_where_the_host_runs_out_of_memory(env):
    a, clock, state = env
    guide_guest(a, clock)
    a.set_memory_target(a.find_guest("guest1"), "2048M")
    clock.advance(60)
    # the 4 GB given back lets a second 6 GB guest start on the 12276 MB host
    a.create_guest("big", GuestChanges(memory_mb=6144))
    a.start_guest(a.find_guest("big"))
    assert a.host_resources().available_memory_mb == 1848
    out = a.set_memory_target(a.find_guest("guest1"), "start")
    assert out.info[-1] == "Successfully began to change ram_target to 6135 MB."
    clock.advance(60)
    mem = a.runtime(a.find_guest("guest1")).memory
    # 1848 MB free holds 1727 MB (+7 %): 26 whole chunks
    assert (mem.current_mb, mem.target_mb, mem.moving) == (2103 + 26 * 64, 6135, False)


def test_without_the_guest_kit_the_host_gets_the_guides_three_lines(env):
    a, clock, state = env
    a.create_guest("guest0", GuestChanges(dynmem={"ram_dyn_type": "driver", "ram_dyn_min": 1024,
                                                  "ram_dyn_max": 3072}))
    a.set_guest_model(a.find_guest("guest0"), os="HPUX")
    a.start_guest(a.find_guest("guest0"))
    clock.advance(60)
    before = fingerprint(state)
    code, out, err = run_cli(hpvmmodify.main, ["-x", "ram_target=2048M", "-P", "guest0"], state)
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "hpvmmodify: ERROR (guest0): Query to dynamic memory driver failed: Function is not "
        "available.",
        "hpvmmodify: Failed to set ram_target.",
        "hpvmmodify: Unable to modify the guest."]
    assert fingerprint(state) == before
    code, out, _ = run_cli(hpvmstatus.main, ["-V", "-P", "guest0"], state)
    lines = out.splitlines()
    i = lines.index("[Dynamic Memory Information]")
    assert lines[i + 1:i + 7] == ["NOTE: Dynamic data unavailable, configured values only",
                                  "Type                     : driver",
                                  "Minimum memory           : 1024 MB",
                                  "Target memory            : 2048 MB",
                                  "Maximum memory           : 3072 MB", ""]


def test_ram_target_needs_a_running_guest(env):
    a, clock, state = env
    a.create_guest("guest1", GuestChanges(memory_mb=6144, dynmem=dict(GUIDE_DM)))
    before = fingerprint(state)
    with pytest.raises(AgentError) as exc:
        a.set_memory_target(a.find_guest("guest1"), 2048)
    assert exc.value.kind == "state" and fingerprint(state) == before
    with pytest.raises(AgentError):
        a.set_memory_target(a.find_guest("guest1"), "lots")


def test_a_guest_kit_of_another_version_is_logged_and_leaves_dm_off(env):
    a, clock, state = env
    g = guide_guest(a, clock, kit="A.03.50")
    assert (state / SYSLOG).read_text().splitlines()[-2:] == [
        f"Nov 14 22:13:20 vmhost vmunix: (hpvmdvr) Dynamic memory version mismatch Guest "
        f"{g.vm_number}.", "Please update the guest kit"]
    block = dm_block(state)
    assert block[0] == "NOTE: Dynamic data unavailable, configured values only"
    assert value(block, "Type") == "any"          # the driver never loaded


def test_the_view_carries_typed_values_for_the_cim_side(env):
    a, clock, state = env
    guide_guest(a, clock, dynamic_memory_control=True)
    dm = a.status_details(name="guest1")[0].dynmem
    assert dm.live and dm.type == "driver"
    assert all(isinstance(getattr(dm, f), int) for f in (
        "min_mb", "target_mb", "max_mb", "current_mb", "comfortable_min_mb", "boot_mb",
        "free_mb", "available_mb", "pressure", "chunk_kb"))
    assert dm.driver_modes == ["STARTED", "ENABLED", "GUESTCTL"]
