"""The interop namespace (root/interop): the object manager, namespaces, registered profiles,
the communication mechanism and the indication subscription classes.

What pywbem's WBEMServer and pywbemcli look for: exactly one CIM_ObjectManager (brand in
ElementName, "version X.Y.Z" in Description), CIM_Namespace for every namespace,
CIM_RegisteredProfile with CIM_ElementConformsToProfile and CIM_ReferencedProfile.
Indication filters, listener destinations and subscriptions are stored (in the state
folder, surviving restarts) but indications are not delivered yet: CIM_IndicationService
says so, and DSP1054 (Indications) is not registered as a profile.
"""
from __future__ import annotations

from typing import Iterable

from pywbem import CIMInstance, CIMInstanceName

from provider.operations.pull import PullLimits
from provider.providers.base import (AssociationProvider, InstanceFactory,
                                     InstanceProvider, path_key, same_path)
from provider.providers.profiles import (INTEROP, PROFILE_REGISTRATION, Profile,
                                         ProfileRegistry)
from provider.providers.registry import ProviderEnvironment, ProviderRegistry, is_a
from provider.providers.subscriptions import (FilterProvider, ListenerDestinationProvider,
                                              SubscriptionProvider, SubscriptionStore)

BRAND = "vmprovider"
SYSTEM_CLASS = "CIM_ComputerSystem"

REQUIRED_CLASSES = (
    "CIM_ObjectManager", "CIM_Namespace", "CIM_NamespaceInManager",
    "CIM_CIMXMLCommunicationMechanism", "CIM_CommMechanismForManager",
    "CIM_RegisteredProfile", "CIM_ElementConformsToProfile", "CIM_ReferencedProfile",
    "CIM_IndicationService", "CIM_IndicationServiceCapabilities", "CIM_ElementCapabilities",
    "CIM_IndicationFilter", "CIM_ListenerDestinationCIMXML", "CIM_IndicationSubscription",
)


class _Singletons:
    """The fixed instances of interop, built once from the environment."""

    def __init__(self, env: ProviderEnvironment):
        schema, host = env.schema, env.host_name
        self.env = env
        self.factories = {name: InstanceFactory.for_class(schema, INTEROP, name)
                          for name in REQUIRED_CLASSES}
        self.system = {"SystemCreationClassName": SYSTEM_CLASS, "SystemName": host}
        self.om_values = dict(self.system, CreationClassName="CIM_ObjectManager", Name=BRAND)
        self.om_path = self.factories["CIM_ObjectManager"].path(self.om_values)
        self.comm_values = dict(self.system, CreationClassName="CIM_CIMXMLCommunicationMechanism",
                                Name=f"{BRAND}:cim-xml")
        self.comm_path = self.factories["CIM_CIMXMLCommunicationMechanism"].path(self.comm_values)
        self.service_values = dict(self.system, CreationClassName="CIM_IndicationService",
                                   Name=f"{BRAND}:indications")
        self.service_path = self.factories["CIM_IndicationService"].path(self.service_values)
        self.caps_values = {"InstanceID": "HPVM:IndicationServiceCapabilities"}
        self.caps_path = self.factories["CIM_IndicationServiceCapabilities"].path(self.caps_values)

    def f(self, name: str) -> InstanceFactory:
        return self.factories[name]


class ObjectManagerProvider(InstanceProvider):
    namespaces = (INTEROP,)
    classnames = ("CIM_ObjectManager",)

    def __init__(self, s: _Singletons):
        self.s = s

    def enumerate(self, ctx, classname):
        version = self.s.env.version or "0"
        yield self.s.f("CIM_ObjectManager").make(dict(
            self.s.om_values,
            ElementName=BRAND,
            Caption=f"{BRAND} CIM server",
            Description=f"{BRAND} CIM server for HP Integrity VM hosts, version {version}",
            OperationalStatus=[2], EnabledState=2, RequestedState=12, EnabledDefault=2,
            HealthState=5, Started=True, StartMode="Automatic",
            GatherStatisticalData=False), ctx)

    def get(self, ctx, path):
        return next(iter(self.enumerate(ctx, path.classname))) \
            if same_path(path, self.s.om_path, INTEROP) else None


