"""hpvmmodel (docs/model-control.md), dynamic memory pressure, and caches shared by
processes that change one store."""
from __future__ import annotations

import pytest

from agent.api import Agent
from agent.api.guests import GuestChanges
from agent.cli import hpvmcreate, hpvmmodel, hpvmmodify, hpvmstart
from agent.clock import ManualClock
from guest_support import guide_host, init_state, make_agent, run_cli


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.delenv("VMPROVIDER_STATE_DIR", raising=False)
    return init_state(tmp_path / "state", efi_seconds=0.0, os_boot_seconds=0.0)


def test_hpvmmodel_set_show_attn_recover(state):
    run_cli(hpvmcreate.main, ["-P", "g"], state)
    assert run_cli(hpvmmodel.main, ["set", "-P", "g", "-O", "linux:rhel4", "-K", "A.03.00",
                                    "-W", "1G"], state) == (0, "", "")
    code, out, err = run_cli(hpvmmodel.main, ["show", "-P", "g"], state)
    assert "Installed OS        : LINUX rhel4" in out and "Workload            : 1024 MB" in out
    assert "State               : Off" in out
    code, out, err = run_cli(hpvmmodel.main, ["attn", "-P", "g"], state)
    assert code == 1 and err.startswith("hpvmmodel: The guest 'g' is not running.")
    run_cli(hpvmstart.main, ["-P", "g"], state)
    a = Agent(state)
    assert a.runtime(a.find_guest("g")).state == "On (OS)"
    assert a.find_guest("g").os_type == "LINUX"
    assert run_cli(hpvmmodel.main, ["attn", "-P", "g"], state)[0] == 0
    assert Agent(state).runtime(a.find_guest("g")).state == "On (ATTN!)"
    assert run_cli(hpvmmodel.main, ["recover", "-P", "g"], state)[0] == 0
    assert Agent(state).runtime(a.find_guest("g")).state == "On (OS)"
    # the detected OS reached the configuration file with the model change above
    assert "os_type = LINUX" in (state / "guests" / "g" / "vmm_config.current").read_text()


def test_os_removed_guest_stays_in_efi(state):
    run_cli(hpvmcreate.main, ["-P", "g"], state)
    run_cli(hpvmmodel.main, ["set", "-P", "g", "-O", "hpux"], state)
    run_cli(hpvmmodel.main, ["set", "-P", "g", "-O", "none"], state)
    run_cli(hpvmstart.main, ["-P", "g"], state)
    a = Agent(state)
    assert a.runtime(a.find_guest("g")).state == "On (EFI)"


def test_memory_pressure_rises_below_the_comfortable_minimum(tmp_path):
    clock = ManualClock()
    a = make_agent(tmp_path / "s", clock=clock)
    a.create_guest("compass1", GuestChanges(memory_mb=6144, dynmem={"ram_dyn_type": "driver"}))
    g = a.find_guest("compass1")
    a.set_guest_model(g, os="HPUX", kit="A.03.00", workload_mb=1655)   # comfortable 2167 MB
    a.start_guest(g)
    clock.advance(60)
    a.modify_guest(a.find_guest("compass1"), GuestChanges(ram_target=2048))
    clock.advance(60)
    mem = a.runtime(g).memory
    assert (mem.current_mb, mem.comfortable_min_mb) == (2103, 2167)
    assert 0 < mem.pressure < 100 and mem.free_mb == 0
    a.modify_guest(a.find_guest("compass1"), GuestChanges(ram_target=1024))
    clock.advance(60)
    mem = a.runtime(g).memory
    assert mem.pressure == 100 and mem.free_mb == 0          # hung (DECISIONS §2)
    out = a.modify_guest(a.find_guest("compass1"), GuestChanges(ram_target="start"))
    assert out.info[-1] == "Successfully began to change ram_target to 6135 MB."


def test_one_agent_sees_what_another_committed(tmp_path):
    state = tmp_path / "s"
    host = guide_host()
    first = make_agent(state, host=host)
    first.create_guest("a")
    assert [g.name for g in first.guests()] == ["a"]
    second = Agent(state, host=host)
    second.modify_guest(second.find_guest("a"), GuestChanges(memory_mb=1024, label="x"))
    second.create_guest("b")
    assert first.find_guest("a").memory_mb == 1024
    assert [g.name for g in first.guests()] == ["a", "b"]


def test_invalid_guest_keeps_its_name(state):
    run_cli(hpvmcreate.main, ["-P", "broken"], state)
    path = state / "guests" / "broken" / "vmm_config.current"
    path.write_text(path.read_text().replace("vcpus = 1", "vcpus = x"))
    code, out, err = run_cli(hpvmcreate.main, ["-P", "broken"], state)
    assert code == 1 and "already exists" in err


def test_select_by_number(state):
    run_cli(hpvmcreate.main, ["-P", "a"], state)
    run_cli(hpvmcreate.main, ["-P", "b"], state)
    assert run_cli(hpvmmodify.main, ["-p", "2", "-l", "second"], state)[0] == 0
    assert Agent(state).find_guest("b").label == "second"
    code, out, err = run_cli(hpvmstart.main, ["-p", "9"], state)
    assert code == 1 and err.startswith("hpvmstart: Unable to find the guest numbered 9.")


def test_threads_and_processes_share_one_store(tmp_path):
    import os
    import subprocess
    import sys
    import threading

    state = tmp_path / "s"
    host = guide_host()
    agent = make_agent(state, host=host)
    script = ("import sys\nfrom agent.api import Agent\na = Agent(sys.argv[1])\n"
              "for i in range(15):\n    a.create_guest(f'p{i}')\n")
    env = {k: v for k, v in os.environ.items() if k != "VMPROVIDER_STATE_DIR"}
    proc = subprocess.Popen([sys.executable, "-c", script, str(state)], env=env)
    errors = []

    def worker(prefix):
        try:
            for i in range(15):
                agent.create_guest(f"{prefix}{i}")
                agent.guests()
        except Exception as exc:       # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(p,)) for p in ("t", "u")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert proc.wait(timeout=120) == 0
    assert errors == []
    guests = Agent(state, host=host).guests()
    assert len(guests) == 45
    assert sorted(g.vm_number for g in guests) == list(range(1, 46))
    assert len({g.serial for g in guests}) == 45
    events = agent.store.events(kind="guest.create")
    assert len(events) == 45
