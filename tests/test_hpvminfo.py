"""hpvminfo: where we run and the host's identity, in text, -M and -X."""
from __future__ import annotations

import pytest

from agent import formats
from agent.api import views as v
from agent.cli import hpvminfo
from agent.hostfacts import HostFacts

HOST = HostFacts(cpus=2, cpu_mhz=1400, memory_mb=12276, swap_mb=7805,
                 host_uuid="a7d6d186-9f74-11d7-867a-636e2282571a", hostname="rake",
                 model="ia64 hp server rx5670", serial="USR4319L4J",
                 ip_addresses=("1.2.3.4", "fe80::1"))


@pytest.fixture
def state(tmp_path, monkeypatch):
    s = tmp_path / "state"
    s.mkdir(mode=0o700)
    (s / "host.toml").write_text(HOST.to_toml())
    monkeypatch.setenv("VMPROVIDER_STATE_DIR", str(s))
    return s


def run(capsys, *argv):
    code = hpvminfo.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plain_answer_is_the_guides_host_line(state, capsys):
    assert run(capsys) == (0, "hpvminfo: Running on an HPVM host.\n", "")


def test_verbose_lists_the_hosts_identity_in_the_guides_layout(state, capsys):
    code, out, _ = run(capsys, "-V")
    assert code == 0
    assert out.splitlines() == [
        "hpvminfo: Running on an HPVM host.",
        "Host chassis information",
        "    Host model string                : ia64 hp server rx5670",
        "    Host serial number               : USR4319L4J",
        "    Host partition ident             : a7d6d186-9f74-11d7-867a-636e2282571a",
        "    Host machine ident               : a7d6d186-9f74-11d7-867a-636e2282571a",
        "Host Inet information",
        "    Hostname                         : rake",
        "    Number of host IPv6 Addresses    : 1",
        "    Number of host IPv4 Addresses    : 1",
        "    IP Address                       : 1.2.3.4",
        "    IPv6 Address                     : fe80::1",
        "Host processor and memory information",
        "    Number of processors             : 2",
        "    Processor speed                  : 1400 Mhz",
        "    Total physical memory            : 12276 Mbytes",
    ]


def test_machine_and_xml_forms_parse_back(state, capsys):
    want = v.HostInfo(environment="host", model="ia64 hp server rx5670", serial="USR4319L4J",
                      partition_ident=HOST.host_uuid, machine_ident=HOST.host_uuid,
                      hostname="rake", ipv4_addresses=["1.2.3.4"], cpus=2, cpu_mhz=1400,
                      memory_mb=12276, ipv6_addresses=["fe80::1"])
    code, out, _ = run(capsys, "-M")
    assert code == 0
    assert out.startswith("hpvminfo:host:ia64 hp server rx5670:USR4319L4J:")
    assert formats.parse_machine(out) == [want]
    code, out, _ = run(capsys, "-X", "-v")
    root, objs = formats.parse_xml(out)
    assert root == "hpvminfo" and objs[1] == want
    assert isinstance(objs[0], v.VersionInfo) and objs[0].release == "A.03.00.00"


def test_version_comes_first(state, capsys):
    out = run(capsys, "-v")[1].splitlines()
    assert out[0].startswith("hpvminfo: Version A.03.00.00")
    assert out[1] == "hpvminfo: Running on an HPVM host."


@pytest.mark.parametrize("argv, message", [
    (["-V", "-M"], "Options -V and -M are mutually exclusive"),
    (["-X", "-M"], "Options -M and -X are mutually exclusive"),
    (["-v", "-v"], "Option -v was given more than once"),
    (["-P", "x"], "Invalid option -P"),
    (["guest"], "Unexpected argument 'guest'"),
])
def test_bad_command_lines_get_one_line_and_exit_1(state, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert err == f"hpvminfo: {message}\n"
