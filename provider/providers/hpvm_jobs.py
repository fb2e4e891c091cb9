"""Jobs: work a CIM method started and a client follows (HPVM_ConcreteJob, DSP1042/1057 4096).

A job is kept in memory by the `JobManager` of the server process and outlives the request
that created it. It holds no thread and no timer: its state is read through from the agent
whenever someone looks (GetInstance, EnumerateInstances, a traversal) or when the server's
periodic `JobManager.poll()` runs, on the injected clock. So a start job completes once the
guest shows `On (OS)` (or `On (EFI)` when no OS is installed) by the model's timings, and a
graceful stop once it shows `Off`.

The one thing a job does by itself is the TimeoutPeriod of a graceful stop: a guest still
`Stopping` when the timeout has passed is stopped hard (hpvmstop -h), which is what an
administrator does after a graceful hpvmstop that does not end, and the job completes with a
warning saying so. A start, reboot or reset that has not reached its state by its timeout
ends in Exception (ErrorCode 3) and the guest keeps booting.

A finished job stays readable for `TimeBeforeRemoval` (5 minutes), then disappears. Jobs are
visible to the user who started them and to host admins.
"""
from __future__ import annotations

import datetime
import itertools
import threading
from dataclasses import dataclass, field
from typing import Iterable

import pywbem
from pywbem import CIMDateTime, CIMError, CIMInstanceName

from agent.backends.base import OFF, ON_ATTN, ON_EFI, ON_OS
from agent.errors import AgentError
from provider.providers.base import (AssociationProvider, Context, InstanceFactory,
                                     InstanceProvider, same_path)

NS = "root/cimv2"
JOB_CLASS = "HPVM_ConcreteJob"
AFFECTED_CLASS = "HPVM_AffectedJobElement"
OWNING_CLASS = "HPVM_OwningJobElement"
JOB_PREFIX = "HPVM:job:"
KEEP_SECONDS = 300.0          # TimeBeforeRemoval

# CIM_ConcreteJob.JobState
NEW, RUNNING, COMPLETED, EXCEPTION = 2, 4, 7, 10
_JOB_STATUS = {NEW: "New", RUNNING: "Running", COMPLETED: "Completed", EXCEPTION: "Exception"}
# CIM_ManagedSystemElement.OperationalStatus
_OK, _ERROR, _DORMANT, _COMPLETED = 2, 6, 15, 17

_ENV_JOBS = "hpvm.jobs"
_ENV_LOCK = "hpvm.agent_lock"
_ENV_GUARD = threading.Lock()


def agent_lock(env) -> threading.RLock:
    """The lock every CIM change to the agent takes: the Agent object keeps per-call state
    (its open transaction, the command line for command.log), so one change at a time."""
    with _ENV_GUARD:
        lock = env.options.get(_ENV_LOCK)
        if lock is None:
            lock = env.options[_ENV_LOCK] = threading.RLock()
        return lock


def job_manager(env) -> "JobManager":
    """The server's one JobManager (made on first use, kept in ``env.options``)."""
    with _ENV_GUARD:
        jobs = env.options.get(_ENV_JOBS)
    if jobs is None:
        lock = agent_lock(env)
        with _ENV_GUARD:
            jobs = env.options.get(_ENV_JOBS)
            if jobs is None:
                jobs = env.options[_ENV_JOBS] = JobManager(env.agent, env.clock, lock)
    return jobs


def guest_path(uuid: str) -> CIMInstanceName:
    return CIMInstanceName("HPVM_Guest", keybindings={"CreationClassName": "HPVM_Guest",
                                                      "Name": uuid}, namespace=NS)


def job_path(instance_id: str) -> CIMInstanceName:
    return CIMInstanceName(JOB_CLASS, keybindings={"InstanceID": instance_id}, namespace=NS)


@dataclass
class Job:
    """One piece of followed work. Times are wall-clock seconds of the injected clock."""

    instance_id: str
    method: str                    # "HPVM_Guest.RequestStateChange"
    name: str                      # what it does, e.g. "Start guest vm1"
    owner: str
    guest_uuid: str
    guest_name: str
    action: str                    # start | stop | reboot | reset
    targets: tuple[str, ...]       # guest states that complete it (stop: Off)
    submitted: float
    expected_seconds: float | None
    deadline: float | None = None  # from TimeoutPeriod
    force: bool = False
    state: int = RUNNING
    percent: int = 0
    finished: float | None = None
    changed: float = 0.0
    error_code: int | None = None
    error_description: str | None = None
    warnings: list[str] = field(default_factory=list)
    request: str = ""              # "RequestedState=2"
    # A "task" job (CollectSystemData) is driven by its own worker thread through
    # start_task/task_progress/finish_task; nothing is read through from the guest.
    kind: str = "guest"            # guest | task
    extra: dict = field(default_factory=dict)      # more HPVM_ConcreteJob property values
    owning: CIMInstanceName | None = None          # the service that started it, if not the guest
    effect: str = ""               # AffectedJobElement's description (default: the state change)

    @property
    def done(self) -> bool:
        return self.state in (COMPLETED, EXCEPTION)

    @property
    def path(self) -> CIMInstanceName:
        return job_path(self.instance_id)

    @property
    def affected(self) -> CIMInstanceName:
        return guest_path(self.guest_uuid)