class NamespaceProvider(InstanceProvider):
    namespaces = (INTEROP,)
    classnames = ("CIM_Namespace",)

    def __init__(self, s: _Singletons):
        self.s = s

    def values(self, ns: str) -> dict:
        return dict(self.s.system, ObjectManagerCreationClassName="CIM_ObjectManager",
                    ObjectManagerName=BRAND, CreationClassName="CIM_Namespace", Name=ns,
                    ClassInfo=0, DescriptionOfClassInfo="CIM Schema 2.49 subset",
                    ClassType=2, ClassTypeVersion="2.49.0",
                    ElementName=ns, Description=f"namespace {ns}")

    def paths(self) -> list[CIMInstanceName]:
        return [self.s.f("CIM_Namespace").path(self.values(ns))
                for ns in self.s.env.schema.namespaces]

    def enumerate(self, ctx, classname):
        for ns in self.s.env.schema.namespaces:
            yield self.s.f("CIM_Namespace").make(self.values(ns), ctx)

    def get(self, ctx, path):
        name = _key(path, "Name")
        if isinstance(name, str) and self.s.env.schema.has_namespace(name):
            inst = self.s.f("CIM_Namespace").make(self.values(self._canonical(name)), ctx)
            if same_path(inst.path, path, INTEROP):
                return inst
        return None

    def _canonical(self, name: str) -> str:
        return next(ns for ns in self.s.env.schema.namespaces
                    if ns.lower() == name.strip("/").lower())


class NamespaceInManagerProvider(AssociationProvider):
    namespaces = (INTEROP,)
    classnames = ("CIM_NamespaceInManager",)

    def __init__(self, s: _Singletons, ns_provider: NamespaceProvider):
        self.s = s
        self.ns_provider = ns_provider

    def enumerate(self, ctx, classname):
        f = self.s.f("CIM_NamespaceInManager")
        for path in self.ns_provider.paths():
            yield f.make({"Antecedent": self.s.om_path, "Dependent": path}, ctx)


class CommunicationMechanismProvider(InstanceProvider):
    namespaces = (INTEROP,)
    classnames = ("CIM_CIMXMLCommunicationMechanism",)

    def __init__(self, s: _Singletons):
        self.s = s

    def enumerate(self, ctx, classname):
        yield self.s.f("CIM_CIMXMLCommunicationMechanism").make(dict(
            self.s.comm_values,
            ElementName="CIM-XML over HTTPS",
            CommunicationMechanism=2,
            # Basic Read, Basic Write, Instance Manipulation, Association Traversal,
            # Query Execution, Qualifier Declaration (read), Pulled Read, Pulled Query.
            FunctionalProfilesSupported=[2, 3, 5, 6, 7, 8, 10, 12],
            MultipleOperationsSupported=False,
            AuthenticationMechanismsSupported=[3],
            Version="1.4.0",
            CIMXMLProtocolVersion=1,
            CIMValidated=False,
            AdvertiseTypes=[2],
            PulledEnumerationClosureOnExceedingServerLimitsSupported=True,
            PulledEnumerationContinuationOnErrorSupported=False,
            PulledEnumerationMaximumOperationTimeout=self.s.env.options.get(
                "pull_max_timeout", PullLimits.max_timeout),
            PulledEnumerationMinimumOperationTimeout=1,
            PulledEnumerationNoOperationTimeoutSupported=False,
            OperationalStatus=[2], EnabledState=2, RequestedState=12, EnabledDefault=2),
            ctx)


class CommMechanismForManagerProvider(AssociationProvider):
    namespaces = (INTEROP,)
    classnames = ("CIM_CommMechanismForManager",)

    def __init__(self, s: _Singletons):
        self.s = s

    def enumerate(self, ctx, classname):
        yield self.s.f("CIM_CommMechanismForManager").make(
            {"Antecedent": self.s.om_path, "Dependent": self.s.comm_path}, ctx)


