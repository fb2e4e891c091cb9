"""CollectSystemData: hpvmcollect through CIM, as a job, and the archives it leaves.

The method checks its input at once (the guest, the options, the crash dump) and refuses
bad input with the command's text as a CIM error, changing nothing. It then returns 4096
and an HPVM_ConcreteJob (a "task" job of `JobManager`). The collection itself is
`Agent.collect`, the function hpvmcollect runs, in the one collection worker thread: jobs
run one at a time in the order they were asked for, each with an `Agent` of its own (the
server's Agent keeps per-call state for the CIM methods; a collection takes seconds).
PercentComplete follows the agent's progress events; a finished job names its archive
(ArchiveID, ArchiveURL, ArchiveName, ArchiveSize, ArchiveSHA256, CollectedItems), which
downloads from `/collections/<ArchiveID>` (provider/http/downloads.py). A failed
collection ends in Exception (ErrorCode 2) with the command's text (the guide's disk-full
lines verbatim) and leaves no file. Archives are kept in the state folder
(provider/collection_store.py) and pruned after every collection and at server start.
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import pywbem
from pywbem import CIMError, CIMInstanceName

from agent.collect import (CollectError, CollectRequest, DiskFullError, check_request, dotted,
                           find_crash_dump)
from agent.errors import AgentError
from provider.collection_store import ArchiveStore, RetentionPolicy
from provider.providers.base import method_result
from provider.providers.hpvm_jobs import job_manager

log = logging.getLogger("vmprovider.collect")

METHOD = "HPVM_VirtualSystemManagementService.CollectSystemData"
JOB_STARTED = 4096
FAILED = 2                      # the job's ErrorCode: the method table's "Failed"
CRASH_DIR_ENV = "VMPROVIDER_CRASH_DIR"      # as hpvmcollect (agent/cli/hpvmcollect.py)
_ENV_KEY = "hpvm.collections"
_ENV_GUARD = threading.Lock()


def collection_service(env) -> "CollectionService":
    """The server's one CollectionService (made on first use, kept in ``env.options``); the
    retention policy comes from ``env.options`` `collect_keep` / `collect_max_age_days`."""
    with _ENV_GUARD:
        service = env.options.get(_ENV_KEY)
        if service is None:
            policy = RetentionPolicy(
                keep=int(env.options.get("collect_keep", RetentionPolicy.keep)),
                max_age_days=float(env.options.get("collect_max_age_days",
                                                   RetentionPolicy.max_age_days)))
            service = env.options[_ENV_KEY] = CollectionService(env, policy)
        return service


class CollectionService:
    """Runs collections and pruning, one at a time, in its own worker thread."""

    def __init__(self, env, policy: RetentionPolicy):
        self.env = env
        self.store = ArchiveStore(env.state_dir, env.clock, policy)
        self.open_file = None        # agent.collect's writer (tests inject a failing one)
        # where crash dumps are: as hpvmcollect, $VMPROVIDER_CRASH_DIR (of the server) or
        # /var/adm/crash, /var/crash
        self.crash_dir = os.environ.get(CRASH_DIR_ENV) or None
        self._stopping = threading.Event()
        self._worker = ThreadPoolExecutor(max_workers=1,
                                          thread_name_prefix="vmprovider-collect")

    # -- the worker -------------------------------------------------------------------------

    def prune_soon(self) -> Future:
        """Prune in the worker (server start)."""
        return self._worker.submit(self._prune)

    def shutdown(self) -> None:
        """Stop: the running collection is cancelled between two steps (it leaves nothing),
        queued ones end in Exception."""
        self._stopping.set()
        self._worker.shutdown(wait=False, cancel_futures=True)

    def _prune(self) -> None:
        try:
            self.store.ensure()
            self.store.prune()
        except OSError as exc:
            log.error("cannot prune the collections in %s: %s", self.store.root, exc)
        except Exception:
            log.exception("pruning the collections in %s failed", self.store.root)

    # -- a collection -------------------------------------------------------------------------

    def start(self, *, owner: str, guest_uuid: str, guest_name: str,
              request: CollectRequest, owning: CIMInstanceName | None):
        """Queue a checked request; returns its job."""
        jobs = job_manager(self.env)
        job = jobs.create_task(method=METHOD, name=f"Collect guest {guest_name}", owner=owner,
                               guest_uuid=guest_uuid, guest_name=guest_name, action="collect",
                               request=_request_text(request), owning=owning,
                               effect="data collection (hpvmcollect)")
        try:
            future = self._worker.submit(self._run, job, request)
        except RuntimeError:          # shut down: the server is stopping
            jobs.finish_task(job, code=FAILED, description="The CIM server is stopping; "
                             "no collection was made.")
            return job
        future.add_done_callback(lambda f: f.cancelled() and jobs.finish_task(
            job, code=FAILED, description="The CIM server stopped before the collection "
                                          "ran; no archive was made."))
        return job

    def _agent(self, owner: str, guest_name: str):
        """An Agent of the job's own on the server's state folder, clock, host and backend."""
        base = self.env.agent
        agent = type(base)(base.state_dir, backend=base.driver.name, clock=base.clock,
                           actor=f"cim:{owner}", host=base.host)
        agent.command = f"CIM {METHOD} {guest_name}"
        return agent

    def _run(self, job, request: CollectRequest) -> None:
        """Collect, record, prune, then finish the job: a client that sees it Completed
        sees the archive folder as the retention rule leaves it."""
        jobs = job_manager(self.env)
        jobs.start_task(job)
        outcome = {}
        try:
            outcome = self._collect(jobs, job, request)
        finally:
            self._prune()
            if "extra" in outcome:
                jobs.finish_task(job, extra=outcome["extra"])
            else:
                jobs.finish_task(job, code=FAILED, description=outcome.get(
                    "error", "The collection failed unexpectedly (see the server log); no "
                             "archive was left behind."))

    def _collect(self, jobs, job, request: CollectRequest) -> dict:
        """{"extra": job values} for a recorded archive, or {"error": text}."""
        if self._stopping.is_set():
            return {"error": "The CIM server stopped before the collection ran; no archive "
                             "was made."}
        try:
            self.store.ensure()
            agent = self._agent(job.owner, job.guest_name)
            result = agent.collect(replace(request, directory=str(self.store.root)),
                                   progress=lambda ev: jobs.task_progress(job, ev.percent),
                                   cancel=self._stopping.is_set, open_file=self.open_file,
                                   crash_dir=self.crash_dir)
        except AgentError as exc:
            if isinstance(exc, DiskFullError):
                log.error("collection %s: %s is full", job.instance_id, exc.where)
            return {"error": "\n".join(exc.lines)}
        except OSError as exc:
            return {"error": f"Cannot prepare the collection folder {self.store.root}: "
                             f"{exc.strerror or exc}."}
        except Exception:
            log.exception("collection %s failed unexpectedly", job.instance_id)
            return {}
        try:
            item = self.store.add(result.path, kind=result.kind, size=result.size,
                                  sha256=result.sha256, owner=job.owner,
                                  guest=result.subject, job=job.instance_id)
        except (OSError, ValueError) as exc:
            _unlink(result.path)
            log.error("collection %s: cannot record the archive: %s", job.instance_id, exc)
            return {"error": f"Cannot record the archive {result.path.name}: "
                             f"{getattr(exc, 'strerror', None) or exc}; no archive was left "
                             "behind."}
        items = [f"{dotted(s.label)} {s.status}" for s in result.steps + result.trailer]
        return {"extra": {"ArchiveID": item.id, "ArchiveURL": item.url,
                          "ArchiveName": item.name, "ArchiveSize": item.size,
                          "ArchiveSHA256": item.sha256, "CollectedItems": items}}


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _request_text(r: CollectRequest) -> str:
    parts = [f"-P {r.guest_name}"]
    if r.crash:
        parts.append("-c" + (f" -n {r.crash_number}" if r.crash_number is not None else ""))
    if r.label:
        parts.append(f"-b {r.label}")
    if r.force:
        parts.append("-f")
    if r.purge_debug:
        parts.append("-g")
    return " ".join(parts)


# -- the method ------------------------------------------------------------------------------

def _value(params, name):
    p = params.get(name)
    return None if p is None else p.value


def _bad(param: str, text: str, code: int = pywbem.CIM_ERR_INVALID_PARAMETER) -> CIMError:
    return CIMError(code, f"{param}: {text}")


def _guest(env, ref) -> tuple[str, str]:
    """(uuid, name) of the guest AffectedSystem names; an invalid guest counts (collecting it
    is when collection matters most)."""
    if ref is None:
        raise _bad("AffectedSystem", "On the VM Host, give the guest with -P vm-name or -p "
                                     "vm-number: a reference to an HPVM_Guest is required.")
    if not isinstance(ref, CIMInstanceName) or ref.classname.lower() not in (
            "hpvm_guest", "cim_computersystem", "hp_softpartitioncs"):
        raise _bad("AffectedSystem", "a reference to an HPVM_Guest is required")
    uuid = ref.keybindings.get("Name")
    if str(ref.keybindings.get("CreationClassName")).lower() != "hpvm_guest" or \
            not isinstance(uuid, str):
        raise _bad("AffectedSystem", f"{ref} is not the path of an HPVM_Guest "
                                     "(CreationClassName HPVM_Guest, Name = guest UUID)")
    uuid = uuid.lower()
    agent = env.agent
    try:
        guest = agent.find_by_uuid(uuid)
        return guest.uuid, guest.name
    except AgentError as exc:
        for bad in agent.invalid_guests():
            if bad.uuid == uuid:
                return bad.uuid, bad.name
        raise _bad("AffectedSystem", "\n".join(exc.lines), pywbem.CIM_ERR_NOT_FOUND) from None


def collect_system_data(env, ctx, target, params):
    """The CollectSystemData handler (HPVM_VirtualSystemManagementService, admin only)."""
    uuid, name = _guest(env, _value(params, "AffectedSystem"))
    if _value(params, "Directory") is not None:
        raise _bad("Directory", "the archive is kept in the server's collection folder and "
                                "downloads from the finished job's ArchiveURL; give no "
                                "Directory")
    if _value(params, "LeaveDirectory"):
        raise _bad("LeaveDirectory", "a collection through CIM is always an archive (a folder "
                                     "cannot be downloaded); -l is for hpvmcollect on the "
                                     "VM Host")
    count = _value(params, "CrashDumpCount")
    request = CollectRequest(guest_name=name, crash=bool(_value(params, "IncludeCrashDump")),
                             crash_number=None if count is None else int(count),
                             label=_value(params, "ArchiveName"),
                             force=bool(_value(params, "Overwrite")),
                             purge_debug=bool(_value(params, "CleanUpDumps")))
    service = collection_service(env)
    try:
        check_request(request, form="host")
    except CollectError as exc:
        text = "\n".join(exc.lines)
        where = ("CrashDumpCount" if "-n" in text else "ArchiveName" if "-b" in text
                 else "AffectedSystem")
        raise _bad(where, text) from None
    if request.crash:
        try:
            find_crash_dump(service.crash_dir, request.crash_number)
        except CollectError as exc:
            raise _bad("CrashDumpCount" if request.crash_number is not None
                       else "IncludeCrashDump", "\n".join(exc.lines),
                       pywbem.CIM_ERR_NOT_FOUND if exc.kind == "not_found"
                       else pywbem.CIM_ERR_INVALID_PARAMETER) from None
    owning = target if isinstance(target, CIMInstanceName) else None
    job = service.start(owner=ctx.principal.user, guest_uuid=uuid, guest_name=name,
                        request=request, owning=owning)
    return method_result(JOB_STARTED, "uint32", [("Job", job.path), ("Warnings", [])])
