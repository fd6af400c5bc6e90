"""mosquitto 2.0.11 / 2.0.21 / 2.1.2 in Docker as interop targets: the conformance Docker target plus a
WebSocket listener, two TLS listeners (server certificate only; client certificate required) and a
restart that keeps the host ports (they are chosen here, not by Docker, so a container restart
publishes the same ones).
"""

from __future__ import annotations

import time

from conformance.client import HarnessError
from conformance.targets import free_port

from ..docker_target import DockerMosquittoTarget
from ..images import spec_for
from .base import Capabilities, InteropTarget

WS_PORT, TLS_PORT, MTLS_PORT = 8080, 8883, 8884
TLS_DIR = "/mqtt-toolkit-tls"


class DockerMosquittoInterop(DockerMosquittoTarget, InteropTarget):
    capabilities = Capabilities()
    suite_listeners = False  # its own WebSocket and TLS listeners (below), with the matrix's certificates

    def __init__(self, version: str):
        spec = spec_for(version)
        DockerMosquittoTarget.__init__(self, spec.tag)
        self.profile_name = f"mosquitto-{spec.mosquitto_version}"
        InteropTarget.__init__(self)
        self._host_ports: dict[int, int] = {}

    def _host_port(self, container_port: int) -> int:
        if container_port not in self._host_ports:
            self._host_ports[container_port] = free_port(self.host)
        return self._host_ports[container_port]

    def port_bindings(self):
        bindings = {"1883/tcp": (self.host, self._host_port(1883)), f"{WS_PORT}/tcp": (self.host, self._host_port(WS_PORT))}
        if self.tls_files:
            bindings[f"{TLS_PORT}/tcp"] = (self.host, self._host_port(TLS_PORT))
            bindings[f"{MTLS_PORT}/tcp"] = (self.host, self._host_port(MTLS_PORT))
        return bindings

    def volumes(self):
        volumes = super().volumes()
        if self.tls_files:
            import os
            volumes[os.path.dirname(self.tls_files.ca)] = {"bind": TLS_DIR, "mode": "ro"}
        return volumes

    def extra_listeners(self) -> list[str]:
        lines = [f"listener {WS_PORT}", "protocol websockets"]
        if self.tls_files:
            import os
            name = os.path.basename
            tls = self.tls_files
            lines += [f"listener {TLS_PORT}", f"certfile {TLS_DIR}/{name(tls.server_cert)}",
                      f"keyfile {TLS_DIR}/{name(tls.server_key)}",
                      f"listener {MTLS_PORT}", f"certfile {TLS_DIR}/{name(tls.server_cert)}",
                      f"keyfile {TLS_DIR}/{name(tls.server_key)}", f"cafile {TLS_DIR}/{name(tls.ca)}",
                      "require_certificate true"]
        return lines

    @property
    def websocket_address(self):
        return (self.host, self._host_ports[WS_PORT]) if self.container is not None else None

    @property
    def tls_address(self):
        return (self.host, self._host_ports[TLS_PORT]) if self.container is not None and self.tls_files else None

    @property
    def mtls_address(self):
        return (self.host, self._host_ports[MTLS_PORT]) if self.container is not None and self.tls_files else None

    def restart(self) -> None:
        """`docker restart`: the same container, config and host ports; waits for a CONNACK again."""
        if self.container is None:
            raise HarnessError(f"{self.name} is not started")
        self.container.restart(timeout=5)
        deadline = time.monotonic() + 10
        while self.container.status != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
            self.container.reload()
        self._wait_for_connack()

    def cleanup(self) -> None:
        self.stop()
