"""HPVM_Guest.RequestStateChange: hpvmstart, hpvmstop and the virtual console's reboot/reset,
through the same agent functions and checks as the commands (DSP1057).

| RequestedState | agent call | returns |
|---|---|---|
| 2 Enabled | start_guest (hpvmstart; Force = -F) | 4096: a job that completes at On (OS), or On (EFI) when no OS is installed |
| 3 Disabled | stop_guest hard (hpvmstop -h; Force = -F) | 0: the guest is Off |
| 4 Shut Down | stop_guest graceful (hpvmstop) | 4096: a job that completes at Off |
| 10 Reboot | reboot_guest | 4096: as for a start |
| 11 Reset | reboot_guest | 4096: as for a start |

The Integrity VM host has one way to restart a running guest from outside it, the virtual
console's reset (`RS`): the guest restarts from its firmware and a waiting vmm_config.next
takes effect. Reboot (10) and Reset (11) both do that (`Agent.reboot_guest`); a reboot that
first shuts the OS down is the guest OS's own `shutdown -r`.

A change the guest's present state does not allow returns 4097 (Invalid State Transition),
changes nothing, and carries the command's message in OUT Warnings. Every other refusal
(capacity problems at start, a distributed guest without Force) is a CIM error with the
command's text. TimeoutPeriod (an interval; 0 or null = none) bounds a job: see
`provider.providers.hpvm_jobs` for what happens when it runs out.
"""
from __future__ import annotations

import pywbem
from pywbem import CIMDateTime, CIMError

from agent.backends.base import (BOOTING, INVALID, OFF, ON_ATTN, ON_EFI, ON_OS, STOPPING)
from agent.errors import AgentError
from provider.providers.base import ADMIN_OPER, cim_method, method_result
from provider.providers.hpvm_jobs import agent_lock, job_manager, run_agent

START, HARD_STOP, SHUT_DOWN, REBOOT, RESET = 2, 3, 4, 10, 11
SUPPORTED = (START, HARD_STOP, SHUT_DOWN, REBOOT, RESET)
COMPLETED, JOB_STARTED, INVALID_TRANSITION = 0, 4096, 4097

# present state -> the requests it allows (the commands' own rules, made explicit)
TRANSITIONS: dict[str, tuple[int, ...]] = {
    OFF: (START,),
    BOOTING: (HARD_STOP, SHUT_DOWN, REBOOT, RESET),
    ON_EFI: (HARD_STOP, SHUT_DOWN, REBOOT, RESET),
    ON_OS: (HARD_STOP, SHUT_DOWN, REBOOT, RESET),
    ON_ATTN: (HARD_STOP, SHUT_DOWN, REBOOT, RESET),
    STOPPING: (HARD_STOP,),
    INVALID: (),
}


def allowed_requests(state: str) -> tuple[int, ...]:
    """The RequestedState values a guest in `state` accepts (for
    HPVM_EnabledLogicalElementCapabilities.RequestedStatesSupported)."""
    return TRANSITIONS.get(state, ())


def refusal_text(name: str, state: str, requested: int) -> str:
    """The command's message for a change the state does not allow."""
    if requested == START:
        return (f"The guest '{name}' is {state}; it must be Off to start. "
                "Use hpvmstop to stop it.")
    if state == INVALID:
        return f"The guest '{name}' has an invalid configuration."
    if state == OFF:
        return f"The guest '{name}' is not running."
    if state == STOPPING and requested == SHUT_DOWN:
        return f"The guest '{name}' is already stopping."
    return f"The guest '{name}' is not running."


def timeout_seconds(param) -> float | None:
    """TimeoutPeriod as seconds; None for null or 0 (no time requirement)."""
    value = None if param is None else param.value
    if value is None:
        return None
    if not isinstance(value, CIMDateTime) or not value.is_interval:
        raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                       "TimeoutPeriod must be an interval (ddddddddhhmmss.mmmmmm:000)")
    seconds = value.timedelta.total_seconds()
    return seconds if seconds > 0 else None


