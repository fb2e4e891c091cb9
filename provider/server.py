"""Wiring of `vmprovider serve`: state folder, first-start admin, certificate, schema,
providers and Dispatcher, the worker pool, and the HTTPS (and optional HTTP) listeners.

`CIMServer.prepare()` does the blocking start-up work before the reactor runs; `listen()`
runs on the reactor and returns the listening ports.
"""
from __future__ import annotations

import gc
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from agent.clock import SystemClock
from provider import tls
from provider.audit import AuditLog
from provider.auth import Authenticator, FailureThrottle, PamSettings, UserFile
from provider.http.channel import CIMSite
from provider.http.cimom import CIMOMResource, RootResource
from provider.http.pipeline import Pipeline
from provider.http.workers import WorkerPool
from provider.settings import Settings

log = logging.getLogger("vmprovider.server")


class StartupError(Exception):
    """The server cannot start; the text says why, in one line."""


@dataclass
class StartupInfo:
    cert_path: Path
    key_path: Path
    cert_created: bool
    fingerprint: str
    admin_password: str | None       # set only on the very first start


def product_version() -> str:
    try:
        from importlib.metadata import version
        return version("vmprovider")
    except Exception:
        return "0"


def build_environment(settings: Settings, clock, agent=None):
    """The services every provider family shares (schema, agent, clock, options)."""
    from provider.providers import ProviderEnvironment
    from provider.schema import Schema

    return ProviderEnvironment(schema=Schema.load(), host_name=socket.getfqdn(), clock=clock,
                               state_dir=Path(settings.state_dir), agent=agent,
                               version=product_version(),
                               options={"port": settings.port, "http_port": settings.http_port,
                                        "collect_keep": settings.collect_keep,
                                        "collect_max_age_days": settings.collect_max_age_days})


def build_dispatcher(settings: Settings, clock, agent=None, env=None):
    """Schema (S4) + provider families (S3) + Dispatcher (S3)."""
    from provider.operations import Dispatcher
    from provider.providers import ProviderRegistry, install_all

    env = env or build_environment(settings, clock, agent)
    registry = ProviderRegistry(env.schema)
    install_all(registry, env)       # every family in provider.providers.FAMILIES
    return Dispatcher(env.schema, registry, clock=clock, host_name=env.host_name)