class JobManager:
    """Creates, advances, lists and expires jobs. Thread-safe; never blocks on a timer."""

    def __init__(self, agent, clock, agent_lock: threading.RLock | None = None,
                 keep_seconds: float = KEEP_SECONDS):
        self.agent = agent
        self.clock = clock
        self.keep_seconds = keep_seconds
        self._agent_lock = agent_lock or threading.RLock()
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._numbers = itertools.count(1)
        self._requested: dict[str, int] = {}

    def note_request(self, uuid: str, requested: int) -> None:
        """Remember the last RequestedState a guest accepted (DSP1057: RequestedState shows
        the last request; cimtest checks it)."""
        with self._lock:
            self._requested[uuid] = requested

    def requested_state(self, uuid: str) -> int | None:
        """The last RequestedState the guest accepted since the server started, or None."""
        with self._lock:
            return self._requested.get(uuid)

    # -- timings -----------------------------------------------------------------------

    def _timing(self, name: str) -> float | None:
        timing = getattr(self.agent.driver, "timing", None)
        return float(timing(name)) if timing is not None else None

    def boot_target(self, guest) -> tuple[tuple[str, ...], float | None]:
        """The states a boot job waits for, and how long the model takes to reach them: the
        OS when one is installed in the guest, else its firmware (EFI)."""
        efi = self._timing("efi_seconds")
        try:
            has_os = bool(self.agent.model_facts(guest).os)
        except (AgentError, AttributeError, ImportError):
            has_os = False
        if has_os:
            osb = self._timing("os_boot_seconds")
            return (ON_OS,), (efi + osb if efi is not None and osb is not None else None)
        return (ON_EFI, ON_OS), efi

    # -- creation ----------------------------------------------------------------------

    def create(self, *, method: str, name: str, owner: str, guest, action: str,
               targets: tuple[str, ...], expected_seconds: float | None,
               timeout: float | None = None, force: bool = False, request: str = "") -> Job:
        now = self.clock.now()
        with self._lock:
            self._expire(now)
            number = next(self._numbers)
            job = Job(instance_id=f"{JOB_PREFIX}{number}", method=method, name=name,
                      owner=owner, guest_uuid=guest.uuid, guest_name=guest.name, action=action,
                      targets=targets, submitted=now, expected_seconds=expected_seconds,
                      deadline=None if timeout is None else now + timeout, force=force,
                      changed=now, request=request)
            self._jobs[job.instance_id] = job
        self.advance(job)
        return job

    # -- task jobs: work running in a worker thread of its own ---------------------------

    def create_task(self, *, method: str, name: str, owner: str, guest_uuid: str,
                    guest_name: str, action: str, request: str = "",
                    owning: CIMInstanceName | None = None, effect: str = "") -> Job:
        """A job whose worker reports its progress (state New until `start_task`)."""
        now = self.clock.now()
        with self._lock:
            self._expire(now)
            number = next(self._numbers)
            job = Job(instance_id=f"{JOB_PREFIX}{number}", method=method, name=name,
                      owner=owner, guest_uuid=guest_uuid, guest_name=guest_name,
                      action=action, targets=(), submitted=now, expected_seconds=None,
                      state=NEW, changed=now, request=request, kind="task", owning=owning,
                      effect=effect)
            self._jobs[job.instance_id] = job
        return job

    def start_task(self, job: Job) -> None:
        with self._lock:
            if job.state == NEW:
                job.state = RUNNING
                job.changed = self.clock.now()

    def task_progress(self, job: Job, percent: int) -> None:
        """PercentComplete only rises, and reaches 100 only when the job completes."""
        with self._lock:
            if not job.done:
                job.percent = max(job.percent, min(99, int(percent)))

    def finish_task(self, job: Job, *, extra: dict | None = None, code: int | None = None,
                    description: str | None = None, warnings=()) -> None:
        """Completed (no `code`) or Exception (`code`, `description`)."""
        with self._lock:
            if job.done:
                return
            job.extra = {**job.extra, **(extra or {})}   # a new dict: readers hold no lock
            job.warnings = job.warnings + list(warnings)
            self._finish(job, COMPLETED if code is None else EXCEPTION, self.clock.now(),
                         code=code, description=description)

    # -- reading through -----------------------------------------------------------------

    def _finish(self, job: Job, state: int, when: float, *, code: int | None = None,
                description: str | None = None) -> None:
        job.state = state
        job.finished = job.changed = when
        if state == COMPLETED:
            job.percent = 100
        job.error_code = code
        job.error_description = description

    def advance(self, job: Job) -> Job:
        """Bring `job` up to date with the guest as the agent shows it now. Locks are taken
        in one order everywhere: the agent's, then the jobs'."""
        if job.done or job.kind == "task":
            return job
        with self._agent_lock:
            now = self.clock.now()
            try:
                guest = self.agent.find_by_uuid(job.guest_uuid)
                state = self.agent.runtime(guest).state
            except AgentError:
                guest = state = None
            with self._lock:
                if not job.done:
                    self._step(job, guest, state, now)
        return job

    def _step(self, job: Job, guest, state: str | None, now: float) -> None:
        if guest is None:
            self._finish(job, EXCEPTION, now, code=4,
                         description=f"The guest '{job.guest_name}' no longer exists.")
            return
        if state in job.targets:
            self._finish(job, COMPLETED, now)
            return
        late = job.deadline is not None and now >= job.deadline
        if job.action == "stop":
            if late:
                self._hard_stop(job, guest, now)
                return
        elif state == OFF:
            self._finish(job, EXCEPTION, now, code=4,
                         description=f"The guest '{job.guest_name}' stopped before it "
                                     f"reached {' or '.join(job.targets)}.")
            return
        elif state == ON_ATTN:
            self._finish(job, EXCEPTION, now, code=4,
                         description=f"The guest '{job.guest_name}' is {ON_ATTN}.")
            return
        elif late:
            self._finish(job, EXCEPTION, now, code=3,
                         description=f"The guest '{job.guest_name}' did not reach "
                                     f"{' or '.join(job.targets)} within the timeout "
                                     f"period; it is {state}.")
            return
        if job.expected_seconds:
            elapsed = max(0.0, now - job.submitted)
            job.percent = max(job.percent, min(99, int(100 * elapsed / job.expected_seconds)))

    def _hard_stop(self, job: Job, guest, now: float) -> None:
        """A graceful stop past its TimeoutPeriod: stop the guest hard (the caller holds the
        agent lock), in the name of the job's owner."""
        agent = self.agent
        old_actor, old_command = agent.actor, agent.command
        agent.actor = f"cim:{job.owner}"
        agent.command = f"CIM {job.method}(RequestedState=3) {job.guest_name}: TimeoutPeriod"
        try:
            agent.stop_guest(guest, hard=True, force=job.force)
        except AgentError as exc:
            if agent.runtime(guest).state == OFF:      # it went Off meanwhile
                self._finish(job, COMPLETED, now)
                return
            self._finish(job, EXCEPTION, now, code=4, description="\n".join(exc.lines))
            return
        finally:
            agent.actor, agent.command = old_actor, old_command
        job.warnings.append(f"The guest '{job.guest_name}' did not shut down within the "
                            "timeout period; it was stopped hard (hpvmstop -h).")
        self._finish(job, COMPLETED, now)

    def _expire(self, now: float) -> None:
        gone = [k for k, j in self._jobs.items()
                if j.finished is not None and now - j.finished >= self.keep_seconds]
        for key in gone:
            del self._jobs[key]

    def poll(self) -> int:
        """Advance every running job (the server may call this periodically, in a worker
        thread); returns how many are still running."""
        with self._lock:
            self._expire(self.clock.now())
            running = [j for j in self._jobs.values() if not j.done]
        for job in running:
            self.advance(job)
        return sum(1 for j in running if not j.done)

    # -- queries -------------------------------------------------------------------------

    @staticmethod
    def may_see(principal, job: Job) -> bool:
        return principal.role == "admin" or principal.user == job.owner

    def jobs(self, principal) -> list[Job]:
        """The jobs `principal` may see, brought up to date, oldest first."""
        with self._lock:
            self._expire(self.clock.now())
            mine = [j for j in self._jobs.values() if self.may_see(principal, j)]
        for job in mine:
            self.advance(job)
        with self._lock:
            self._expire(self.clock.now())
            return [j for j in mine if j.instance_id in self._jobs]

    def get(self, principal, instance_id: str) -> Job | None:
        with self._lock:
            self._expire(self.clock.now())
            job = self._jobs.get(instance_id)
        if job is None or not self.may_see(principal, job):
            return None
        return self.advance(job)