def _value(params, name):
    p = params.get(name)
    return None if p is None else p.value


def _result(code: int, job=None, warnings=()):
    out = [("Warnings", list(warnings))]
    if job is not None:
        out.append(("Job", job.path))
    return method_result(code, "uint32", out)


class GuestLifecycleMethods:
    """Mixin for the HPVM_Guest provider (which sets ``self.env``, its ProviderEnvironment)."""

    def call_method(self, handler, ctx, target, params):
        # the whole method under the agent's lock: its reads and its change see one state
        with agent_lock(self.env):
            return super().call_method(handler, ctx, target, params)

    @cim_method("RequestStateChange", roles=ADMIN_OPER)
    def _request_state_change(self, ctx, target, params):
        env = self.env
        agent = env.agent
        requested = _value(params, "RequestedState")
        if requested is None:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, "RequestedState is required")
        if int(requested) not in SUPPORTED:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"RequestedState {int(requested)} is not supported: use 2 (start), "
                           "3 (hard stop), 4 (shut down), 10 (reboot) or 11 (reset)")
        requested = int(requested)
        timeout = timeout_seconds(params.get("TimeoutPeriod"))
        force = bool(_value(params, "Force"))
        uuid = target.keybindings.get("Name") if hasattr(target, "keybindings") else None
        ccn = target.keybindings.get("CreationClassName") if hasattr(target, "keybindings") \
            else None
        if not isinstance(uuid, str) or str(ccn).lower() != "hpvm_guest":
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"no guest at {target}")
        try:
            guest = agent.find_by_uuid(uuid)
        except AgentError as exc:
            for bad in agent.invalid_guests():
                if bad.uuid == uuid:
                    return _result(INVALID_TRANSITION, warnings=[
                        f"The guest '{bad.name}' has an invalid configuration: {bad.message}"])
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND, "\n".join(exc.lines)) from None
        state = agent.runtime(guest).state
        if requested not in allowed_requests(state):
            return _result(INVALID_TRANSITION,
                           warnings=[refusal_text(guest.name, state, requested)])
        label = f"HPVM_Guest.RequestStateChange({requested}) {guest.name}"
        jobs = job_manager(env)
        method = "HPVM_Guest.RequestStateChange"
        owner = ctx.principal.user
        request = f"RequestedState={requested}"
        if requested == HARD_STOP:
            run_agent(env, ctx, label,
                      lambda: agent.stop_guest(guest, hard=True, force=force))
            jobs.note_request(uuid, requested)
            return _result(COMPLETED)
        if requested == SHUT_DOWN:
            run_agent(env, ctx, label,
                      lambda: agent.stop_guest(guest, hard=False, force=force))
            jobs.note_request(uuid, requested)
            job = jobs.create(method=method, name=f"Shut down guest {guest.name}", owner=owner,
                              guest=guest, action="stop", targets=(OFF,),
                              expected_seconds=jobs._timing("stop_seconds"), timeout=timeout,
                              force=force, request=request)
            return _result(JOB_STARTED, job)
        if requested == START:
            run_agent(env, ctx, label, lambda: agent.start_guest(guest, force=force))
            action, what = "start", "Start"
        else:
            run_agent(env, ctx, label, lambda: agent.reboot_guest(guest))
            action, what = ("reboot", "Reboot") if requested == REBOOT else ("reset", "Reset")
        jobs.note_request(uuid, requested)
        booted = agent.find_by_uuid(uuid)
        targets, expected = jobs.boot_target(booted)
        job = jobs.create(method=method, name=f"{what} guest {booted.name}", owner=owner,
                          guest=booted, action=action, targets=targets,
                          expected_seconds=expected, timeout=timeout, force=force,
                          request=request)
        return _result(JOB_STARTED, job)
