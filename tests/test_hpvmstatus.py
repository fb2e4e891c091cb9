"""hpvmstatus end to end: a state folder laid out as the agent keeps it, read back through the
Agent's views and the command line.

Guests are written into the store the way the agent writes them (vmm_config.current, the
guests/<name> link, the ivm runtime and model facts, an event per change); the host is
`<state>/host.toml`. The host and guests reproduce the guide's `hpvmstatus -s` sample:
2 x 1400 MHz, 12276 MB, two 1-vCPU 10 % guests running.
"""
from __future__ import annotations

import time
import uuid as uuidlib

import pytest

from agent import formats
from agent.api import Agent
from agent.api import views as v
from agent.backends.ivm import ModelFacts, RuntimeFacts, model_path, runtime_path
from agent.cli import hpvmstatus
from agent.clock import ManualClock
from agent.guest import DynamicMemoryConfig, Entitlement, Guest, RoleGrant
from agent.guestconfig import format_config
from agent.hostfacts import HostFacts
from agent.resources import NetworkResource, StorageResource
from agent.store import Store

# The CLI runs on the system clock, so the store's times are set relative to the real now.
NOW = float(int(time.time()))
HOST = HostFacts(cpus=2, cpu_mhz=1400, memory_mb=12276, swap_mb=7805,
                 host_uuid="a7d6d186-9f74-11d7-867a-636e2282571a", hostname="rake",
                 model="ia64 hp server rx5670", serial="USR4319L4J",
                 ip_addresses=("1.2.3.4",))


def write_host(state, host=HOST):
    (state / "host.toml").write_text(host.to_toml())


def define(state, name, number, *, running=False, os_installed=True, kit="", clock_now=NOW,
           **config) -> Guest:
    """Lay a guest down as the agent does: config, name link, runtime/model facts, events."""
    g = Guest(uuid=str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, name)), name=name,
              vm_number=number, serial=f"VM{number:08d}", **config)
    store = Store(state, clock=ManualClock(clock_now - 3600))
    with store.transaction(actor="root") as txn:
        txn.write(f"uuids/{g.uuid}/vmm_config.current", format_config(g))
        txn.symlink(f"guests/{name}", f"../uuids/{g.uuid}")
        txn.event("guest.create", g.uuid, name=name, vcpus=g.vcpus)
    if os_installed or kit:
        with store.transaction(actor="root") as txn:
            txn.write(model_path(g.uuid), ModelFacts(os=g.os_type if os_installed else "",
                                                     kit=kit).to_bytes())
            txn.event("guest.model", g.uuid, os=g.os_type)
    if running:
        with store.transaction(actor="root") as txn:
            txn.write(runtime_path(g.uuid), RuntimeFacts(phase="running",
                                                         started_at=clock_now - 600,
                                                         pid=20000 + number, boots=1).to_bytes())
            txn.event("guest.start", g.uuid)
    return g


@pytest.fixture
def state(tmp_path, monkeypatch):
    s = tmp_path / "state"
    s.mkdir(mode=0o700)
    write_host(s)
    monkeypatch.setenv("VMPROVIDER_STATE_DIR", str(s))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    return s


def agent_on(state) -> Agent:
    return Agent(state, clock=ManualClock(NOW))


def run(capsys, *argv):
    code = hpvmstatus.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def guide_host(state):
    """The guide's -s sample: two running 1-vCPU 10 % guests (1549 MB each fits 7367 MB and
    4707 MB exactly with the DECISIONS §1.5 arithmetic)."""
    define(state, "guest1", 1, running=True, memory_mb=1549, os_type="HPUX")
    define(state, "guest2", 2, running=True, memory_mb=1549, os_type="HPUX")


# --- -s ---------------------------------------------------------------------------------------

