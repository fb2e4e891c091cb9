"""The interop namespace on the real schema (mof/): pywbem's WBEMServer walks it through a
connection that calls the Dispatcher directly; profile registration; subscriptions."""
from __future__ import annotations

import json
import os
import stat

import pytest
import pywbem
from pywbem import CIMInstance, CIMInstanceName, CIMProperty, NocaseDict, WBEMServer

from agent.clock import ManualClock
from operations_support import DispatcherConnection
from provider.messages import CIMRequest, Principal
from provider.operations import Dispatcher
from provider.providers import ProviderEnvironment, ProviderRegistry, install_all
from provider.providers.base import InstanceFactory, InstanceProvider
from provider.providers.profiles import PROFILE_REGISTRATION, Profile
from provider.providers.subscriptions import FILE_NAME, SubscriptionStore
from provider.schema import Schema

INTEROP = "root/interop"
CIMV2 = "root/cimv2"
HOST = "vmhost.example.com"
ADMIN = Principal("root", "admin")
READER = Principal("reader", "readonly")


@pytest.fixture(scope="module")
def schema():
    return Schema.load()


class SystemsProvider(InstanceProvider):
    """Stand-in for an issue-4 family: CIM_ComputerSystem instances in root/cimv2."""

    namespaces = (CIMV2,)
    classnames = ("CIM_ComputerSystem",)

    def __init__(self, schema, names):
        self.factory = InstanceFactory.for_class(schema, CIMV2, "CIM_ComputerSystem")
        self.names = list(names)

    def paths(self):
        return [self.factory.path({"CreationClassName": "CIM_ComputerSystem", "Name": n})
                for n in self.names]

    def enumerate(self, ctx, classname):
        for name in self.names:
            yield self.factory.make({"CreationClassName": "CIM_ComputerSystem", "Name": name,
                                     "ElementName": name}, ctx)


class Server:
    def __init__(self, schema, state_dir, *, systems=()):
        self.clock = ManualClock()
        self.registry = ProviderRegistry(schema)
        self.env = ProviderEnvironment(schema=schema, host_name=HOST, clock=self.clock,
                                       state_dir=state_dir, version="1.2.3")
        install_all(self.registry, self.env)
        self.systems = SystemsProvider(schema, systems)
        self.registry.register(self.systems)
        self.dispatcher = Dispatcher(schema, self.registry, clock=self.clock, host_name=HOST)

    def op(self, name, principal=READER, namespace=INTEROP, **params):
        params = {k: v for k, v in params.items() if v is not None}
        return self.dispatcher.handle(CIMRequest("imethod", name, namespace,
                                                 NocaseDict(params)), principal)


@pytest.fixture
def server(schema, tmp_path):
    return Server(schema, tmp_path / "state", systems=["guest1", "guest2"])


def test_wbemserver_finds_interop_brand_version_namespaces(server):
    wbem = WBEMServer(DispatcherConnection(server, READER, CIMV2, HOST))
    assert wbem.interop_ns == INTEROP
    assert wbem.brand == "vmprovider"
    assert wbem.version == "1.2.3"
    assert sorted(wbem.namespaces) == [CIMV2, INTEROP]
    assert wbem.cimom_inst["SystemName"] == HOST
    names = [(p["RegisteredOrganization"], p["RegisteredName"], p["RegisteredVersion"])
             for p in wbem.profiles]
    assert names == [(2, "Profile Registration", "1.0.0")]
    (prof,) = wbem.get_selected_profiles(registered_org="DMTF",
                                         registered_name="Profile Registration")
    central = wbem.get_central_instances(prof.path)
    assert [p.classname for p in central] == ["CIM_ObjectManager"]
    assert central[0] == wbem.cimom_inst.path


