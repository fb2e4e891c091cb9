"""Bad input: every malformed option, size, name or spec is one clear line on stderr, exit 1,
and the state folder is byte-for-byte what it was."""
from __future__ import annotations

import pytest

from agent.cli import (hpvmclone, hpvmcreate, hpvmmodel, hpvmmodify, hpvmremove, hpvmstart,
                       hpvmstop)
from guest_support import fingerprint, init_state, run_cli

CREATE_BAD = [
    [],                                              # -P missing
    ["-P"],                                          # value missing
    ["-P", "-bad"],                                  # name begins with '-'
    ["-P", "bad/name"],
    ["-P", "vm1\n"],                                 # `$` would match before a final newline
    ["-P", "ok", "-l", "label\n"],
    ["-P", "ok", "-u", "bob\n"],
    ["-P", "x" * 257],
    ["-P", "ok", "-z"],                              # unknown option
    ["-P", "ok", "extra"],                           # stray argument
    ["-P", "ok", "-c", "0"],
    ["-P", "ok", "-c", "5"],
    ["-P", "ok", "-c", "two"],
    ["-P", "ok", "-c", "1", "-c", "2"],              # non-repeatable option twice
    ["-P", "ok", "-r", "0"],
    ["-P", "ok", "-r", "2T"],
    ["-P", "ok", "-r", "-5"],
    ["-P", "ok", "-r", "1.5G"],
    ["-P", "ok", "-e", "101"],
    ["-P", "ok", "-e", "3"],
    ["-P", "ok", "-e", "ten"],
    ["-P", "ok", "-e", "10", "-E", "100M"],
    ["-P", "ok", "-E", "0"],
    ["-P", "ok", "-E", "12X"],
    ["-P", "ok", "-O", "vms"],
    ["-P", "ok", "-O", "hpux:bad/version"],
    ["-P", "ok", "-B", "sometimes"],
    ["-P", "ok", "-B", "auto", "-b", "manual"],
    ["-P", "ok", "-l", "bad:label"],
    ["-P", "ok", "-u", "bob:root"],
    ["-P", "ok", "-u", "-bob"],                      # nothing to remove on a new guest
    ["-P", "ok", "-g", "bad group"],
    ["-P", "ok", "-a", "disk:scsi::disk"],
    ["-P", "ok", "-a", "disk:ide::disk:/dev/rdsk/c1t2d0"],
    ["-P", "ok", "-a", "floppy:scsi::disk:/dev/rdsk/c1t2d0"],
    ["-P", "ok", "-a", "disk:scsi:9,0,0:disk:/dev/rdsk/c1t2d0"],
    ["-P", "ok", "-a", "disk:scsi::tape:/dev/rdsk/c1t2d0"],
    ["-P", "ok", "-a", "disk:scsi::disk:relative/path"],
    ["-P", "ok", "-a", "network:lan::vswitch:"],
    ["-P", "ok", "-a", "network:lan:0,0,01-00-00-00-00-01:vswitch:localnet"],   # multicast
    ["-P", "ok", "-a", "network:lan:0,0,zz:vswitch:localnet"],
    ["-P", "ok", "-a", "disk:scsi::disk:/dev/rdsk/c1t2d0", "-a", "disk:scsi::disk:/dev/rdsk/c1t2d0"],
    ["-P", "ok", "-x", "ram_dyn_type=maybe"],
    ["-P", "ok", "-x", "ram_dyn_min=1G", "-x", "ram_dyn_min=1G"],   # keyword twice
    ["-P", "ok", "-x", "ram_target=1G"],              # modify only
    ["-P", "ok", "-x", "serial_number=new"],          # clone only
    ["-P", "ok", "-x", "nokeyword"],
    ["-P", "ok", "-x", "dynamic_memory_control=2"],
    ["-P", "ok", "-i", "FOO"],
    ["-P", "ok", "-j", "2"],
    ["-P", "ok", "-F", "-s"],
    ["-P", "ok", "--bogus"],
]


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.delenv("VMPROVIDER_STATE_DIR", raising=False)
    s = init_state(tmp_path / "state")
    run_cli(hpvmcreate.main, ["-P", "existing", "-a", "disk:scsi::disk:/dev/rdsk/c1t2d0"], s)
    return s