def test_host_resources_reproduce_the_guides_sample(state, capsys):
    guide_host(state)
    h = agent_on(state).host_resources()
    assert h.available_entitlement_mhz == [1400, 1260]
    code, out, err = run(capsys, "-s")
    assert code == 0 and err == ""
    assert out.splitlines() == [
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


def test_host_resources_follow_what_runs(state):
    define(state, "idle", 1, memory_mb=1549)
    h = agent_on(state).host_resources()
    assert h.available_entitlement_mhz == [1400, 1400]   # nothing runs: all of it is free
    assert h.available_swap_mb == 7805


# --- summary ----------------------------------------------------------------------------------

def test_summary_lists_guests_by_number_with_state_and_counts(state, capsys):
    define(state, "config1", 1, memory_mb=512, os_type="HPUX",
           storage=[StorageResource("disk", "scsi", 0, 0, i, "disk", f"/dev/rdsk/c1t{i}d0")
                    for i in range(5)],
           nics=[NetworkResource("lan", 0, 1, "f6-92-cf-35-86-78", "vswitch1", 1)])
    define(state, "winguest2", 9, running=True, memory_mb=2048, os_type="WINDOWS",
           storage=[StorageResource("disk", "scsi", 0, 0, 0, "file", "/tmp/w2")],
           nics=[NetworkResource("lan", 0, 1, "f6-92-cf-35-86-79", "vswitch1", 2)])
    define(state, "config2", 2, memory_mb=1024, os_type="HPUX", os_installed=False,
           running=True)
    code, out, _ = run(capsys)
    assert code == 0
    assert out.splitlines() == [
        "[Virtual Machines]",
        "Virtual Machine Name VM #  OS Type State     #VCPUs #Devs #Nets Memory  Runsysid",
        "==================== ===== ======= ========= ====== ===== ===== ======= ========",
        "config1                  1 HPUX    Off            1     5     1  512 MB        0",
        "config2                  2 HPUX    On (EFI)       1     0     0    1 GB        0",
        "winguest2                9 WINDOWS On (OS)        1     1     1    2 GB        0",
    ]


def test_no_guests_prints_the_guides_two_lines(state, capsys):
    code, out, err = run(capsys)
    assert code == 1 and out == ""
    assert err.splitlines() == ["hpvmstatus: No guest information is available.",
                                "hpvmstatus: Unable to continue."]


def test_a_broken_configuration_is_listed_invalid_and_named_in_detail(state, capsys):
    define(state, "good", 1)
    bad = define(state, "broken", 2)
    cfg = state / "uuids" / bad.uuid / "vmm_config.current"
    cfg.write_text(cfg.read_text().replace("vcpus = 1", "vcpus = many"))
    code, out, _ = run(capsys)
    assert code == 0
    rows = out.splitlines()[3:]
    assert rows[0].startswith("good ") and rows[1].split() == ["broken", "Invalid", "0"]
    code, out, _ = run(capsys, "-V", "-P", "broken")
    assert code == 0
    text = out.splitlines()
    assert "State                    : Invalid" in text
    assert any(line.startswith("Configuration file       : uuids/") for line in text)
    assert any(line.startswith("Configuration error      :") and "vcpus" in line
               for line in text)
    # the good guest still works, and the broken one's history is still readable
    assert run(capsys, "-P", "good")[0] == 0
    code, out, _ = run(capsys, "-e", "-P", "broken")
    assert code == 0 and out.splitlines()[3].split()[4:6] == ["broken", "guest.create"]


# --- -V, -P -------------------------------------------------------------------------------------

def compass(state, *, running=True, kit="A.03.00", dm=True):
    return define(
        state, "compass1", 2, running=running, kit=kit, os_type="HPUX", memory_mb=2048,
        label="test guest", start_attr="manual",
        dynmem=DynamicMemoryConfig(control=True, type="driver", min_mb=1024, max_mb=2048)
        if dm else DynamicMemoryConfig(),
        roles=[RoleGrant("user", "testme1", "admin"), RoleGrant("group", "ops", "oper")],
        storage=[StorageResource("disk", "scsi", 0, 1, 0, "disk", "/dev/rdsk/c3t2d0")],
        nics=[NetworkResource("lan", 0, 0, "f6-92-cf-35-86-78", "vswitch1", 1)])


def test_verbose_view_has_every_section_of_the_guide(state, capsys):
    g = compass(state)
    code, out, _ = run(capsys, "-V", "-P", "compass1")
    assert code == 0
    text = out.splitlines()
    sections = [line for line in text if line.startswith("[")]
    assert sections == ["[Virtual Machine Details]", "[Authorized Administrators]",
                        "[Virtual CPU Details]", "[Memory Details]",
                        "[Dynamic Memory Information]", "[Storage Interface Details]",
                        "[Network Interface Details]", "[Misc Interface Details]"]
    expected = [
        "Virtual Machine Name     : compass1",
        f"Virtual Machine UUID     : {g.uuid}",
        "Virtual Machine ID       : 2",
        "Virtual Machine Label    : test guest",
        "VM's Model Name          : server Integrity Virtual Machine",
        "VM's Serial Number       : VM00000002",
        "VM's Config Version      : 3.0.0",
        "Operating System         : HPUX",
        "State                    : On (OS)",
        "Start type               : Manual",
        "Console type             : vt100-plus",
        "Running on serverid      : 0",
        "Running on pid           : 20002",
        "Application controllers  : NONE",
        "Distributed              : 0",
        "Oper Groups: ops", "Admin Users: testme1",
        "Number Virtual CPUs      : 1",
        "Percent Entitlement      : 10.0%",
        "Maximum Entitlement      : 100.0%",
        "Total memory             : 2 GB",
        "Reserved memory          : 64 MB",
        "Type                     : driver",
        "Minimum memory           : 1024 MB",
        "Maximum memory           : 2048 MB",
        "Boot memory              : 2039 MB",
        "Memory chunksize         : 65536 KB",
        "Driver Mode(s)           : STARTED ENABLED GUESTCTL",
        "Ioscan format            : 0/0/1/0.0.0",
        "Physical Device          : /dev/rdsk/c3t2d0",
        "Backing                  : vswitch1",
        "Vswitch Port             : 1",
        "Ioscan format            : 0/0/0/0",
        "Mac Address              : f6-92-cf-35-86-78",
        "Physical Device          : console",
    ]
    for line in expected:
        assert line in text, line
    assert text.index("Virtual Machine Name     : compass1") < text.index(
        "Distributed              : 0") < text.index("[Authorized Administrators]")


def test_dynamic_memory_of_a_stopped_guest_shows_configured_values_only(state, capsys):
    compass(state, running=False)
    code, out, _ = run(capsys, "-V", "-p", "2")
    text = out.splitlines()
    i = text.index("[Dynamic Memory Information]")
    assert text[i + 1:i + 6] == ["NOTE: Dynamic data unavailable, configured values only",
                                 "Type                     : driver",
                                 "Minimum memory           : 1024 MB",
                                 "Target memory            : 2048 MB",
                                 "Maximum memory           : 2048 MB"]
    assert text[i + 6] == ""


def test_no_dynamic_memory_block_when_none_is_configured(state, capsys):
    compass(state, dm=False)
    _, out, _ = run(capsys, "-V", "-P", "compass1")
    assert "[Dynamic Memory Information]" not in out


def test_per_vm_table_form(state, capsys):
    compass(state)
    code, out, _ = run(capsys, "-P", "compass1")
    assert code == 0
    text = out.splitlines()
    assert text[:4] == ["[Virtual Machine Details]",
                        "Virtual Machine Name VM #  OS Type State",
                        "==================== ===== ======= ========",
                        "compass1                 2 HPUX    On (OS)"]
    assert "disk    scsi         0   1   0   0   0 disk      /dev/rdsk/c3t2d0" in text
    assert "vswitch   lan        vswitch1         1   0   0   0 f6-92-cf-35-86-78" in text
    assert "serial  com1                           tty       console" in text


# --- -d, -D --------------------------------------------------------------------------------------

def test_devices_in_command_line_form(state, capsys):
    define(state, "hpvm0014", 14,
           storage=[StorageResource("disk", "scsi", 0, 0, 1, "lv", "/dev/vg01/rlv2")],
           nics=[NetworkResource("lan", 0, 1, "56-a3-e9-d7-40-99", "myswitch", 1)])
    code, out, _ = run(capsys, "-P", "hpvm0014", "-d")
    assert code == 0
    assert out.splitlines() == ["[Virtual Machine Devices]", "[Storage Interface Details]",
                                "disk:scsi:0,0,1:lv:/dev/vg01/rlv2",
                                "[Network Interface Details]",
                                "network:lan:0,1,0x56A3E9D74099:vswitch:myswitch",
                                "[Misc Interface Details]", "serial:com1::tty:console"]
    code, out, _ = run(capsys, "-d", "-p", "14", "-M")
    assert formats.parse_machine(out) == [agent_on(state).status_devices(name="hpvm0014")]


def test_deferred_view_shows_the_next_boot_configuration(state, capsys):
    g = compass(state, dm=False)
    nxt = Guest(**{**g.__dict__, "vcpus": 2, "memory_mb": 4096})
    store = Store(state)
    with store.transaction() as txn:
        txn.write(f"uuids/{g.uuid}/vmm_config.next", format_config(nxt))
        txn.event("guest.modify", g.uuid, deferred=True)
    a = agent_on(state)
    # while it runs, the active configuration is what the status shows; -D shows the next one
    assert a.status_details(name="compass1")[0].cpu.vcpus == 1
    deferred = a.status_deferred(name="compass1")
    assert (deferred.cpu.vcpus, deferred.memory.total_mb) == (2, 4096)
    code, out, _ = run(capsys, "-D", "-V", "-P", "compass1")
    assert code == 0
    assert "Number Virtual CPUs      : 2" in out.splitlines()
    assert "Total memory             : 4 GB" in out.splitlines()


# --- -M, -X -----------------------------------------------------------------------------------

def test_machine_readable_and_xml_parse_back_to_the_agents_values(state, capsys):
    compass(state)
    define(state, "other", 5, memory_mb=3072)
    expected = agent_on(state).status_details()
    code, out, _ = run(capsys, "-M")
    assert code == 0
    back = formats.parse_machine(out)
    assert [d.machine.name for d in back] == ["compass1", "other"]
    # runtime figures move with the clock; the configuration part must match exactly
    for got, want in zip(back, expected):
        assert (got.machine.uuid, got.cpu, got.memory, got.storage, got.network,
                got.admins) == (want.machine.uuid, want.cpu, want.memory, want.storage,
                                want.network, want.admins)
    code, out, _ = run(capsys, "-X", "-P", "other")
    root, back = formats.parse_xml(out)
    assert root == "hpvmstatus" and back == agent_on(state).status_details(name="other")


def test_every_view_has_a_machine_and_xml_form_that_parses_back(state, capsys):
    guide_host(state)
    for argv, view in ((["-s"], lambda a: [a.host_resources()]),
                       (["-S"], lambda a: [a.scheduler_mode()]),
                       (["-m"], lambda a: [a.multi_server()]),
                       (["-e"], lambda a: a.event_log()),
                       (["-d", "-P", "guest1"], lambda a: [a.status_devices(name="guest1")])):
        code, out, _ = run(capsys, *argv, "-M")
        assert code == 0, argv
        assert formats.parse_machine(out) == view(agent_on(state)), argv
        code, out, _ = run(capsys, *argv, "-X")
        assert formats.parse_xml(out)[1] == view(agent_on(state)), argv


def test_version_comes_first(state, capsys):
    define(state, "a", 1)
    _, out, _ = run(capsys, "-v")
    assert out.splitlines()[0].startswith("hpvmstatus: Version A.03.00.00")
    assert out.splitlines()[1] == "[Virtual Machines]"
    _, out, _ = run(capsys, "-v", "-M")
    assert isinstance(formats.parse_machine(out)[0], v.VersionInfo)


# --- -e, -r, -S, -m ------------------------------------------------------------------------

def test_event_log_shows_every_change_in_order(state, capsys):
    g = compass(state)
    define(state, "other", 5)
    a = agent_on(state)
    events = a.event_log()
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert [e.seq for e in events] == list(range(events[0].seq, events[-1].seq + 1))
    mine = a.event_log(name="compass1")
    assert [e.kind for e in mine] == ["guest.create", "guest.model", "guest.start"]
    assert all(e.subject == "compass1" for e in mine)
    assert mine[0].detail == "name=compass1, vcpus=1"
    code, out, _ = run(capsys, "-e", "-P", "compass1")
    assert code == 0
    rows = out.splitlines()[3:]
    assert [r.split()[5] for r in rows] == ["guest.create", "guest.model", "guest.start"]
    code, out, _ = run(capsys, "-e")
    assert len(out.splitlines()[3:]) == len(Store(state).events())
    assert g.uuid not in out   # guests are named, not shown by UUID


def test_resource_allocation_reports_entitlement_and_usage(state, capsys):
    guide_host(state)
    define(state, "idle", 3, vcpus=2, entitlement=Entitlement(percent=None, mhz=700))
    rows = agent_on(state).resource_allocation()
    by = {r.name: r for r in rows}
    assert by["guest1"].entitlement_percent == 10.0 and by["guest1"].percent_usage == 5.0
    assert by["guest1"].cumulative_mcycles == 140 * 600
    assert by["idle"].entitlement_mhz == 700 and by["idle"].percent_usage == 0.0
    one = agent_on(state).resource_allocation(name="guest1")[0]
    assert [u.achieved_mhz for u in one.vcpu_usage] == [140]
    code, out, _ = run(capsys, "-r")
    assert code == 0
    text = out.splitlines()
    assert text[1].split() == ["Percent", "Cumulative", "Current"]
    assert "idle                     3      2      700MHz  100.0%    0.0%" in "\n".join(text)
    code, out, _ = run(capsys, "-r", "-P", "guest1")
    assert "[Virtual CPU Usage]" in out


def test_scheduler_mode_is_capped_only_under_gwlm(state, capsys):
    define(state, "a", 1)
    assert run(capsys, "-S")[1].splitlines() == [
        "HPVM scheduler is running in NORMAL mode.", "Startable virtual machines:", "a"]
    define(state, "b", 2, app_controller="GWLM", running=True)
    out = run(capsys, "-S")[1].splitlines()
    assert out[0] == "HPVM scheduler is running in CAPPED mode."
    assert "NAME=gWLM,GUEST=b" in out and out[-1] == "a"


def test_multi_server_from_the_device_database(state, capsys):
    assert run(capsys, "-m")[1] == "No HPVM multi-server environment configured\n"
    db = ("rake:CONFIG=server,SERVERID=1,SERVERADDR=1.2.3.4::WWID_NULL\n"
          "cloud:CONFIG=server,SERVERID=2,SERVERADDR=1.3.5.7::WWID_NULL\n")
    from agent.devicedb import DeviceDatabase, parse_line
    dbo = DeviceDatabase([parse_line("server", line) for line in db.splitlines()])
    with Store(state).transaction() as txn:
        dbo.save(txn)
    assert run(capsys, "-m")[1].splitlines() == [
        "HPVM Multi-server environment", "This servers identifier=1",
        "Server_id=1", "Server_state=1", "Server_ipaddr=1.2.3.4", "Server_hostname=rake",
        "Server_id=2", "Server_state=0", "Server_ipaddr=1.3.5.7", "Server_hostname=cloud"]


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["-V", "-M"], "Options -V and -M are mutually exclusive"),
    (["-M", "-X"], "Options -M and -X are mutually exclusive"),
    (["-P", "a", "-p", "1"], "Options -P and -p are mutually exclusive"),
    (["-d"], "Option -d requires -P vm-name or -p vm-number"),
    (["-D"], "Option -D requires -P vm-name or -p vm-number"),
    (["-s", "-P", "a"], "Option -P cannot be used with -s"),
    (["-S", "-V"], "Option -V cannot be used with -S"),
    (["-m", "-v"], "Option -v cannot be used with -m"),
    (["-e", "-r"], "Options -e and -r cannot be combined"),
    (["-V", "-V"], "Option -V was given more than once"),
    (["-z"], "Invalid option -z"),
    (["-p", "x"], "Invalid VM number 'x'"),
    (["extra"], "Unexpected argument 'extra'"),
    (["-P", "nosuch"], "Unable to find the guest 'nosuch'."),
    (["-p", "77", "-d"], "Unable to find the guest numbered 77."),
])
def test_bad_command_lines_get_one_line_and_exit_1(state, capsys, argv, message):
    define(state, "a", 1)
    before = sorted(p.name for p in (state / "uuids").iterdir())
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("hpvmstatus: ") and message in err
    assert sorted(p.name for p in (state / "uuids").iterdir()) == before