def test_exactly_one_object_manager_and_its_associations(server):
    (om,) = server.op("EnumerateInstances", ClassName="CIM_ObjectManager")
    assert om.path.namespace == INTEROP and om.path.host == HOST
    assert om["ElementName"] == "vmprovider" and "version 1.2.3" in om["Description"]
    (om_base,) = server.op("EnumerateInstanceNames", ClassName="CIM_WBEMService")
    assert om_base == om.path
    ns = server.op("AssociatorNames", ObjectName=om.path, AssocClass="CIM_NamespaceInManager")
    assert sorted(p["Name"] for p in ns) == [CIMV2, INTEROP]
    (comm,) = server.op("Associators", ObjectName=om.path,
                        AssocClass="CIM_CommMechanismForManager")
    assert comm.classname == "CIM_CIMXMLCommunicationMechanism"
    assert comm["CommunicationMechanism"] == 2 and 3 in comm["AuthenticationMechanismsSupported"]
    (comm2,) = server.op("EnumerateInstances", ClassName="CIM_ObjectManagerCommunicationMechanism")
    assert comm2.path == comm.path
    got = server.op("GetInstance", InstanceName=om.path)
    assert got["Name"] == "vmprovider"


def test_pywbem_falls_through_wrong_interop_names(server):
    assert pytest.raises(pywbem.CIMError, server.op, "EnumerateInstanceNames",
                         namespace="interop", ClassName="CIM_Namespace").value.status_code \
        == pywbem.CIM_ERR_INVALID_NAMESPACE


def test_profile_registration_api_central_instances_across_namespaces(server):
    systems = server.systems
    server.env.profiles.add(Profile(
        "DMTF", "System Virtualization", "1.0.0",
        central=lambda ctx: systems.paths()[:1], central_classes=("CIM_ComputerSystem",),
        references=(PROFILE_REGISTRATION,)))
    server.env.profiles.add(Profile(
        "HP", "HPVM", "3.0.0", central=lambda ctx: systems.paths(),
        references=("HPVM:DMTF+System Virtualization+1.0.0",)))
    wbem = WBEMServer(DispatcherConnection(server, READER, CIMV2, HOST))
    (sv,) = wbem.get_selected_profiles("DMTF", "System Virtualization")
    central = wbem.get_central_instances(sv.path)
    assert [(p.namespace, p["Name"]) for p in central] == [(CIMV2, "guest1")]
    (hp,) = server.op("ExecQuery", QueryLanguage="WQL",
                      Query="SELECT * FROM CIM_RegisteredProfile WHERE RegisteredName = 'HPVM'")
    assert hp["RegisteredOrganization"] == 1 and hp["OtherRegisteredOrganization"] == "HP"
    # the central instances see their profiles from root/cimv2 too
    g2 = systems.paths()[1]
    profs = server.op("AssociatorNames", namespace=CIMV2, ObjectName=g2,
                      AssocClass="CIM_ElementConformsToProfile")
    assert [p["InstanceID"] for p in profs] == ["HPVM:HP+HPVM+3.0.0"]
    assert profs[0].namespace == INTEROP
    g1_profiles = server.op("AssociatorNames", namespace=CIMV2, ObjectName=systems.paths()[0],
                            ResultClass="CIM_RegisteredProfile")
    assert len(g1_profiles) == 2
    # DMTF direction: Antecedent is the referenced profile, Dependent the referencing one
    refs = server.op("EnumerateInstances", ClassName="CIM_ReferencedProfile")
    pairs = sorted((r["Antecedent"]["InstanceID"], r["Dependent"]["InstanceID"]) for r in refs)
    assert pairs == [("HPVM:DMTF+Profile Registration+1.0.0",
                      "HPVM:DMTF+System Virtualization+1.0.0"),
                     ("HPVM:DMTF+System Virtualization+1.0.0", "HPVM:HP+HPVM+3.0.0")]
    # live: a new system appears at once
    systems.names.append("guest3")
    assert len(wbem.get_central_instances(hp.path)) == 3
    ectp_cimv2 = server.op("EnumerateInstances", namespace=CIMV2,
                           ClassName="CIM_ElementConformsToProfile")
    assert len(ectp_cimv2) == 4              # 1 + 3 centrals in root/cimv2, not the OM
    with pytest.raises(ValueError):
        server.env.profiles.add(Profile("DMTF", "Dangling", "1.0", references=("nope",)))


