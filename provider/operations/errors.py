"""Turning whatever a provider raised into the one CIM error the client sees."""
from __future__ import annotations

import logging

import pywbem
from pywbem import CIMError

from agent.errors import AgentError

log = logging.getLogger(__name__)

# AgentError.kind -> CIM status code. 'state' stays FAILED here: a method that must answer
# 4097 (invalid state transition) does so in its return value, not as an error.
AGENT_KINDS = {
    "invalid": pywbem.CIM_ERR_INVALID_PARAMETER,
    "not_found": pywbem.CIM_ERR_NOT_FOUND,
    "exists": pywbem.CIM_ERR_ALREADY_EXISTS,
    "denied": pywbem.CIM_ERR_ACCESS_DENIED,
    "state": pywbem.CIM_ERR_FAILED,
    "conflict": pywbem.CIM_ERR_FAILED,
    "capacity": pywbem.CIM_ERR_FAILED,
    "failed": pywbem.CIM_ERR_FAILED,
}


def to_cim_error(exc: Exception) -> CIMError:
    """CIMError as is; AgentError with the guide's text and a code from its kind; anything
    else is a bug: logged with its traceback, answered without internals."""
    if isinstance(exc, CIMError):
        return exc
    if isinstance(exc, AgentError):
        return CIMError(AGENT_KINDS.get(exc.kind, pywbem.CIM_ERR_FAILED), "\n".join(exc.lines))
    log.error("internal error", exc_info=exc)
    return CIMError(pywbem.CIM_ERR_FAILED, "internal error in the CIM server (see its log)")
