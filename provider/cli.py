"""`vmprovider serve` (the CIM server) and `vmprovider user` (the server's user file)."""
from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from pathlib import Path

from provider.auth.users import ROLES, UserError, UserFile
from provider.settings import BACKENDS, SettingsError, build_settings


def _state_dir(arg: str | None) -> Path:
    return Path(arg or os.environ.get("VMPROVIDER_STATE_DIR") or "/var/lib/vmprovider")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vmprovider",
                                description="vmprovider CIM server and its users")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the CIM-XML server over HTTPS")
    s.add_argument("--bind", help="address to listen on (default: all interfaces)")
    s.add_argument("--port", type=int, help="HTTPS port (default 5989)")
    s.add_argument("--http-port", type=int,
                   help="also serve plain HTTP on this port (off unless given)")
    s.add_argument("--state-dir", type=Path, help="state folder (default "
                   "$VMPROVIDER_STATE_DIR or /var/lib/vmprovider)")
    s.add_argument("--certs-dir", type=Path, help="certificate folder (default STATE/certs)")
    s.add_argument("--cert", type=Path, help="your own server certificate (PEM, with --key)")
    s.add_argument("--key", type=Path, help="the private key of --cert (PEM)")
    s.add_argument("--backend", choices=BACKENDS, help="host backend (default ivm)")
    s.add_argument("--config", type=Path, help="TOML config file (see docs/server.md)")
    s.add_argument("--demo", action="store_true", default=None,
                   help="create a demo guest if the host has none")
    s.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"))

    u = sub.add_parser("user", help="manage the server's users")
    u.add_argument("--state-dir", type=Path, help="state folder (as for serve)")
    us = u.add_subparsers(dest="action", required=True)
    a = us.add_parser("add", help="add a user")
    a.add_argument("name")
    a.add_argument("--role", choices=ROLES, default="readonly",
                   help="host role (default readonly)")
    a.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    a.add_argument("--pam", action="store_true",
                   help="check this user's password with PAM (needs [auth] pam_service)")
    r = us.add_parser("remove", help="remove a user")
    r.add_argument("name")
    us.add_parser("list", help="list users and roles")
    pw = us.add_parser("passwd", help="set a user's password")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    ro = us.add_parser("role", help="change a user's role")
    ro.add_argument("name")
    ro.add_argument("role", choices=ROLES)
    return p


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise UserError("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass("Password: ")
    second = getpass.getpass("Password again: ")
    if first != second:
        raise UserError("the passwords differ")
    return first


def _user(args) -> int:
    users = UserFile(_state_dir(args.state_dir))
    if args.action == "list":
        table = users.load()
        if not table:
            print("no users")
        for name in sorted(table):
            u = table[name]
            print(f"{name:<24} {u.role:<9} {'pam' if u.pam else 'password'}")
        return 0
    if args.action == "add":
        password = None if args.pam else _read_password(args.password_stdin)
        users.add(args.name, args.role, password, pam=args.pam)
        print(f"added user {args.name} with role {args.role}")
    elif args.action == "remove":
        users.remove(args.name)
        print(f"removed user {args.name}")
    elif args.action == "passwd":
        if users.get(args.name) is None:
            raise UserError(f"no user {args.name!r}")
        users.set_password(args.name, _read_password(args.password_stdin))
        print(f"password of {args.name} changed")
    elif args.action == "role":
        users.set_role(args.name, args.role)
        print(f"{args.name} now has role {args.role}")
    return 0


def _open_agent(settings):
    """The agent API the providers read the host through (same state folder)."""
    from agent.api import Agent
    from agent.errors import AgentError

    try:
        return Agent(settings.state_dir, backend=settings.backend)
    except AgentError as e:
        from provider.server import StartupError
        raise StartupError(" ".join(e.lines)) from None


def _serve(args) -> int:
    logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {"bind": args.bind, "port": args.port, "http_port": args.http_port,
                 "state_dir": args.state_dir, "certs_dir": args.certs_dir, "cert": args.cert,
                 "key": args.key, "backend": args.backend, "demo": args.demo}
    settings = build_settings(args.config, overrides)
    if settings.backend == "libvirt":
        print("vmprovider: the libvirt backend is not available yet; use --backend ivm",
              file=sys.stderr)
        return 2

    from twisted.internet import reactor
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    from provider.server import CIMServer, StartupError

    globalLogBeginner.beginLoggingTo([STDLibLogObserver(name="twisted")],
                                     redirectStandardIO=False)
    try:
        agent = _open_agent(settings)
        server = CIMServer(settings, reactor=reactor, agent=agent)
        server.prepare()
        from provider.demo import start_host
        host_lines = start_host(agent, demo=settings.demo)
        server.listen()
    except StartupError as e:
        print(f"vmprovider: {e}", file=sys.stderr)
        return 1
    for line in host_lines + server.banner():
        print(line, flush=True)
    reactor.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "user":
            return _user(args)
        return _serve(args)
    except (UserError, SettingsError) as e:
        print(f"vmprovider: {e}", file=sys.stderr)
        return 1
    except OSError as e:          # a state folder we may not write, a full disk ...
        where = f" ({e.filename})" if e.filename else ""
        print(f"vmprovider: {e.strerror or e}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