# -- subscriptions ---------------------------------------------------------------------------

def make_filter(name="f1", query="SELECT * FROM CIM_InstModification", language="WQL"):
    inst = CIMInstance("CIM_IndicationFilter")
    inst["Name"] = name
    inst["Query"] = query
    inst["QueryLanguage"] = language
    inst["SourceNamespaces"] = [CIMV2]
    return inst


def make_destination(name="d1", url="https://listener.example.com:5990"):
    inst = CIMInstance("CIM_ListenerDestinationCIMXML")
    inst["Name"] = name
    inst["Destination"] = url
    inst.properties["password"] = CIMProperty("password", "s3cret")
    return inst


def test_subscription_lifecycle_and_persistence(server, schema, tmp_path):
    f = server.op("CreateInstance", ADMIN, NewInstance=make_filter())
    d = server.op("CreateInstance", ADMIN, NewInstance=make_destination())
    assert f["SystemName"] == HOST and f["CreationClassName"] == "CIM_IndicationFilter"
    sub = CIMInstance("CIM_IndicationSubscription")
    sub["Filter"] = f
    sub["Handler"] = d
    s = server.op("CreateInstance", ADMIN, NewInstance=sub)
    (got,) = server.op("EnumerateInstances", ClassName="CIM_IndicationSubscription")
    assert got.path == s and got["SubscriptionState"] == 2
    dest = server.op("GetInstance", InstanceName=d)
    assert dest["Destination"] == "https://listener.example.com:5990"
    assert dest["PersistenceType"] == 2 and "password" not in dest.properties
    assert [p["Name"] for p in server.op("AssociatorNames", ObjectName=f,
                                         AssocClass="CIM_IndicationSubscription")] == ["d1"]
    # stored 0600 and read back by a new server on the same state folder
    path = tmp_path / "state" / FILE_NAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text())["destinations"][0]["password"] == "s3cret"
    again = Server(schema, tmp_path / "state")
    assert [i.path for i in again.op("EnumerateInstances",
                                     ClassName="CIM_IndicationSubscription")] == [s]
    # a filter in use cannot go; the subscription can, then the filter
    assert pytest.raises(pywbem.CIMError, server.op, "DeleteInstance", ADMIN,
                         InstanceName=f).value.status_code == pywbem.CIM_ERR_FAILED
    server.op("DeleteInstance", ADMIN, InstanceName=s)
    server.op("DeleteInstance", ADMIN, InstanceName=f)
    assert server.op("EnumerateInstanceNames", ClassName="CIM_IndicationFilter") == []
    assert Server(schema, tmp_path / "state").op(
        "EnumerateInstanceNames", ClassName="CIM_IndicationFilter") == []


@pytest.mark.parametrize("make,code", [
    (lambda: make_filter(query="SELEKT * FROM X"), pywbem.CIM_ERR_INVALID_QUERY),
    (lambda: make_filter(language="XPath"), pywbem.CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED),
    (lambda: make_filter(query=""), pywbem.CIM_ERR_INVALID_PARAMETER),
    (lambda: make_destination(url="ftp://x"), pywbem.CIM_ERR_INVALID_PARAMETER),
    (lambda: make_destination(url="https://"), pywbem.CIM_ERR_INVALID_PARAMETER),
])
def test_bad_subscription_objects_are_refused(server, make, code):
    assert pytest.raises(pywbem.CIMError, server.op, "CreateInstance", ADMIN,
                         NewInstance=make()).value.status_code == code
    for cls in ("CIM_IndicationFilter", "CIM_ListenerDestinationCIMXML"):
        assert server.op("EnumerateInstanceNames", ClassName=cls) == []
    assert not (server.env.state_dir / FILE_NAME).exists()


