"""hpvmnet(1M) end to end: the guide's examples (spec 02 §13-15, spec 05 §2) with their
listings, the VswitchOps API behind them, and bad input refused without a trace on disk."""
from __future__ import annotations

import io
import os
import uuid as uuidlib

import pytest
from lxml import etree

from agent.api import Agent
from agent.backends.ivm import RuntimeFacts, runtime_path
from agent.clock import ManualClock
from agent.cli import hpvmnet
from agent.devicedb import DeviceDatabase
from agent.guest import Guest
from agent.guestconfig import format_config
from agent.hostfacts import HostDisk, HostFacts, HostNic
from agent.resources import NetworkResource

HEADER = ["Name     Number State   Mode      NamePPA  MAC Address    IP Address",
          "======== ====== ======= ========= ======== ============== ==============="]
PORT_HEADER = ["[Port Configuration Details]",
               "Port    Port         Untagged Number of    Active VM",
               "Number  state        VLANID   Reserved VMs",
               "======= ============ ======== ============ ============"]


def make_host() -> HostFacts:
    return HostFacts(
        cpus=4, cpu_mhz=1400, memory_mb=16384, swap_mb=16384,
        host_uuid="8ba249f2-3399-11db-aacc-00306ef392e0", hostname="vmhost",
        nics=(HostNic("lan0", "00:30:6e:4a:93:e6"), HostNic("lan1", "00:30:6e:39:77:ab"),
              HostNic("lan4", "00:12:79:42:fc:e3")),
        disks=(HostDisk("/dev/rdsk/c0t0d0", 70000), HostDisk("/dev/rdsk/c3t2d0", 70000)))


@pytest.fixture
def agent(tmp_path):
    return Agent(tmp_path / "state", clock=ManualClock(), actor="root", host=make_host())


def define_guest(agent, name, nics=(), storage=(), *, running=False, number=None):
    """A guest as hpvmcreate leaves it: its configuration, its guests/<name> link, its
    device-database dependencies; `running` marks it booted in the ivm model."""
    n = number or (len(agent.guests()) + 1)
    g = Guest(uuid=str(uuidlib.uuid4()), name=name, vm_number=n, serial=f"VM{n:08d}",
              nics=[NetworkResource(bus=0, slot=i, mac=mac, vswitch=sw, port=port)
                    for i, (sw, port, mac) in enumerate(nics)],
              storage=list(storage))
    with agent.store.transaction() as txn:
        txn.write(f"uuids/{g.uuid}/vmm_config.current", format_config(g))
        txn.symlink(f"guests/{name}", f"../uuids/{g.uuid}")
        agent.driver.define(txn, g)
        if running:
            txn.write(runtime_path(g.uuid), RuntimeFacts(
                phase="running", started_at=agent.clock.now(), pid=4000 + n, minor=n,
                boots=1).to_bytes())
        db = DeviceDatabase.load(txn)
        for res in [*g.nics, *g.storage]:
            db.record_use(name, res, agent.host)
        db.save(txn)
    return g