# -- CIM instances ---------------------------------------------------------------------------

def _interval(seconds: float) -> CIMDateTime:
    return CIMDateTime(datetime.timedelta(seconds=max(0.0, seconds)))


def _stamp(seconds: float) -> CIMDateTime:
    return CIMDateTime(datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc))


def job_values(job: Job, now: float) -> dict:
    end = job.finished if job.finished is not None else now
    if job.state == COMPLETED:
        status = [_OK, _COMPLETED]
    elif job.state == EXCEPTION:
        status = [_ERROR, _COMPLETED]
    else:
        status = [_OK]
    return {
        "InstanceID": job.instance_id,
        "Caption": job.name,
        "Description": f"{job.method}({job.request}) on guest '{job.guest_name}'",
        "ElementName": job.name,
        "Name": job.method,
        "MethodName": job.method,
        "JobState": job.state,
        "JobStatus": _JOB_STATUS[job.state],
        "OperationalStatus": status,
        "PercentComplete": job.percent,
        "TimeSubmitted": _stamp(job.submitted),
        "StartTime": _stamp(job.submitted),
        "ElapsedTime": _interval(end - job.submitted),
        "TimeOfLastStateChange": _stamp(job.changed),
        "TimeBeforeRemoval": _interval(KEEP_SECONDS),
        "DeleteOnCompletion": True,
        "Owner": job.owner,
        "ErrorCode": job.error_code,
        "ErrorDescription": job.error_description,
        "Warnings": list(job.warnings),
        "LocalOrUtcTime": 2,
        **job.extra,
    }