class RegisteredProfileProvider(InstanceProvider):
    namespaces = (INTEROP,)
    classnames = ("CIM_RegisteredProfile",)

    def __init__(self, s: _Singletons, profiles: ProfileRegistry):
        self.s = s
        self.profiles = profiles

    def make(self, ctx, p: Profile) -> CIMInstance:
        other = p.organization if p.organization_code == 1 else None
        return self.s.f("CIM_RegisteredProfile").make({
            "InstanceID": p.id, "RegisteredOrganization": p.organization_code,
            "OtherRegisteredOrganization": other, "RegisteredName": p.name,
            "RegisteredVersion": p.version, "SpecificationType": 2,
            "AdvertiseTypes": [2], "ElementName": p.name,
            "Description": p.description or None}, ctx)

    def enumerate(self, ctx, classname):
        for p in self.profiles.all():
            yield self.make(ctx, p)

    def get(self, ctx, path):
        p = self.profiles.get(_key(path, "InstanceID"))
        return self.make(ctx, p) if p is not None else None


def _key(path: CIMInstanceName, name: str):
    for key, value in path.keybindings.items():
        if key.lower() == name.lower():
            return value
    return None


class ElementConformsToProfileProvider(AssociationProvider):
    """Profile -> central instances, read live from each profile's `central`. Served in
    interop (every instance) and in each other namespace (those whose central instance
    lives there), so traversals work from both ends."""

    classnames = ("CIM_ElementConformsToProfile",)

    def __init__(self, s: _Singletons, profiles: ProfileRegistry, namespaces: Iterable[str]):
        self.s = s
        self.profiles = profiles
        self.namespaces = tuple(namespaces)
        self._factories = {ns.lower(): InstanceFactory.for_class(
            s.env.schema, ns, "CIM_ElementConformsToProfile") for ns in self.namespaces}

    def _centrals(self, ctx, p: Profile):
        if p.central is None:
            return []
        result = []
        for path in p.central(ctx):
            path = path.copy()
            path.namespace = (path.namespace or INTEROP).strip("/")
            path.host = None
            result.append(path)
        return result

    def _make(self, ctx, p: Profile, central: CIMInstanceName) -> CIMInstance:
        return self._factories[ctx.namespace.lower()].make(
            {"ConformantStandard": p.path(), "ManagedElement": central}, ctx)

    def _visible(self, ctx, central: CIMInstanceName) -> bool:
        return ctx.namespace.lower() == INTEROP or \
            central.namespace.lower() == ctx.namespace.lower()

    def enumerate(self, ctx, classname):
        for p in self.profiles.all():
            for central in self._centrals(ctx, p):
                if self._visible(ctx, central):
                    yield self._make(ctx, p, central)

    def references(self, ctx, classname, source, role):
        schema = self.s.env.schema
        if is_a(schema, ctx.namespace, source.classname, "CIM_RegisteredProfile"):
            if role is None or role.lower() == "conformantstandard":
                p = self.profiles.get(_key(source, "InstanceID"))
                if p is not None and (source.namespace or ctx.namespace).lower() == INTEROP:
                    for central in self._centrals(ctx, p):
                        if self._visible(ctx, central):
                            yield self._make(ctx, p, central)
                if role is not None:
                    return
        wanted = path_key(source, ctx.namespace)
        for p in self.profiles.all():
            if p.central_classes and not any(
                    _is_a_somewhere(schema, source, c, ctx.namespace) for c in p.central_classes):
                continue
            for central in self._centrals(ctx, p):
                if path_key(central) == wanted and self._visible(ctx, central):
                    yield self._make(ctx, p, central)


def _is_a_somewhere(schema, source, classname, default_ns) -> bool:
    ns = (source.namespace or default_ns).strip("/")
    try:
        return is_a(schema, ns, source.classname, classname)
    except Exception:
        return False


class ReferencedProfileProvider(AssociationProvider):
    namespaces = (INTEROP,)
    classnames = ("CIM_ReferencedProfile",)

    def __init__(self, s: _Singletons, profiles: ProfileRegistry):
        self.s = s
        self.profiles = profiles

    def enumerate(self, ctx, classname):
        f = self.s.f("CIM_ReferencedProfile")
        for p in self.profiles.all():
            for ref in p.references:
                referenced = self.profiles.get(ref)
                if referenced is not None:
                    yield f.make({"Antecedent": referenced.path(), "Dependent": p.path()}, ctx)