# --- the views follow what the agent's own operations do ---------------------------------------

def test_views_follow_create_start_modify_stop_through_the_agent(state, capsys):
    from agent.api.guests import GuestChanges
    clock = ManualClock(NOW)
    a = Agent(state, clock=clock)
    for name in ("guest1", "guest2"):
        a.create_guest(name, GuestChanges(memory_mb=1549, os_type="HPUX"))
    before = a.host_resources()
    assert before.available_entitlement_mhz == [1400, 1400]
    for name in ("guest1", "guest2"):
        a.start_guest(a.find_guest(name=name))
    clock.advance(60)
    after = a.host_resources()
    assert (after.available_memory_mb, after.available_swap_mb,
            after.available_entitlement_mhz) == (7367, 4707, [1400, 1260])
    assert [r.state for r in a.status_summary()] == ["On (EFI)", "On (EFI)"]

    assert a.status_details(name="guest1")[0].machine.guest_revision == 1
    # a static change to a running guest waits for the next boot: -D shows it, -V does not
    a.modify_guest(a.find_guest(name="guest1"), GuestChanges(vcpus=2))
    assert a.status_details(name="guest1")[0].machine.guest_revision == 2
    assert a.status_details(name="guest1")[0].cpu.vcpus == 1
    assert a.status_deferred(name="guest1").cpu.vcpus == 2
    a.stop_guest(a.find_guest(name="guest1"), hard=True)
    assert a.status_details(name="guest1")[0].cpu.vcpus == 2   # off: the next-boot config

    mine = a.event_log(name="guest1")
    assert [e.kind for e in mine] == ["guest.create", "guest.start", "guest.modify",
                                      "guest.stop"]
    everything = a.event_log()
    assert [e.seq for e in everything] == list(range(1, len(everything) + 1))
    assert [e.seq for e in mine] == sorted(e.seq for e in mine)
    code, out, _ = run(capsys, "-e", "-P", "guest1", "-M")
    assert code == 0 and formats.parse_machine(out) == mine
