"""hpvmmgmt: the guest side of dynamic memory (spec 03 §6.4, hpvmmgmt(1M)), acting for one
guest with that guest's credential."""
from __future__ import annotations

import io
import os
import stat
from contextlib import redirect_stderr, redirect_stdout

import pytest

from agent import formats
from agent.api.guests import GuestChanges
from agent.api.workload import credential_path
from agent.cli import hpvmmgmt
from agent.clock import ManualClock
from agent.errors import AgentError
from guest_support import fingerprint, make_agent

DM = {"ram_dyn_type": "any", "ram_dyn_min": 1222, "ram_dyn_max": 6144}


@pytest.fixture
def env(tmp_path):
    clock = ManualClock()
    return make_agent(tmp_path / "state", clock=clock), clock, tmp_path / "state"


def running(agent, clock, name, *, control=True, kit="A.03.00", workload_mb=1655,
            memory_mb=6144):
    agent.create_guest(name, GuestChanges(memory_mb=memory_mb, dynmem={
        **DM, "ram_dyn_max": memory_mb,
        **({"dynamic_memory_control": True} if control else {})}))
    g = agent.find_guest(name)
    agent.set_guest_model(g, os="HPUX", kit=kit, workload_mb=workload_mb)
    agent.start_guest(g)
    clock.advance(40)
    return agent.find_guest(name)


def mgmt(agent, credential, *argv, guest=None, sleep=None):
    args = list(argv) + (["--credential", str(credential)] if credential else [])
    if guest:
        args += ["--guest", guest]
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = hpvmmgmt.main(args, agent=agent, sleep=sleep or (lambda s: None))
    return code, out.getvalue(), err.getvalue()


def test_the_host_makes_a_0600_credential_only_with_guest_control(env):
    a, clock, state = env
    g = running(a, clock, "guest1")
    path = state / credential_path(g.uuid)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert a.guest_credential_file(g) == str(path)
    a.modify_guest(g, GuestChanges(dynmem={"dynamic_memory_control": False}))
    assert not path.exists()
    with pytest.raises(AgentError):
        a.guest_credential_file(a.find_guest("guest1"))


def test_a_clone_gets_its_own_credential_and_control_ends_with_an_active_only_change(env):
    a, clock, state = env
    g = running(a, clock, "guest1", memory_mb=2048)
    a.clone_guest(g, "guest2")
    two = a.find_guest("guest2")
    one_cred, two_cred = (open(a.guest_credential_file(x), "rb").read() for x in (g, two))
    assert one_cred != two_cred and two.uuid.encode() in two_cred
    a.create_guest("guest3", GuestChanges(dynmem=dict(DM, ram_dyn_max=2048)))
    three = a.find_guest("guest3")
    a.start_guest(three)
    clock.advance(40)
    # -A: guest control for this boot only
    a.modify_guest(three, GuestChanges(dynmem={"dynamic_memory_control": True}),
                   active_only=True)
    path = a.guest_credential_file(three)
    a.reboot_guest(a.find_guest("guest3"))
    assert not os.path.exists(path)


def test_listing_in_the_guides_layouts(env):
    a, clock, state = env
    g = running(a, clock, "guest1")
    cred = a.guest_credential_file(g)
    code, out, err = mgmt(a, cred, "-l", "ram")
    assert code == 0, err
    assert out.splitlines() == ["[Dynamic Memory Information]", "=" * 39,
                                "Type                  : driver",
                                "Current memory        : 6135 MB",
                                "Target memory         : 6135 MB",
                                "Comfortable minimum   : 2167 MB"]
    a.set_memory_target(g, "2048M")
    clock.advance(60)
    code, out, _ = mgmt(a, cred, "-V", "-l", "ram")
    lines = out.splitlines()
    assert lines[2:6] == ["Type                  : driver", "Current memory        : 2103 MB",
                          "Target memory         : 2103 MB",
                          "Comfortable minimum   : 2167 MB"]
    assert lines[6:9] == ["Minimum memory        : 1222 MB", "Maximum memory        : 6144 MB",
                          "Boot memory           : 6135 MB"]
    assert lines[12] == "Memory chunksize      : 65536 KB"
    assert lines[13] == "Driver Mode(s): STARTED ENABLED GUESTCTL"
    assert len(lines) == 14


def test_setting_the_target_from_the_guest(env):
    a, clock, state = env
    g = running(a, clock, "guest1")
    cred = a.guest_credential_file(g)
    code, out, _ = mgmt(a, cred, "-x", "ram_target=2048M")
    assert code == 0 and out.splitlines()[-1] == \
        "Successfully began to change ram_target to 2103 MB."
    clock.advance(60)
    code, out, _ = mgmt(a, cred, "-x", "ram_target=4096M")
    assert out.splitlines() == ["Attempting to increase memory from 2103 MB to 4096 MB.",
                                "Successfully began to change ram_target to 4096 MB."]
    clock.advance(60)
    assert a.runtime(g).memory.current_mb == 4096
    code, out, _ = mgmt(a, cred, "-x", "ram_target=0")       # the comfortable minimum
    assert out.splitlines()[0] == "Attempting to decrease memory from 4096 MB to 2167 MB."
    clock.advance(60)
    code, out, _ = mgmt(a, cred, "-x", "ram_target=start")
    assert out.splitlines()[-1] == "Successfully began to change ram_target to 6135 MB."
    assert any(e.kind == "guest.memory_target" and e.actor == "guest:guest1"
               for e in a.store.events())