def test_subscription_refusals(server):
    f = server.op("CreateInstance", ADMIN, NewInstance=make_filter())
    assert pytest.raises(pywbem.CIMError, server.op, "CreateInstance", READER,
                         NewInstance=make_filter("f2")).value.status_code == \
        pywbem.CIM_ERR_ACCESS_DENIED
    assert pytest.raises(pywbem.CIMError, server.op, "CreateInstance", ADMIN,
                         NewInstance=make_filter()).value.status_code == \
        pywbem.CIM_ERR_ALREADY_EXISTS
    sub = CIMInstance("CIM_IndicationSubscription")
    sub["Filter"] = f
    sub["Handler"] = CIMInstanceName("CIM_ListenerDestinationCIMXML", keybindings={
        "SystemCreationClassName": "CIM_ComputerSystem", "SystemName": HOST,
        "CreationClassName": "CIM_ListenerDestinationCIMXML", "Name": "missing"})
    assert pytest.raises(pywbem.CIMError, server.op, "CreateInstance", ADMIN,
                         NewInstance=sub).value.status_code == pywbem.CIM_ERR_NOT_FOUND
    other_host = make_filter("f3")
    other_host["SystemName"] = "elsewhere"
    assert pytest.raises(pywbem.CIMError, server.op, "CreateInstance", ADMIN,
                         NewInstance=other_host).value.status_code == \
        pywbem.CIM_ERR_INVALID_PARAMETER
    generated = make_filter("")
    path = server.op("CreateInstance", ADMIN, NewInstance=generated)
    assert path["Name"].startswith("HPVM:filter:")


def test_indication_service_says_delivery_is_not_implemented(server):
    (svc,) = server.op("EnumerateInstances", ClassName="CIM_IndicationService")
    assert "not implemented" in svc["Description"]
    (caps,) = server.op("Associators", ObjectName=svc.path, AssocClass="CIM_ElementCapabilities")
    assert caps["SubscriptionsPersisted"] is True
    assert caps["MaxActiveSubscriptions"] == 100


def test_corrupt_subscription_file_is_reported(schema, tmp_path):
    (tmp_path / FILE_NAME).write_text("{not json")
    with pytest.raises(ValueError, match=FILE_NAME):
        SubscriptionStore(tmp_path, schema, ManualClock(), HOST)


def test_users_with_guest_rights_only_see_no_subscriptions(server):
    guest_owner = Principal("owner", "none")
    f = server.op("CreateInstance", ADMIN, NewInstance=make_filter())
    assert server.op("EnumerateInstanceNames", ClassName="CIM_IndicationFilter") == [f]
    assert server.op("EnumerateInstanceNames", guest_owner,
                     ClassName="CIM_IndicationFilter") == []
    with pytest.raises(pywbem.CIMError) as info:
        server.op("GetInstance", guest_owner, InstanceName=f)
    assert info.value.status_code == pywbem.CIM_ERR_NOT_FOUND


def test_destination_password_stays_0600_over_a_stale_temporary_file(server, tmp_path,
                                                                     monkeypatch):
    """O_CREAT's mode applies only to a new file: a temporary file left by a crashed writer
    with mode 0644 must not carry the listener password into a 0644 subscriptions file."""
    monkeypatch.setattr(os, "getpid", lambda: 4242)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    stale = state / f".{FILE_NAME}.4242.tmp"
    stale.write_text("{}")
    os.chmod(stale, 0o644)
    server.op("CreateInstance", ADMIN, NewInstance=make_destination())
    path = state / FILE_NAME
    assert json.loads(path.read_text())["destinations"][0]["password"] == "s3cret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("url", ["https://alice:pw-in-url@listener.example.com:5990",
                                 "ftp://alice:pw-in-url@listener.example.com"])
def test_destination_with_credentials_in_the_url_is_refused_without_echoing_them(server, url):
    """Destination is readable by every host user and lands in errors and the audit log:
    a password there would leak (the password property is the hidden place for it)."""
    err = pytest.raises(pywbem.CIMError, server.op, "CreateInstance", ADMIN,
                        NewInstance=make_destination(url=url)).value
    assert err.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "pw-in-url" not in err.status_description
    assert "username and password properties" in err.status_description
    assert server.op("EnumerateInstanceNames", ClassName="CIM_ListenerDestinationCIMXML") == []
