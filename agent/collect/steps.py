"""The step list and what each step collects, with the statuses the guide prints."""
from __future__ import annotations

import os
import platform
import stat
import time
from pathlib import Path
from typing import Callable

from agent.clock import Clock
from agent.collect.archive import ArchiveSink
from agent.collect.crashdump import CrashDump
from agent.collect.machine import (SYSLOG_TAIL_BYTES, SYSLOGS, TOMBSTONE_DIR, read_file,
                                   real_mounts, run_command, this_machine)
from agent.collect.model import (GC_LABEL, NA, NO, OK, REMOTE_LABEL, TAR_LABEL,
                                 CollectCancelled, CollectEvent, CollectRequest, StepResult,
                                 dotted, header_lines, text_block)
from agent.collect.snapshot import DEBUG_DIR, Capture, Pinned


class CollectionRun:
    """One collection in progress: its steps, its sink, its progress reports."""

    def __init__(self, *, form: str, request: CollectRequest, clock: Clock, progress,
                 cancel, open_file, crash: CrashDump | None, agent=None,
                 capture: Capture | None = None, subject: str = ""):
        self.form, self.request, self.clock = form, request, clock
        self.progress = progress or (lambda event: None)
        self.cancel = cancel
        # read from the package at run time: agent.collect.default_open_file is the writer
        # a caller (or a test) may replace
        from agent import collect as package
        self.open_file = open_file or package.default_open_file
        self.crash = crash
        self.agent, self.cap, self.subject = agent, capture, subject
        self.sink: ArchiveSink | None = None
        self.results: list[StepResult] = []
        self.collected_debug: list[Pinned] = []
        self._machine = None

    # -- the step lists
    def steps(self) -> list[tuple[str, Callable[[StepResult], str]]]:
        crash_label = "Collecting crash dump"
        if self.crash is not None and self.crash.number is not None:
            crash_label += f" {self.crash.number}"
        machine = [
            ("Collecting I/O configuration info", self.s_ioscan),
            ("Collecting filesystem info", self.s_fsinfo),
            ("Collecting system info", self.s_sysinfo),
            ("Collecting lan info", self.s_laninfo),
            ("Running lanshow", self.s_lanshow),
            ("Collecting installed sw info", self.s_swlist),
        ]
        tail = [
            (crash_label, self.s_crash),
            ("Running crashinfo", self.s_crashinfo),
            ("Collecting tombstone", self.s_tombstone),
            ("Collecting system message buffer", self.s_msgbuf),
            ("Collecting system syslogs", self.s_syslog),
        ]
        if self.form == "guest":
            return machine + tail
        return [("Copying host's device database", self.s_devdb)] + machine + [
            ("Collecting command logs", self.s_command_logs),
            ("Collecting messages from vmm", self.s_vmm_messages),
            ("Collecting lv info", self.s_lvinfo),
            ("Collecting vgdisplay info", self.s_vginfo),
            ("Collecting disk info", self.s_diskinfo),
            ("Collecting passthru disk info", self.s_passthru),
            ("Collecting file backing store info", self.s_backing_files),
            ("Copying guest's log file", self.s_guest_log),
            ("Copying guest's console log file", self.s_console_log),
            ("Copying hpvm configuration", self.s_hpvm_config),
            ("Copying guest's config file", self.s_guest_config),
            ("Getting status of the guest", self.s_status),
            ("Getting detailed status of the guest", self.s_detailed_status),
            ("Getting guest's entitlement", self.s_entitlement),
            ("Copying guest's config file change log", self.s_change_log),
            ("Copying guest's domain XML", self.s_domain_xml),
            ("Copying guest's QEMU log", self.s_qemu_log),
            ("Copying guest debug memory file", self.s_debug_files),
        ] + tail

    def trailer_labels(self) -> list[str]:
        return [TAR_LABEL] + ([GC_LABEL] if self.form == "host" else []) + [REMOTE_LABEL]

    # -- helpers
    def _put(self, res: StepResult, rel: str, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        res.files.append(self.sink.add_bytes(rel, data))

    def _put_pinned(self, res: StepResult, rel: str, pinned: Pinned) -> None:
        res.files.append(self.sink.add_stream(rel, pinned.reader(), pinned.size))

    def _copy(self, res: StepResult, pinned: Pinned | None, rel: str, missing: str) -> str:
        """A captured file, whole, as `rel`; N/A (`missing` says why) when there is none."""
        if pinned is None:
            return self._na(res, missing)
        self._put_pinned(res, rel, pinned)
        return OK

    def _output(self, res: StepResult, argv: list[str], rel: str, missing: str,
                **options) -> str:
        """A host command's output as `rel`; N/A (`missing` says why) when it has none."""
        out = run_command(argv, **options)
        if out is None:
            return self._na(res, missing)
        self._put(res, rel, out)
        return OK

    def _na(self, res: StepResult, why: str) -> str:
        res.note = why
        return NA

    def _host(self):
        if self.agent is not None:
            return self.agent.host
        if self._machine is None:
            self._machine = this_machine()
        return self._machine

    # -- machine steps (both forms)
    def s_ioscan(self, res):
        h = self._host()
        lines = ["# I/O configuration: " + ("the VM Host as host.toml describes it"
                                             if self.form == "host" else "this machine"), ""]
        lines.append("Disks:")
        if self.form == "host":
            lines += [f"  {d.path:<24} {d.kind:<5} {d.size_mb:>9} MB  wwid={d.wwid or '-'}"
                      f"{'  partitions=' + ','.join(d.partitions) if d.partitions else ''}"
                      f"{'  ' + d.description if d.description else ''}" for d in h.disks]
        else:
            parts = read_file("/proc/partitions")
            if parts:
                lines += ["  " + line for line in
                          parts.decode("utf-8", "replace").rstrip().splitlines()]
        lines += ["", "Network interfaces:"]
        lines += [f"  {n.name:<8} {n.mac}  {n.device or '-':<12} {n.speed_mbps} Mb/s"
                  for n in h.nics]
        self._put(res, "host.ioscan", text_block(lines))
        return OK

    def s_fsinfo(self, res):
        mounts = []
        if self.form == "host":
            mounts = [(fs.mount, fs.device) for fs in self.agent.host.filesystems]
            mounts.append((str(self.agent.store.root), "(state folder)"))
        else:
            mounts = real_mounts()
        lines = [f"{'Mounted on':<28} {'Device':<24} {'Size MB':>10} {'Used MB':>10} "
                 f"{'Avail MB':>10} Capacity"]
        for mount, dev in mounts:
            try:
                st = os.statvfs(mount)
            except OSError:
                lines.append(f"{mount:<28} {dev:<24} (not mounted here)")
                continue
            size = st.f_blocks * st.f_frsize // (1 << 20)
            avail = st.f_bavail * st.f_frsize // (1 << 20)
            used = (st.f_blocks - st.f_bfree) * st.f_frsize // (1 << 20)
            cap = f"{(100 * used // size) if size else 0}%"
            lines.append(f"{mount:<28} {dev:<24} {size:>10} {used:>10} {avail:>10} {cap}")
        if len(lines) == 1:
            return self._na(res, "no file systems")
        self._put(res, "host.fsinfo", text_block(lines))
        return OK

    def s_sysinfo(self, res):
        from agent.api.views import PRODUCT_RELEASE, product_version
        h = self._host()
        u = platform.uname()
        lines = [f"Hostname                 : {h.hostname}",
                 f"Model                    : {h.model}",
                 f"Serial number            : {h.serial}",
                 f"Host UUID                : {h.host_uuid}",
                 f"Processors               : {h.cpus}",
                 f"Processor speed          : {h.cpu_mhz} Mhz",
                 f"Physical memory          : {h.memory_mb} Mbytes",
                 f"Swap space               : {h.swap_mb} Mbytes",
                 f"Operating system         : {u.system} {u.release} {u.version} {u.machine}",
                 f"Integrity VM release     : {PRODUCT_RELEASE}",
                 f"vmprovider build         : {product_version()}",
                 f"Python                   : {platform.python_version()}",
                 f"Collected at             : "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(self.clock.now()))}"]
        if self.form == "host":
            lines += [f"Backend                  : {getattr(self.agent.driver, 'name', '')}",
                      f"State folder             : {self.agent.store.root}",
                      f"Store generation         : {self.cap.generation}"]
            for key, title in (("summary", "hpvmstatus"), ("host_resources", "hpvmstatus -s")):
                if self.cap.views.get(key):
                    lines += ["", f"# {title}", self.cap.views[key].rstrip()]
        else:
            uptime = read_file("/proc/uptime")
            if uptime:
                lines.append(f"Uptime seconds           : {uptime.split()[0].decode()}")
        self._put(res, "host.sysinfo", text_block(lines))
        return OK

    def s_laninfo(self, res):
        h = self._host()
        lines = ["Interfaces:"]
        lines += [f"  {n.name:<8} {n.mac}  {n.device or '-':<12} {n.speed_mbps} Mb/s"
                  for n in h.nics]
        lines += ["", "Addresses:"] + [f"  {a}" for a in h.ip_addresses]
        if self.form == "host":
            vsw = self.cap.views.get("vswitches")
            if vsw:
                lines += ["", "# hpvmnet", vsw.rstrip()]
        self._put(res, "host.laninfo", text_block(lines))
        return OK

    def s_lanshow(self, res):
        return self._output(res, ["lanshow"], "host.lanshow", "lanshow is not installed")

    def s_swlist(self, res):
        from importlib import metadata
        lines = ["# Python distributions"]
        dists = sorted({(d.metadata["Name"] or "?", d.version) for d in metadata.distributions()},
                       key=lambda x: x[0].lower())
        lines += [f"{n:<40} {v}" for n, v in dists]
        for argv in (["swlist"], ["dpkg-query", "-W"], ["rpm", "-qa"]):
            out = run_command(argv)
            if out is not None:
                lines += ["", f"# {' '.join(argv)}", out.decode("utf-8", "replace").rstrip()]
                break
        self._put(res, "host.swlist", text_block(lines))
        return OK

    def s_crash(self, res):
        if not self.request.crash:
            return NO
        if self.crash is None:
            return self._na(res, "no crash dump on this host")
        name = self.crash.path.name
        res.files += self.sink.add_tree(name, self.crash.path)
        return OK if res.files else self._na(res, f"{self.crash.path} holds no readable file")

    def s_crashinfo(self, res):
        if not self.request.crash:
            return NO
        if self.crash is None:
            return self._na(res, "no crash dump")
        return self._output(res, ["crashinfo", str(self.crash.path)], "crashinfo.out",
                            "crashinfo is not installed or failed", timeout=600)

    def s_tombstone(self, res):
        if not self.request.crash:
            return NO
        if not os.path.isdir(TOMBSTONE_DIR):
            return self._na(res, f"{TOMBSTONE_DIR} does not exist")
        res.files += self.sink.add_tree("tombstones", Path(TOMBSTONE_DIR))
        return OK if res.files else self._na(res, "no tombstone")

    def s_msgbuf(self, res):
        return self._output(res, ["dmesg"], "host.msgbuf", "dmesg is not available")

    def s_syslog(self, res):
        for path in SYSLOGS:
            try:
                with open(path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    start = max(0, size - SYSLOG_TAIL_BYTES)
                    f.seek(start)
                    self._put(res, f"syslog/{os.path.basename(path)}", f.read(size - start))
            except OSError:
                continue
        return OK if res.files else self._na(res, "no readable system log")

    # -- host form: the state folder (all from the capture)
    def s_devdb(self, res):
        return self._copy(res, self.cap.files.get("common/hpvm_mgmtdb"), "config/hpvm_mgmtdb",
                          "the device database is empty")

    def s_command_logs(self, res):
        from agent.store import COMMAND_LOG
        if COMMAND_LOG in self.cap.files:
            self._put_pinned(res, "logs/command.log", self.cap.files[COMMAND_LOG])
        if "command.log" in self.cap.guest_files:
            self._put_pinned(res, "guest/command.log", self.cap.guest_files["command.log"])
        return OK if res.files else self._na(res, "no command log yet")

    def s_vmm_messages(self, res):
        from agent.store import EVENT_LOG
        if EVENT_LOG in self.cap.files:
            self._put_pinned(res, "logs/events.log", self.cap.files[EVENT_LOG])
        for rel, p in sorted(self.cap.files.items()):
            if rel.startswith("common/hpvm_mon_log"):
                self._put_pinned(res, f"logs/{rel.split('/', 1)[1]}", p)
        return OK if res.files else self._na(res, "no event log yet")

    def s_lvinfo(self, res):
        lvs = self.agent.host.logical_volumes
        if not lvs:
            return self._na(res, "the host has no logical volumes")
        lines = [f"{'LV Name':<28} {'VG':<10} {'Size MB':>9}  Used by"]
        lines += [f"{lv.path:<28} {lv.volume_group:<10} {lv.size_mb:>9}  "
                  f"{','.join(self.cap.device_users.get(lv.path, [])) or '-'}" for lv in lvs]
        self._put(res, "host.lvinfo", text_block(lines))
        return OK

    def s_vginfo(self, res):
        groups: dict[str, list] = {}
        for lv in self.agent.host.logical_volumes:
            groups.setdefault(lv.volume_group, []).append(lv)
        if not groups:
            return self._na(res, "the host has no volume groups")
        lines = []
        for vg, lvs in sorted(groups.items()):
            pvs = sorted({d for lv in lvs for d in lv.disks})
            lines += ["--- Volume groups ---", f"VG Name                     /dev/{vg}",
                      f"Cur LV                      {len(lvs)}",
                      f"Alloc MB                    {sum(lv.size_mb for lv in lvs)}",
                      f"Cur PV                      {len(pvs)}"]
            lines += [f"PV Name                     {pv}" for pv in pvs] + [""]
        self._put(res, "host.vginfo", text_block(lines))
        return OK

    def s_diskinfo(self, res):
        disks = self.agent.host.disks
        if not disks:
            return self._na(res, "the host has no disks")
        lines = [f"{'Device':<24} {'Kind':<5} {'Size MB':>9} {'WWID':<20} Used by"]
        lines += [f"{d.path:<24} {d.kind:<5} {d.size_mb:>9} {d.wwid or '-':<20} "
                  f"{','.join(self.cap.device_users.get(d.path, [])) or '-'}" for d in disks]
        g = self.cap.guest
        if g is not None and g.storage:
            from agent.resources import format_resource
            lines += ["", f"# storage of guest {g.name}"]
            lines += [format_resource(s) for s in g.storage]
        self._put(res, "host.diskinfo", text_block(lines))
        return OK

    def s_passthru(self, res):
        g = self.cap.guest
        attached = [s for s in (g.storage if g else []) if s.storage == "attach"]
        if not attached:
            return self._na(res, "the guest has no attached (pass-through) device")
        from agent.resources import format_resource
        self._put(res, "guest/passthru.info", text_block(format_resource(s) for s in attached))
        return OK

    def s_backing_files(self, res):
        g = self.cap.guest
        files = [s for s in (g.storage if g else []) if s.storage == "file"]
        if not files:
            return self._na(res, "the guest has no file backing store")
        lines = []
        for s in files:
            try:
                st = os.stat(s.location)
                lines.append(f"{s.location}: {st.st_size} bytes, mode {stat.filemode(st.st_mode)}"
                             f", modified {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(st.st_mtime))}")
            except OSError as exc:
                lines.append(f"{s.location}: {exc.strerror}")
        self._put(res, "guest/backing_files.info", text_block(lines))
        return OK

    def s_guest_log(self, res):
        return self._copy(res, self.cap.guest_files.get("log"), "guest/log",
                          "the guest has no log")

    def s_console_log(self, res):
        return self._copy(res, self.cap.guest_files.get("console.log"), "guest/console.log",
                          "the backend keeps no console log for this guest")

    def s_hpvm_config(self, res):
        skip = ("common/events.log", "common/command.log", "common/hpvm_mgmtdb")
        for rel, p in sorted(self.cap.files.items()):
            if rel in skip or rel.startswith("common/hpvm_mon_log"):
                continue
            self._put_pinned(res, f"config/{rel.rsplit('/', 1)[-1]}", p)
        return OK if res.files else self._na(res, "no configuration files")

    def s_guest_config(self, res):
        for name in ("vmm_config.current", "vmm_config.prev", "vmm_config.next"):
            if name in self.cap.guest_files:
                self._put_pinned(res, f"guest/{name}", self.cap.guest_files[name])
        return OK if res.files else self._na(res, "the guest has no configuration file")

    def _views(self, res, pairs) -> str:
        for key, rel in pairs:
            if self.cap.views.get(key):
                self._put(res, rel, self.cap.views[key])
        if not res.files:
            notes = [self.cap.notes[k] for k, _ in pairs if k in self.cap.notes]
            return self._na(res, "; ".join(notes) or "not available")
        return OK

    def s_status(self, res):
        return self._views(res, [("status", "guest/hpvmstatus.P"),
                                 ("summary", "hpvmstatus")])

    def s_detailed_status(self, res):
        status = self._views(res, [("verbose", "guest/hpvmstatus.V"),
                                   ("deferred", "guest/hpvmstatus.D")])
        for name in ("runtime", "model"):
            if name in self.cap.guest_files:
                self._put_pinned(res, f"guest/{name}", self.cap.guest_files[name])
        return OK if res.files else status

    def s_entitlement(self, res):
        return self._views(res, [("entitlement", "guest/hpvmstatus.r"),
                                 ("host_resources", "hpvmstatus.s")])

    def s_change_log(self, res):
        return self._views(res, [("events", "guest/hpvmstatus.e")])

    def _driver_item(self, res, method: str, rel: str) -> str:
        """Backend-provided items (libvirt: domain XML, QEMU log); N/A where the backend has
        no such thing (ivm)."""
        fn = getattr(self.agent.driver, method, None)
        if fn is None or self.cap.guest is None:
            return self._na(res, f"the {getattr(self.agent.driver, 'name', '')} backend has none")
        try:
            data = fn(self.cap.guest)
        except Exception as exc:    # an outside service failing costs this item, not the run
            return self._na(res, f"the backend failed: {exc}")
        if not data:
            return self._na(res, "the backend returned nothing")
        self._put(res, rel, data)
        return OK

    def s_domain_xml(self, res):
        return self._driver_item(res, "collect_domain_xml", "guest/domain.xml")

    def s_qemu_log(self, res):
        return self._driver_item(res, "collect_qemu_log", "guest/qemu.log")

    def s_debug_files(self, res):
        debug = sorted((k, p) for k, p in self.cap.guest_files.items()
                       if k.startswith(DEBUG_DIR + "/"))
        if not debug:
            return self._na(res, "the guest has no debug memory file")
        for name, p in debug:
            self._put_pinned(res, f"guest/{name}", p)
            self.collected_debug.append(p)
        return OK

    # -- running it
    def report(self, event: str, index: int, total: int, label: str = "",
               status: str | None = None, trailer: bool = False) -> None:
        self.progress(CollectEvent(event, index, total, label, status, self.subject, self.form,
                                   trailer))

    def run_steps(self, steps, total: int) -> None:
        for i, (label, fn) in enumerate(steps, 1):
            if self.cancel is not None and self.cancel():
                raise CollectCancelled()
            self.report("step", i, total, label)
            res = StepResult(i, label, NA)
            res.status = fn(res)
            self.results.append(res)
            self.report("done", i, total, label, res.status)

    def manifest(self) -> bytes:
        lines = header_lines(self.form, self.subject)
        lines += [f"{dotted(r.label)} {r.status}" + (f"    # {r.note}" if r.note else "")
                  for r in self.results]
        lines += [""] + [f"{r.label}: {f}" for r in self.results for f in r.files]
        return text_block(lines).encode("utf-8")