class ConcreteJobProvider(InstanceProvider):
    """HPVM_ConcreteJob: the jobs the principal may see, read through on every request."""

    namespaces = (NS,)
    classnames = (JOB_CLASS,)

    def __init__(self, env):
        self.env = env
        self.factory = InstanceFactory.for_class(env.schema, NS, JOB_CLASS)

    @property
    def manager(self) -> JobManager:
        return job_manager(self.env)

    def _instance(self, ctx: Context, job: Job):
        return self.factory.make(job_values(job, ctx.clock.now()), ctx)

    def enumerate(self, ctx: Context, classname: str):
        for job in self.manager.jobs(ctx.principal):
            yield self._instance(ctx, job)

    def get(self, ctx: Context, path: CIMInstanceName):
        iid = path.keybindings.get("InstanceID")
        if not isinstance(iid, str):
            return None
        job = self.manager.get(ctx.principal, iid)
        return None if job is None else self._instance(ctx, job)


class _JobLinks(AssociationProvider):
    """Base of the two job associations: one instance per visible job."""

    namespaces = (NS,)

    def __init__(self, env):
        self.env = env
        self.factory = InstanceFactory.for_class(env.schema, NS, self.classnames[0])

    def values(self, job: Job) -> dict:
        raise CIMError(pywbem.CIM_ERR_FAILED, "no association values")

    def enumerate(self, ctx: Context, classname: str):
        for job in job_manager(self.env).jobs(ctx.principal):
            yield self.factory.make(self.values(job), ctx)

    def references(self, ctx: Context, classname: str, source: CIMInstanceName,
                   role: str | None) -> Iterable:
        for job in job_manager(self.env).jobs(ctx.principal):
            if same_path(source, job.path, NS) or same_path(source, job.affected, NS) or \
                    (job.owning is not None and same_path(source, job.owning, NS)):
                yield self.factory.make(self.values(job), ctx)


class AffectedJobElementProvider(_JobLinks):
    """HPVM_AffectedJobElement: a job and the guest it changes."""

    classnames = (AFFECTED_CLASS,)

    def values(self, job: Job) -> dict:
        return {"AffectedElement": job.affected, "AffectingElement": job.path,
                "ElementEffects": [1],
                "OtherElementEffectsDescriptions": [job.effect or
                                                    f"state change: {job.action}"]}


class OwningJobElementProvider(_JobLinks):
    """HPVM_OwningJobElement: a job and the element whose method started it (the guest,
    for RequestStateChange)."""

    classnames = (OWNING_CLASS,)

    def values(self, job: Job) -> dict:
        return {"OwningElement": job.owning or job.affected, "OwnedElement": job.path}


def install(registry, env) -> None:
    registry.register(ConcreteJobProvider(env))
    registry.register(AffectedJobElementProvider(env))
    registry.register(OwningJobElementProvider(env))


def run_agent(env, ctx: Context, label: str, call):
    """Run one agent change for a CIM caller: one change at a time (see `agent_lock`), the
    store's actor and command.log line naming the CIM user and method, as the commands name
    the Unix user and command line."""
    agent = env.agent
    with agent_lock(env):
        old_actor, old_command = agent.actor, agent.command
        agent.actor = f"cim:{ctx.principal.user}"
        agent.command = f"CIM {label}"
        try:
            return call()
        finally:
            agent.actor, agent.command = old_actor, old_command