class IndicationServiceProvider(InstanceProvider):
    namespaces = (INTEROP,)
    classnames = ("CIM_IndicationService",)

    def __init__(self, s: _Singletons):
        self.s = s

    def enumerate(self, ctx, classname):
        yield self.s.f("CIM_IndicationService").make(dict(
            self.s.service_values,
            ElementName=f"{BRAND} indication service",
            Description="Stores indication filters, listener destinations and subscriptions "
                        "persistently. Delivery of indications is not implemented in this "
                        "release: no indication is sent to any listener.",
            FilterCreationEnabled=True,
            SubscriptionRemovalAction=4,        # Ignore: nothing is removed automatically
            OperationalStatus=[2], EnabledState=2, RequestedState=12, EnabledDefault=2,
            Started=True, StartMode="Automatic"), ctx)


class IndicationServiceCapabilitiesProvider(InstanceProvider):
    namespaces = (INTEROP,)
    classnames = ("CIM_IndicationServiceCapabilities",)

    def __init__(self, s: _Singletons, store: SubscriptionStore):
        self.s = s
        self.store = store

    def enumerate(self, ctx, classname):
        yield self.s.f("CIM_IndicationServiceCapabilities").make(dict(
            self.s.caps_values,
            ElementName=f"{BRAND} indication service capabilities",
            FilterCreationEnabledIsSettable=False,
            DeliveryRetryAttemptsIsSettable=False,
            DeliveryRetryIntervalIsSettable=False,
            SubscriptionRemovalActionIsSettable=False,
            SubscriptionRemovalTimeIntervalIsSettable=False,
            MaxListenerDestinations=self.store.limits["destinations"],
            MaxActiveSubscriptions=self.store.limits["subscriptions"],
            SubscriptionsPersisted=True), ctx)


class ServiceCapabilitiesProvider(AssociationProvider):
    namespaces = (INTEROP,)
    classnames = ("CIM_ElementCapabilities",)

    def __init__(self, s: _Singletons):
        self.s = s

    def enumerate(self, ctx, classname):
        yield self.s.f("CIM_ElementCapabilities").make(
            {"ManagedElement": self.s.service_path, "Capabilities": self.s.caps_path}, ctx)


def install(registry: ProviderRegistry, env: ProviderEnvironment) -> None:
    """Register the interop providers and the Profile Registration profile."""
    schema = env.schema
    if not schema.has_namespace(INTEROP):
        raise ValueError(f"the schema has no {INTEROP} namespace")
    missing = [c for c in REQUIRED_CLASSES if not schema.has_class(INTEROP, c)]
    if missing:
        raise ValueError(f"{INTEROP} lacks classes {', '.join(missing)}")
    if env.profiles is None:
        env.profiles = ProfileRegistry()
    s = _Singletons(env)
    store = SubscriptionStore(env.state_dir, schema, env.clock, env.host_name)
    ns_provider = NamespaceProvider(s)
    ectp_namespaces = [ns for ns in schema.namespaces
                       if schema.has_class(ns, "CIM_ElementConformsToProfile")]
    for provider in (ObjectManagerProvider(s), ns_provider,
                     NamespaceInManagerProvider(s, ns_provider),
                     CommunicationMechanismProvider(s), CommMechanismForManagerProvider(s),
                     RegisteredProfileProvider(s, env.profiles),
                     ElementConformsToProfileProvider(s, env.profiles, ectp_namespaces),
                     ReferencedProfileProvider(s, env.profiles),
                     IndicationServiceProvider(s),
                     IndicationServiceCapabilitiesProvider(s, store),
                     ServiceCapabilitiesProvider(s),
                     FilterProvider(store), ListenerDestinationProvider(store),
                     SubscriptionProvider(store)):
        registry.register(provider)
    om_path = s.om_path
    env.profiles.add(Profile(
        "DMTF", "Profile Registration", "1.0.0", instance_id=PROFILE_REGISTRATION,
        central=lambda ctx: [om_path], central_classes=("CIM_ObjectManager",),
        description="DSP1033 Profile Registration"))
