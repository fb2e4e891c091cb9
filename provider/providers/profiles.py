"""Registered profiles (DSP1033): the small API every family calls to advertise its profiles.

    env.profiles.add(Profile("DMTF", "System Virtualization", "1.0.0",
                             central=lambda ctx: [host_path],
                             central_classes=("HPVM_Host",),
                             references=(PROFILE_REGISTRATION,)))

The interop providers publish each profile as a CIM_RegisteredProfile, tie it to its central
instances with CIM_ElementConformsToProfile (read live through `central` on every request,
so new guests appear at once) and to the profiles it references with CIM_ReferencedProfile
(DMTF direction: Antecedent = the referenced profile, Dependent = the referencing one).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Iterable

from pywbem import CIMInstanceName

from provider.providers.base import Context

INTEROP = "root/interop"

# RegisteredOrganization ValueMap of CIM_RegisteredProfile (CIM 2.49).
ORGANIZATIONS = {"other": 1, "dmtf": 2, "comptia": 3, "consortium for service innovation": 4,
                 "fast": 5, "ggf": 6, "intap": 7, "itsmf": 8, "nac": 9,
                 "northwest energy efficiency alliance": 10, "snia": 11, "tm forum": 12,
                 "the open group": 13, "ansi": 14, "ieee": 15, "ietf": 16, "incits": 17,
                 "iso": 18, "w3c": 19, "ogf": 20, "the green grid": 21}


@dataclass(frozen=True)
class Profile:
    """One registered profile.

    `organization`: a RegisteredOrganization name ('DMTF', 'SNIA', ...); any other name is
    published as Other with OtherRegisteredOrganization (a vendor profile: 'HP').
    `central`: returns the paths (namespace set) of the profile's central or scoping
    instances, read live. `central_classes` (optional) are their classes, so a traversal
    from an unrelated instance does not call `central` at all.
    `references`: instance ids of the profiles this one references (its component profiles,
    or the Profile Registration profile)."""

    organization: str
    name: str
    version: str
    central: Callable[[Context], Iterable[CIMInstanceName]] | None = None
    central_classes: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    instance_id: str = ""
    description: str = ""

    @property
    def organization_code(self) -> int:
        return ORGANIZATIONS.get(self.organization.lower(), 1)

    @property
    def id(self) -> str:
        return self.instance_id or f"HPVM:{self.organization}+{self.name}+{self.version}"

    def path(self) -> CIMInstanceName:
        return CIMInstanceName("CIM_RegisteredProfile", keybindings={"InstanceID": self.id},
                               namespace=INTEROP)


PROFILE_REGISTRATION = "HPVM:DMTF+Profile Registration+1.0.0"


class ProfileRegistry:
    """All registered profiles. Adding is done at start; reads are thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._profiles: dict[str, Profile] = {}

    def add(self, profile: Profile) -> Profile:
        if not profile.name or not profile.version:
            raise ValueError("a profile needs a name and a version")
        with self._lock:
            if profile.id in self._profiles:
                raise ValueError(f"profile {profile.id} is already registered")
            for ref in profile.references:
                if ref not in self._profiles:
                    raise ValueError(f"profile {profile.id} references {ref}, which is not "
                                     f"registered (register referenced profiles first)")
            self._profiles[profile.id] = profile
        return profile

    def get(self, instance_id: str) -> Profile | None:
        with self._lock:
            return self._profiles.get(instance_id)

    def all(self) -> list[Profile]:
        with self._lock:
            return list(self._profiles.values())
