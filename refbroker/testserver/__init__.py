"""A local test.mosquitto.org: its listener set on local ports, for refbroker and for mosquitto.

    refbroker --test-server [--base-port N] [--out DIR]        write the files and run it
    python -m refbroker.testserver client-cert DIR NAME        a client certificate of its CA

    layout.py        the listeners, users and ACL; writes mosquitto.conf, refbroker.conf and the files
    certificates.py  CA, server and client certificates, expired certificates, CRLs (cryptography)
    cli.py           the command line
"""

from .layout import LISTENERS, TestServerLayout, issue_client_certificate, write_test_server

__all__ = ["LISTENERS", "TestServerLayout", "issue_client_certificate", "write_test_server"]