def test_a_credential_of_another_guest_is_refused_and_changes_nothing(env):
    a, clock, state = env
    one = running(a, clock, "guest1")
    two = running(a, clock, "guest2", memory_mb=2048)
    cred_two = a.guest_credential_file(two)
    before = fingerprint(state)
    code, out, err = mgmt(a, cred_two, "-x", "ram_target=2048M", guest="guest1")
    assert (code, out) == (1, "")
    assert err.splitlines() == ["hpvmmgmt: The credential does not belong to guest 'guest1'.",
                                "hpvmmgmt: Unable to continue."]
    assert fingerprint(state) == before
    with pytest.raises(AgentError) as exc:
        a.guest_session(one.uuid, "0" * 64)
    assert exc.value.kind == "denied"


def test_guest_control_off_refuses_the_old_credential(env):
    a, clock, state = env
    g = running(a, clock, "guest1")
    copy = state.parent / "cred"
    copy.write_bytes(open(a.guest_credential_file(g), "rb").read())
    copy.chmod(0o600)
    a.modify_guest(g, GuestChanges(dynmem={"dynamic_memory_control": False}))
    before = fingerprint(state)
    code, _, err = mgmt(a, copy, "-x", "ram_target=2048M")
    assert code == 1 and "dynamic_memory_control=0" in err
    assert fingerprint(state) == before


def test_a_credential_others_can_read_is_refused(env):
    a, clock, state = env
    g = running(a, clock, "guest1")
    copy = state.parent / "cred"
    copy.write_bytes(open(a.guest_credential_file(g), "rb").read())
    copy.chmod(0o644)
    code, _, err = mgmt(a, copy, "-l", "ram")
    assert code == 1 and "must not be readable by group or others" in err
    code, _, err = mgmt(a, None, "-l", "ram")
    assert code == 1 and "--credential" in err


def test_without_the_driver_the_guides_messages_verbatim(env):
    a, clock, state = env
    a.create_guest("guest0", GuestChanges(dynmem={"ram_dyn_type": "driver",
                                                  "dynamic_memory_control": True}))
    g = a.find_guest("guest0")
    a.set_guest_model(g, os="HPUX")                 # no guest kit
    a.start_guest(g)
    clock.advance(60)
    cred = a.guest_credential_file(g)
    before = fingerprint(state)
    code, out, err = mgmt(a, cred, "-V", "-l", "ram")
    assert (code, out) == (1, "")
    assert err.splitlines() == ["Dynamic memory driver not found on guest.",
                                "hpvmmgmt: Unable to continue."]
    code, out, err = mgmt(a, cred, "-x", "ram_target=2048")
    assert (code, out) == (1, "")
    assert err.splitlines() == ["Failed to open dynamic memory driver, error: No such device.",
                                "Failed to set dynamic value error: No such device",
                                "hpvmmgmt: Unable to continue."]
    assert fingerprint(state) == before


def test_a_guest_kit_of_another_release_does_not_work(env):
    a, clock, state = env
    g = running(a, clock, "guest1", kit="A.03.50")
    code, _, err = mgmt(a, a.guest_credential_file(g), "-l", "ram")
    assert code == 1
    assert err.splitlines() == ["hpvmmgmt: hpvmmgmt (A.03.50) and Integrity VM (A.03.00) are "
                                "at different revision levels.", "hpvmmgmt: Unable to continue."]


def test_summary_version_machine_and_xml_forms(env):
    a, clock, state = env
    g = running(a, clock, "guest1")
    cred = a.guest_credential_file(g)
    assert mgmt(a, cred)[1].splitlines() == ["Type    Guest Control", "======  =============",
                                             "ram     yes"]
    assert mgmt(a, cred, "-v")[1] == "hpvmmgmt: Version A.03.00\n"
    code, out, _ = mgmt(a, cred, "-M", "-l", "ram")
    (view,) = formats.parse_machine(out)
    dm = view.dynmem
    assert view.machine.name == "guest1"
    assert (dm.current_mb, dm.boot_mb, dm.driver_modes) == (6135, 6135,
                                                           ["STARTED", "ENABLED", "GUESTCTL"])
    code, out, _ = mgmt(a, cred, "-X", "-l", "ram")
    command, objs = formats.parse_xml(out)
    assert command == "hpvmmgmt" and objs[0].dynmem.comfortable_min_mb == 2167


def test_monitoring_with_an_interval(env):
    a, clock, state = env
    g = running(a, clock, "guest1")
    a.set_memory_target(g, "2048M")
    naps = []

    def sleep(seconds):
        naps.append(seconds)
        clock.advance(seconds)
    code, out, _ = mgmt(a, a.guest_credential_file(g), "-l", "ram", "-t", "5", "--count", "3",
                        sleep=sleep)
    assert code == 0 and naps == [5, 5]
    currents = [line.split(": ")[1] for line in out.splitlines()
                if line.startswith("Current memory")]
    assert currents == ["6135 MB", f"{6135 - 20 * 64} MB", f"{6135 - 40 * 64} MB"]


@pytest.mark.parametrize("argv", [
    ["-V", "-M", "-l", "ram"], ["-t", "5"], ["-l", "disk"], ["-l", "ram", "-t", "0"],
    ["-x", "ram_max=1G"], ["-x", "ram_target=lots"], ["-x", "ram_target=1G", "-l", "ram"],
    ["-x", "ram_target=1G", "-x", "ram_target=2G"], ["-l", "ram", "-l", "ram"], ["extra"],
])
def test_bad_command_lines_are_one_line_and_change_nothing(env, argv):
    a, clock, state = env
    g = running(a, clock, "guest1")
    cred = a.guest_credential_file(g)
    before = fingerprint(state)
    code, out, err = mgmt(a, cred, *argv)
    assert (code, out) == (1, "") and len(err.splitlines()) == 1
    assert fingerprint(state) == before