def net(agent, *argv, answer=None, monkeypatch=None):
    out, err = io.StringIO(), io.StringIO()
    if answer is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(answer))
        monkeypatch.setattr("sys.stdout", out)
    code = hpvmnet.main(list(argv), agent=agent, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def tree(root) -> dict:
    """Every file under the state folder with its bytes (the lock file aside)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            rel = os.path.relpath(p, root)
            if rel == os.path.join(".store", "lock"):
                continue
            out[rel] = open(p, "rb").read() if not os.path.islink(p) else os.readlink(p)
    return out


# --- the guide's listings ---------------------------------------------------------------------

def test_create_list_boot_as_in_chapter_8(agent):
    assert net(agent, "-c", "-S", "myswitch")[0] == 0
    assert net(agent, "-b", "-S", "myswitch")[0] == 0
    code, out, err = net(agent, "-c", "-S", "clan1", "-n", "1")
    assert (code, out, err) == (0, "", "")
    assert net(agent)[1].splitlines() == HEADER + [
        "localnet      1 Up      Shared             N/A            N/A",
        "myswitch      2 Up      Shared             N/A            N/A",
        "clan1         3 Down    Shared    lan1"]
    assert net(agent, "-S", "clan1", "-b")[0] == 0
    assert net(agent)[1].splitlines()[-1] == \
        "clan1         3 Up      Shared    lan1     0x00306e3977ab"


def test_delete_refused_while_active_then_halt_and_remove(agent, monkeypatch):
    net(agent, "-c", "-S", "clan1", "-n", "1")
    net(agent, "-S", "clan1", "-b")
    code, out, err = net(agent, "-S", "clan1", "-d")
    assert code == 1
    assert err.splitlines() == ["hpvmnet: The vswitch is currently active",
                                "hpvmnet: Unable to continue"]
    code, out, _ = net(agent, "-S", "clan1", "-h", answer="y\n", monkeypatch=monkeypatch)
    assert code == 0 and out.startswith("hpvmnet: Halt the vswitch 'clan1'? [n/y]: ")
    code, out, _ = net(agent, "-S", "clan1", "-d", answer="\n", monkeypatch=monkeypatch)
    assert code == 0 and "Remove the vswitch 'clan1'? [n/y]: " in out
    assert agent.vswitch_status("clan1") == "down"             # Enter means no
    code, out, _ = net(agent, "-S", "clan1", "-d", answer="y\n", monkeypatch=monkeypatch)
    assert code == 0 and agent.vswitch_status("clan1") == "missing"
    assert net(agent, "-v")[1].splitlines()[1:] == HEADER + [
        "localnet      1 Up      Shared             N/A            N/A"]


def test_quiet_and_force_skip_the_question(agent):
    net(agent, "-c", "-S", "clan1", "-n", "0")
    net(agent, "-b", "-S", "clan1")
    assert net(agent, "-Sclan1", "-h", "-Q") == (0, "", "")
    assert net(agent)[1].splitlines()[-1] == "clan1         2 Down    Shared    lan0"
    assert net(agent, "-d", "-s", "2", "-F") == (0, "", "")
    assert agent.vswitch_status("clan1") == "missing"


def test_change_nic_keeps_number_and_state(agent):
    net(agent, "-c", "-S", "hostnet", "-n", "0")
    net(agent, "-b", "-S", "hostnet")
    assert net(agent, "-C", "-S", "hostnet", "-n", "1") == (0, "", "")
    assert net(agent, "-S", "hostnet")[1].splitlines() == HEADER + [
        "hostnet       2 Up      Shared    lan1     0x00306e3977ab"]


def test_clone_copies_vlan_ports_as_available(agent):
    net(agent, "-c", "-S", "vmvlan", "-n", "4")
    net(agent, "-b", "-S", "vmvlan")
    net(agent, "-S", "vmvlan", "-u", "portid:2:vlanid:20")
    define_guest(agent, "g1", [("vmvlan", 1, "aa-00-00-00-00-01")])
    define_guest(agent, "g2", [("vmvlan", 2, "aa-00-00-00-00-02")])
    define_guest(agent, "g3", [("vmvlan", 3, "aa-00-00-00-00-03")])
    assert net(agent, "-S", "vmvlan")[1].splitlines() == HEADER + [
        "vmvlan        2 Up      Shared    lan4     0x00127942fce3", ""] + PORT_HEADER + [
        "1       Reserved     none     1",
        "2       Reserved     20       1",
        "3       Reserved     none     1"]
    assert net(agent, "-C", "-S", "vmvlan", "-n", "1", "-N", "clnvlan")[0] == 0
    assert net(agent, "-S", "clnvlan")[1].splitlines() == HEADER + [
        "clnvlan       3 Down    Shared    lan1", ""] + PORT_HEADER + [
        "2       Available    20       0"]
    assert agent.select_vswitch("vmvlan").nic == "lan4"        # the source is unchanged


def test_vlan_ports_and_port_queries(agent):
    """§8.4: VLAN 100 on ports 1 and 2 of vmlan4, vm1 and vm2 running on them."""
    net(agent, "-c", "-S", "vmlan4", "-n", "4")
    net(agent, "-b", "-S", "vmlan4")
    assert net(agent, "-S", "vmlan4", "-u", "portid:1:vlanid:100") == (0, "", "")
    net(agent, "-S", "vmlan4", "-u", "portid:2:vlanid:100")
    define_guest(agent, "vm1", [("vmlan4", 1, "16-e8-c6-fa-b5-bc"),
                                ("vmlan4", 3, "fa-18-82-9f-1a-95")], running=True)
    define_guest(agent, "vm2", [("vmlan4", 2, "86-81-0b-6d-52-36"),
                                ("vmlan4", 4, "6a-b9-cf-06-02-94")], running=True)
    assert net(agent, "-S", "vmlan4")[1].splitlines()[3:] == ["", *PORT_HEADER,
        "1       Active       100      1            vm1",
        "2       Active       100      1            vm2",
        "3       Active       none     1            vm1",
        "4       Active       none     1            vm2"]
    assert net(agent, "-S", "vmlan4", "-p", "2")[1].splitlines() == [
        "Vswitch Name        : vmlan4",
        "Max Number of Ports : 100",
        "Port Number         : 2",
        "Port State          : Active",
        "Active VM           : vm2",
        "Untagged VlanId     : 100",
        "Reserved VMs        : vm2"]
    lines = net(agent, "-S", "vmlan4", "-p", "all")[1].splitlines()
    assert lines[:4] == ["Vswitch Name        : vmlan4", "Max Number of Ports : 100",
                         "Configured Ports    : 4", ""]
    assert lines[4:9] == ["Port Number         : 1", "Port State          : Active",
                          "Active VM           : vm1", "Untagged VlanId     : 100",
                          "Reserved VMs        : vm1"]
    assert net(agent, "-S", "vmlan4", "-u", "portid:2:vlanid:none")[0] == 0
    assert agent.vswitch_ports("vmlan4", port=2).ports[0].vlan is None


def test_verbose_lists_vnics_and_counters_of_the_selected_vswitch(agent):
    net(agent, "-c", "-S", "hostnet", "-n", "1")
    net(agent, "-b", "-S", "hostnet")
    define_guest(agent, "armyvm1", [("hostnet", 1, "ee-8d-40-58-4d-28"),
                                    ("hostnet", 3, "8a-0f-12-dd-5b-48")])
    define_guest(agent, "armyvm2", [("hostnet", 4, "42-f8-6e-00-4c-5d")], running=True)
    lines = net(agent, "-S", "hostnet", "-V")[1].splitlines()
    assert lines[:13] == [
        "Name                  : hostnet",
        "number                : 2",
        f"PID                   : {agent.select_vswitch('hostnet').pid}",
        "State                 : Up",
        "Mode                  : Shared",
        "NamePPA               : lan1",
        "Host MAC Address      : 0x00306e3977ab",
        "Host IP Address       :",
        "Number of guests      : 3",
        "Guest's Name          : armyvm1",
        "MAC Address           : 0xEE8D40584D28",
        "IP Address            : Guest halted",
        "Vswitch Port          : 1"]
    assert "Guest's Name          : armyvm2" in lines
    assert lines[-13] == "Packets in            : 0"
    assert lines[-1] == "Cycles switch packet  : 0"
    everything = net(agent, "-V")[1]
    assert "Packets in" not in everything and "Name                  : localnet" in everything


def test_machine_and_xml_forms_parse_back(agent):
    net(agent, "-c", "-S", "vmlan4", "-n", "4")
    net(agent, "-S", "vmlan4", "-u", "portid:7:vlanid:42")
    define_guest(agent, "vm1", [("vmlan4", 1, "16-e8-c6-fa-b5-bc")])
    lines = net(agent, "-M", "-v")[1].splitlines()
    assert lines[0] == "version:1"
    records = [line.split(":") for line in lines[1:]]
    assert ["vswitch", "localnet", "1", "Up", "Shared", "", "N/A", "N/A",
            str(agent.select_vswitch("localnet").pid), "0"] in records
    assert ["vnic", "vmlan4", "vm1", "0x16E8C6FAB5BC", "1", "Guest halted"] in records
    assert ["port", "vmlan4", "7", "Available", "42", "", ""] in records
    assert ["port", "vmlan4", "1", "Reserved", "none", "vm1", ""] in records
    doc = etree.fromstring(net(agent, "-X")[1].encode())
    assert doc.tag == "hpvmnet" and doc.get("format_version") == "1"
    names = [sw.findtext("name") for sw in doc.findall("vswitch")]
    assert names == ["localnet", "vmlan4"]
    port = doc.find("vswitch[name='vmlan4']/port[number='1']")
    assert port.findtext("state") == "Reserved" and \
        [i.text for i in port.find("reserved")] == ["vm1"]


# --- running guests, restricted NICs ------------------------------------------------------------

def test_deleting_a_vswitch_in_use_by_a_running_guest(agent, monkeypatch):
    """Refused while Up; once halted the guest's port is Down; deleting leaves the guest's
    vNIC in place, and re-creating the vswitch by name reconnects it."""
    net(agent, "-c", "-S", "clan1", "-n", "1")
    net(agent, "-b", "-S", "clan1")
    g = define_guest(agent, "compass1", [("clan1", 4, "00-30-6e-39-f7-0b")], running=True)
    assert net(agent, "-d", "-S", "clan1", "-F")[0] == 1
    assert agent.vswitch_status("clan1") == "up"
    assert net(agent, "-h", "-S", "clan1", "-F")[0] == 0
    assert [(p.number, p.state, p.active) for p in agent.vswitch_ports("clan1").ports] == \
        [(4, "Down", "compass1")]
    assert net(agent, "-d", "-S", "clan1", "-F")[0] == 0
    assert agent.vswitch_status("clan1") == "missing"
    assert agent.find_guest("compass1").nics == g.nics
    net(agent, "-c", "-S", "clan1", "-n", "1")
    net(agent, "-b", "-S", "clan1")
    assert [(p.number, p.state, p.active) for p in agent.vswitch_ports("clan1").ports] == \
        [(4, "Active", "compass1")]
    assert agent.vswitch_port_holder("clan1", 4) == "compass1"
    assert agent.vswitch_port_holder("clan1", 4, besides="compass1") is None


def test_port_allocation_for_new_vnics(agent):
    net(agent, "-c", "-S", "sw", "-n", "0")
    net(agent, "-S", "sw", "-u", "portid:2:vlanid:5")
    define_guest(agent, "a", [("sw", 1, "aa-00-00-00-00-01")])
    assert agent.allocate_vswitch_port("sw") == 3
    assert agent.allocate_vswitch_port("sw", 2) == 2
    assert agent.allocate_vswitch_port("sw", besides="a") == 1
    assert agent.allocate_vswitch_port("nosuch") == 1


def test_restricted_nic_cannot_carry_a_vswitch(agent):
    from agent.cli import hpvmdevmgmt
    net(agent, "-c", "-S", "hostnet", "-n", "0")
    assert hpvmdevmgmt.main(["-a", "rdev:lan0"], agent=agent) == 0
    code, _, err = net(agent, "-c", "-S", "other", "-n", "0")
    assert code == 1 and "lan0 is restricted" in err
    code, _, err = net(agent, "-b", "-S", "hostnet")
    assert code == 1 and "restricted" in err
    assert agent.vswitch_nic_restricted("hostnet") and not agent.vswitch_nic_restricted("localnet")


def test_restricting_the_nic_of_a_guests_vswitch(agent, capsys):
    from agent.cli import hpvmdevmgmt
    net(agent, "-c", "-S", "hostnet", "-n", "0")
    net(agent, "-b", "-S", "hostnet")
    define_guest(agent, "g1", [("hostnet", 1, "aa-00-00-00-00-01")])
    assert hpvmdevmgmt.main(["-a", "rdev:lan0"], agent=agent) == 1
    assert "used by guest(s) g1" in capsys.readouterr().err
    assert hpvmdevmgmt.main(["-a", "rdev:lan0", "-F"], agent=agent) == 0
    assert agent.vswitch_nic_restricted("hostnet")
    env = agent.environment()
    assert env.vswitch_restricted("hostnet")


def test_two_vswitches_on_one_nic_boot_one_at_a_time(agent):
    net(agent, "-c", "-S", "one", "-n", "0")
    net(agent, "-c", "-S", "two", "-n", "0")
    assert net(agent, "-b", "-S", "one")[0] == 0
    code, _, err = net(agent, "-b", "-S", "two")
    assert code == 1 and err.splitlines() == [
        "hpvmnet: The vswitch 'one' is already booted on lan0", "hpvmnet: Unable to continue"]


def test_every_change_is_an_event(agent):
    seq = agent.store.last_seq()
    net(agent, "-c", "-S", "sw", "-n", "0")
    net(agent, "-b", "-S", "sw")
    net(agent, "-S", "sw", "-u", "portid:3:vlanid:7")
    net(agent, "-r", "-S", "sw", "-F")
    net(agent, "-h", "-S", "sw", "-F")
    net(agent, "-d", "-S", "sw", "-F")
    kinds = [(e.kind, e.subject) for e in agent.store.events(since_seq=seq)]
    assert kinds == [("vswitch.create", "sw"), ("vswitch.boot", "sw"), ("vswitch.vlan", "sw"),
                     ("vswitch.reboot", "sw"), ("vswitch.halt", "sw"), ("vswitch.delete", "sw")]


# --- bad input ------------------------------------------------------------------------------------

BAD = [
    (["-c"], "Option -c requires -S vswitch-name"),
    (["-c", "-S", "waytoolongname"], "at most 8 characters"),
    (["-c", "-S", "sw", "-n", "x"], "Invalid NIC id 'x'"),
    (["-c", "-S", "sw", "-n", "9"], "lan9 does not exist"),
    (["-c", "-s", "3"], "Option -c takes -S vswitch-name only"),
    (["-c", "-S", "localnet"], "already exists"),
    (["-c", "-S", "a", "-d"], "cannot be combined"),
    (["-S", "a", "-s", "1"], "mutually exclusive"),
    (["-V", "-M"], "mutually exclusive"),
    (["-d"], "requires -S vswitch-name or -s vswitch-number"),
    (["-d", "-S", "nosuch", "-F"], "The vswitch 'nosuch' does not exist"),
    (["-d", "-s", "77", "-F"], "number 77 does not exist"),
    (["-s", "x"], "Invalid value 'x' for -s"),
    (["-S", "localnet", "-u", "portid:0:vlanid:5"], "Invalid port number '0'"),
    (["-S", "localnet", "-u", "portid:101:vlanid:5"], "Invalid port number '101'"),
    (["-S", "localnet", "-u", "portid:1:vlanid:4095"], "Invalid VLAN id '4095'"),
    (["-S", "localnet", "-u", "port:1:vlanid:5"], "Invalid value 'port:1:vlanid:5' for -u"),
    (["-S", "localnet", "-u", "portid:1:vlanid"], "for -u"),
    (["-S", "localnet", "-p", "0"], "Invalid port number"),
    (["-p", "all"], "Option -p requires -S"),
    (["-S", "localnet", "-p", "all", "-V"], "cannot be combined"),
    (["-C", "-S", "localnet"], "Option -C requires -n nic-id"),
    (["-C", "-S", "localnet", "-n", "0", "-N", "localnet"], "already exists"),
    (["-N", "x", "-S", "localnet"], "Option -N is valid only with -C"),
    (["-n", "0"], "Option -n is valid only with -c or -C"),
    (["-F"], "Option -F is valid only with -d, -h or -r"),
    (["-b", "-S", "localnet", "-V"], "cannot be combined"),
    (["-x"], "Invalid option -x"),
    (["-S"], "requires a value"),
    (["-b", "-b", "-S", "localnet"], "more than once"),
    (["extra"], "Unexpected argument 'extra'"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_1_and_changes_nothing(agent, argv, message):
    net(agent, "-c", "-S", "sw", "-n", "1")           # something to leave untouched
    before = tree(agent.state_dir)
    code, out, err = net(agent, *argv)
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert message in lines[0] and lines[0].startswith("hpvmnet: ")
    assert len(lines) == 1 or lines[1:] == ["hpvmnet: Unable to continue"]
    assert tree(agent.state_dir) == before


def test_bad_option_touches_no_state_folder(tmp_path, monkeypatch, capsys):
    state = tmp_path / "never"
    assert hpvmnet.main(["--state-dir", str(state), "-c", "-S", "toolongname1"]) == 1
    assert not state.exists()
    assert capsys.readouterr().err.count("\n") == 1


def test_command_line_state_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("VMPROVIDER_STATE_DIR", raising=False)
    state = tmp_path / "st"
    assert hpvmnet.main(["--state-dir", str(state), "-c", "-S", "clan0"]) == 0
    assert hpvmnet.main(["--state-dir", str(state)]) == 0
    assert "clan0         2 Down    Shared             N/A            N/A" in \
        capsys.readouterr().out
    assert (state / "common" / "vswitches").exists()
