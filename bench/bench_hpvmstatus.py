"""hpvmstatus as a whole process with 1000 defined guests against 1, side by side in one run.

The target (issue 2): the plain listing with 1000 guests costs at most 3x what it costs with 1.
Prints the ratio (large / small) of the median of alternating rounds for each view.
Run: python -m bench.bench_hpvmstatus
"""
from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path

from agent.guest import Guest
from agent.guestconfig import format_config
from agent.hostfacts import HostFacts
from agent.resources import NetworkResource, StorageResource
from agent.store import Store
from bench._common import alternating_medians, process_seconds

ROUNDS = 5
VIEWS = ([], ["-V"], ["-M"], ["-s"], ["-e"])
HOST = HostFacts(cpus=2, cpu_mhz=1400, memory_mb=12276, swap_mb=7805,
                 host_uuid="a7d6d186-9f74-11d7-867a-636e2282571a", hostname="benchhost")


def _populate(root: Path, guests: int) -> Path:
    """Guests laid down as the agent stores them (config, name link, creation event)."""
    root.mkdir(mode=0o700)
    (root / "host.toml").write_text(HOST.to_toml())
    store = Store(root, actor="bench")
    for start in range(0, guests, 250):
        with store.transaction() as txn:
            for n in range(start + 1, min(guests, start + 250) + 1):
                g = Guest(uuid=str(uuid.UUID(int=n)), name=f"guest{n}", vm_number=n,
                          serial=f"VM{n:08d}", os_type="HPUX",
                          storage=[StorageResource("disk", "scsi", 0, 1, 0, "file",
                                                   f"/var/opt/hpvm/img/guest{n}")],
                          nics=[NetworkResource("lan", 0, 0, f"02-00-00-00-{n >> 8:02x}-"
                                                f"{n & 255:02x}", "vswitch1", 1)])
                txn.write(f"uuids/{g.uuid}/vmm_config.current", format_config(g))
                txn.symlink(f"guests/{g.name}", f"../uuids/{g.uuid}")
                txn.event("guest.create", g.uuid, name=g.name, vm_number=n)
    return root


def _run(state: Path, args: list[str]) -> float:
    return process_seconds([sys.executable, "-m", "agent.cli.hpvmstatus", "--state-dir",
                            str(state), *args], check=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        small = _populate(Path(tmp) / "one", 1)
        large = _populate(Path(tmp) / "many", 1000)
        for args in VIEWS:
            ma, mb = alternating_medians(ROUNDS, lambda: _run(small, args),
                                         lambda: _run(large, args))
            name = "hpvmstatus " + " ".join(args) if args else "hpvmstatus"
            print(f"{name:16} 1 guest {ma * 1000:7.1f} ms   1000 guests {mb * 1000:7.1f} ms"
                  f"   ratio {mb / ma:5.2f}" + ("   (target <= 3)" if not args else ""))


if __name__ == "__main__":
    main()