class CIMServer:
    def __init__(self, settings: Settings, *, dispatcher=None, codec=None, clock=None,
                 reactor=None, agent=None):
        if reactor is None:
            from twisted.internet import reactor
        self.settings = settings
        self.clock = clock or SystemClock()
        self.reactor = reactor
        self.dispatcher = dispatcher
        self.codec = codec
        self.agent = agent
        self.pool = None
        self.audit: AuditLog | None = None
        self.ports: list = []
        self.info: StartupInfo | None = None
        self._context = None
        self.env = None              # the providers' environment, when we built the dispatcher
        self.background = None       # job polling and archive pruning (provider/background.py)

    # -- before the reactor runs (blocking is fine) -----------------------------------------
    def prepare(self) -> StartupInfo:
        s = self.settings
        if s.backend == "libvirt":
            raise StartupError("the libvirt backend is not available yet; use --backend ivm")
        state = Path(s.state_dir)
        try:
            state.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise StartupError(f"cannot create state folder {state}: {e.strerror}") from None
        if not os.access(state, os.W_OK):
            raise StartupError(f"state folder {state} is not writable")
        users = UserFile(state)
        admin_password = users.bootstrap_admin()
        try:
            cert, key, created = tls.ensure_certificate(s.certs_path, s.cert, s.key)
            certs, _key = tls.load_pair(cert, key)
            cert_map = tls.ClientCertMap.load(s.client_map_file) if s.client_map_file else None
            self._context = tls.context_factory(cert, key, trust_dir=s.client_trust_dir,
                                                require_client_cert=s.client_cert_required)
        except tls.TLSConfigError as e:
            raise StartupError(str(e)) from None
        self.cert_map = cert_map
        if self.dispatcher is None:
            try:
                self.env = build_environment(s, self.clock, self.agent)
                self.dispatcher = build_dispatcher(s, self.clock, self.agent, env=self.env)
            except Exception as e:   # a schema or provider that cannot load: one line, no start
                log.exception("cannot build the CIM dispatcher")
                raise StartupError(f"cannot load the CIM schema and providers: {e}") from None
        self.audit = AuditLog(state, self.clock)
        pam = PamSettings(s.pam_service, s.pam_default_role) if s.pam_service else None
        self.authenticator = Authenticator(users, self.clock, pam=pam,
                                           cache_ttl=s.credential_cache_seconds)
        self.throttle = FailureThrottle(self.clock, free_failures=s.failed_login_free,
                                        base_delay=s.failed_login_delay,
                                        max_delay=s.failed_login_max_delay)
        self.info = StartupInfo(cert, key, created, tls.fingerprint(certs[0]), admin_password)
        return self.info

    # -- on the reactor ---------------------------------------------------------------------
    def listen(self) -> list:
        from twisted.internet import endpoints

        s = self.settings
        # The schema, providers and Twisted are loaded for good by now: take them out of the
        # cyclic collector's scans, which otherwise walk them over and over as requests
        # allocate (a measurable share of a small request's cost).
        gc.collect()
        gc.freeze()
        self.pool = WorkerPool(s.workers, name="vmprovider-worker")
        self.pool.start()
        self.reactor.addSystemEventTrigger("during", "shutdown", self.stop)
        pipeline = Pipeline(self.dispatcher, self.audit, codec=self.codec,
                            max_request_bytes=s.max_request_bytes)
        cimom = CIMOMResource(pipeline=pipeline, authenticator=self.authenticator,
                              throttle=self.throttle, pool=self.pool, reactor=self.reactor,
                              realm=s.realm, cert_map=self.cert_map)
        root = RootResource(cimom)
        if self.env is not None and self.env.agent is not None:
            self._add_collections(root)
        site = CIMSite(root, max_request_bytes=s.max_request_bytes,
                       idle_timeout=s.idle_timeout, reactor=self.reactor)
        self.ports = []
        self.ports.append(self._listen(
            lambda iface: endpoints.SSL4ServerEndpoint(self.reactor, s.port, self._context,
                                                       backlog=128, interface=iface), site))
        if s.http_port is not None:
            self.ports.append(self._listen(
                lambda iface: endpoints.TCP4ServerEndpoint(self.reactor, s.http_port,
                                                           backlog=128, interface=iface), site))
        return self.ports

    def _add_collections(self, root) -> None:
        """/collections (CollectSystemData archives) and the background work (job polling,
        archive pruning)."""
        from provider.background import BackgroundWork
        from provider.http.downloads import DownloadsResource
        from provider.providers.hpvm_collect import collection_service

        root.putChild(b"collections", DownloadsResource(
            store=collection_service(self.env).store, authenticator=self.authenticator,
            throttle=self.throttle, pool=self.pool, reactor=self.reactor, audit=self.audit,
            realm=self.settings.realm, cert_map=self.cert_map))
        self.background = BackgroundWork(self.env, self.reactor, self.pool)
        self.background.start()

    def _listen(self, make_endpoint, site):
        """Listen synchronously (endpoints of the default reactor resolve at once)."""
        from twisted.internet.error import CannotListenError

        interfaces = [self.settings.bind] if self.settings.bind else ["::", "0.0.0.0"]
        last = None
        for iface in interfaces:
            result = []
            d = make_endpoint(iface).listen(site)
            d.addBoth(result.append)
            if not result:
                raise StartupError("listening did not complete")
            value = result[0]
            if hasattr(value, "getHost"):
                return value
            last = value.value if hasattr(value, "value") else value
            if not isinstance(last, CannotListenError):
                raise StartupError(f"cannot listen: {last}")
        raise StartupError(f"cannot listen on port {getattr(last, 'port', '?')}: "
                           f"{getattr(last, 'socketError', last)}")

    def stop(self) -> None:
        if self.background is not None:
            self.background.stop()
            self.background = None
        if self.pool is not None:
            self.pool.stop()
            self.pool = None

    # -- what the operator sees -------------------------------------------------------------
    def url_host(self) -> str:
        bind = self.settings.bind
        if bind in ("", "::", "0.0.0.0"):
            return socket.getfqdn() or "localhost"
        return f"[{bind}]" if ":" in bind else bind

    def banner(self) -> list[str]:
        https_port = self.ports[0].getHost().port
        host = self.url_host()
        url = f"https://{host}:{https_port}"
        lines = [f"vmprovider CIM server: {url}/cimom"]
        if len(self.ports) > 1:
            lines.append(f"plain HTTP (no TLS!): http://{host}:{self.ports[1].getHost().port}")
        lines.append(f"certificate {self.info.cert_path}")
        lines.append(f"certificate SHA-256 fingerprint {self.info.fingerprint}")
        if self.info.admin_password is not None:
            lines.append(f"created user admin with password {self.info.admin_password} "
                         f"(stored in {Path(self.settings.state_dir) / 'admin-password'}, "
                         "mode 0600; shown only this once)")
        lines.append(f"connect: pywbemcli -s {url} -u admin --ca-certs {self.info.cert_path} "
                     "server info")
        return lines
