"""The test server's command line (also `refbroker --test-server ...`).

    python -m refbroker.testserver [--base-port N] [--out DIR] [--bind ADDRESS] [--write-only] [-v]
    python -m refbroker.testserver client-cert DIR NAME

The first form writes the layout (layout.py) into DIR (default ./test-server), prints the table of
ports and runs refbroker with DIR/refbroker.conf until interrupted; `--write-only` stops after writing,
for `mosquitto -c DIR/mosquitto.conf`. The second issues a client certificate of DIR's CA.

`prepare` does the work and hands back the arguments refbroker's own command line (refbroker/cli.py)
runs the broker with, so this module needs nothing of the broker's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .layout import USERS, issue_client_certificate, ports_for, write_test_server

DESCRIPTION = """A local test.mosquitto.org: its listeners (plain, authenticated, TLS, client certificate,
second CA, expired certificate, WebSockets, WebSockets over TLS) on local ports, with its users and
rules, as files that refbroker and mosquitto 2.0 both load."""


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="refbroker --test-server", description=DESCRIPTION,
        epilog="Client certificates for the client-certificate port: python -m refbroker.testserver "
               "client-cert DIR NAME. The same layout on mosquitto: mosquitto -c DIR/mosquitto.conf")
    parser.add_argument("--base-port", type=int, default=None, metavar="N",
                        help="listen on N, N+1, ... N+10 (default: the public server's ports 1883, 1884, "
                             "8883-8887, 8080, 8081, 8090, 8091)")
    parser.add_argument("--out", default="test-server", metavar="DIR",
                        help="directory for the configs, certificates, password and ACL files "
                             "(default: ./test-server; an existing CA there is kept)")
    parser.add_argument("--bind", default="127.0.0.1", metavar="ADDRESS",
                        help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--write-only", action="store_true",
                        help="write the files and print the table, but do not start refbroker")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every packet (refbroker -v)")
    return parser


def _client_cert_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m refbroker.testserver client-cert",
                                     description="Issue a client certificate of a test server's CA.")
    parser.add_argument("directory", metavar="DIR", help="the test server's directory (--out)")
    parser.add_argument("name", metavar="NAME", help="the certificate's Common Name; files DIR/clients/NAME.crt/.key")
    return parser


def prepare(argv: list[str]) -> int | list[str]:
    """Do what the arguments ask; an exit status when done, or the refbroker arguments to run the
    test server with (refbroker's cli.py runs them: `refbroker --test-server ...`)."""
    if argv[:1] == ["client-cert"]:
        options = _client_cert_parser().parse_args(argv[1:])
        try:
            cert, key = issue_client_certificate(options.directory, options.name)
        except (OSError, ValueError) as error:
            print(f"Error: {error}", file=sys.stderr)
            return 1
        print(f"client certificate: {cert}\nprivate key:        {key}")
        return 0
    options = _serve_parser().parse_args(argv)
    try:
        ports_for(options.base_port)
        layout = write_test_server(Path(options.out), base_port=options.base_port, host=options.bind)
    except (OSError, ValueError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    users = ", ".join(f"{name}/{password}" for name, (password, _) in USERS.items())
    print(f"Test server files in {layout.directory}\n\n{layout.table()}\n\n"
          f"CA: {layout.file('ca.crt')} (port {layout.listeners[5].port}: {layout.file('second-ca.crt')})\n"
          f"users (authenticated ports): {users}\n"
          f"client certificate: python -m refbroker.testserver client-cert {layout.directory} NAME\n"
          f"same layout on mosquitto: mosquitto -c {layout.mosquitto_conf}\n", flush=True)
    if options.write_only:
        return 0
    return ["-c", str(layout.refbroker_conf)] + (["-v"] if options.verbose else [])