def _one_line_refusal(main, argv, state):
    before = fingerprint(state)
    code, out, err = run_cli(main, argv, state)
    assert code == 1, (argv, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, (argv, err)
    assert lines[0].startswith(f"{main.__module__.rsplit('.', 1)[1]}: ")
    assert fingerprint(state) == before, argv
    return lines[0]


@pytest.mark.parametrize("argv", CREATE_BAD, ids=lambda a: " ".join(a)[:60] or "empty")
def test_hpvmcreate_bad_input(state, argv):
    _one_line_refusal(hpvmcreate.main, argv, state)


MODIFY_BAD = [
    [],
    ["-P", "existing", "-p", "1"],
    ["-p", "zero"],
    ["-P", "existing", "-N", "-x"],
    ["-P", "existing", "-N", "a b"],
    ["-P", "existing", "-m", "disk:scsi::disk:/dev/rdsk/c3t1d0"],     # -m without address
    ["-P", "existing", "-d", "disk:scsi::"],
    ["-P", "existing", "-R", "lots"],
    ["-P", "existing", "-x", "ram_target=huge"],
    ["-P", "existing", "-x", "mac_address=same"],
    ["-P", "existing", "-A", "-c", "2"],              # -A takes no static change
    ["-P", "existing", "-r", "1G", "-r", "2G"],
    ["-P", "existing", "-R", "4G"],                   # reserved beyond the guest's 2 GB
]


@pytest.mark.parametrize("argv", MODIFY_BAD, ids=lambda a: " ".join(a)[:60] or "empty")
def test_hpvmmodify_bad_input(state, argv):
    _one_line_refusal(hpvmmodify.main, argv, state)


@pytest.mark.parametrize("main,argv", [
    (hpvmclone.main, ["-P", "existing"]),                       # -N missing
    (hpvmclone.main, ["-P", "existing", "-N", "bad name"]),
    (hpvmclone.main, ["-P", "existing", "-N", "c", "-b", "network:lan:0,0:vswitch:x"]),
    (hpvmclone.main, ["-P", "existing", "-N", "c", "-x", "serial_number=old"]),
    (hpvmclone.main, ["-P", "existing", "-N", "c", "-F", "-s"]),
    (hpvmstart.main, []),
    (hpvmstart.main, ["-P", "existing", "-F", "-s"]),
    (hpvmstart.main, ["-P", "existing", "-Q", "-Q"]),
    (hpvmstart.main, ["-P", "existing", "-x"]),
    (hpvmstop.main, ["-P", "existing", "-p", "1"]),
    (hpvmstop.main, ["-P", "existing", "-h", "-g"]),
    (hpvmstop.main, ["-a"]),
    (hpvmstop.main, ["-p", "-1"]),
    (hpvmremove.main, []),
    (hpvmremove.main, ["-P", "existing", "-F", "-F"]),
    (hpvmremove.main, ["-P", "existing", "-s"]),
    (hpvmmodel.main, ["dance"]),
    (hpvmmodel.main, ["set", "-P", "existing"]),
    (hpvmmodel.main, ["set", "-P", "existing", "-O", "beos"]),
    (hpvmmodel.main, ["set", "-P", "existing", "-W", "many"]),
    (hpvmmodel.main, ["set", "-P", "existing", "-K", "a b"]),
], ids=lambda x: x if isinstance(x, str) else " ".join(x)[:50] if isinstance(x, list) else x.__module__)
def test_other_commands_bad_input(state, main, argv):
    _one_line_refusal(main, argv, state)


def test_unknown_guest_is_a_refusal_that_changes_nothing(state):
    before = fingerprint(state)
    code, out, err = run_cli(hpvmstart.main, ["-P", "nosuch"], state)
    assert code == 1
    assert err.splitlines() == ["hpvmstart: Unable to find the guest 'nosuch'.",
                                "hpvmstart: Unable to continue."]
    assert fingerprint(state) == before


def test_conflicting_explicit_backing_store_is_an_error_unless_F(state):
    before = fingerprint(state)
    code, out, err = run_cli(hpvmcreate.main, ["-P", "other", "-a",
                                               "disk:scsi::disk:/dev/dsk/c1t2d0"], state)
    assert code == 1
    assert err.splitlines()[0] == "hpvmcreate: Device file '/dev/dsk/c1t2d0' in use by another guest."
    assert fingerprint(state) == before
    code, out, err = run_cli(hpvmcreate.main, ["-P", "other", "-F", "-a",
                                               "disk:scsi::disk:/dev/dsk/c1t2d0"], state)
    assert (code, err) == (0, "")


def test_check_only_changes_nothing(state):
    before = fingerprint(state)
    code, out, err = run_cli(hpvmcreate.main, ["-P", "trial", "-s", "-c", "3"], state)
    assert code == 0 and "Warning 1: Guest's vcpus exceeds server's physical cpus." in err
    assert "continuing" not in err
    code, out, err = run_cli(hpvmmodify.main, ["-P", "existing", "-s", "-r", "64G"], state)
    assert code == 0 and "Insufficient free memory for guest." in err
    assert fingerprint(state) == before
