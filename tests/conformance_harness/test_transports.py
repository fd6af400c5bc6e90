"""conformance/transports.py and --transport: endpoints, profiles that declare TLS listeners, the raw
client over each transport against refbroker, and the option's usage errors."""

from __future__ import annotations

import ssl

import pytest

from conformance.client import HarnessError, RawClient
from conformance.targets import HostPortTarget, RefbrokerTarget, load_profile
from conformance.transports import TRANSPORTS, Endpoint, open_stream

pytest_plugins = ["pytester"]


def test_endpoints():
    assert Endpoint("tls", "127.0.0.1", 8883).url == "mqtts://127.0.0.1:8883"
    assert Endpoint("wss", "::1", 8081).url == "wss://[::1]:8081/mqtt"
    assert Endpoint("ws", "h", 1).websocket and not Endpoint("ws", "h", 1).secure
    assert Endpoint("tcp", "h", 1).ssl_context() is None
    with pytest.raises(ValueError, match="unknown transport 'quic'"):
        Endpoint("quic", "h", 1)
    with pytest.raises(ValueError, match="no plain stream"):
        open_stream(Endpoint("ws", "127.0.0.1", 1), 1)


def test_a_profile_declares_tls_listeners(tmp_path):
    (tmp_path / "ca.crt").write_text("")
    profile = tmp_path / "broker.toml"
    profile.write_text('[tls]\nport = 8883\ncafile = "ca.crt"\n[wss]\nport = 8081\nhost = "broker.example"\n')
    target = HostPortTarget("127.0.0.1:1883")
    target.profile = load_profile(profile)
    assert target.endpoint("tls") == Endpoint("tls", "127.0.0.1", 8883, cafile=str(tmp_path / "ca.crt"))
    assert target.endpoint("wss") == Endpoint("wss", "broker.example", 8081)
    assert target.endpoint("ws") is None and "WebSocket" in target.no_transport_reason("ws")
    profile.write_text("[tls]\nport = 0\n")
    with pytest.raises(ValueError, match=r"\[tls\] needs port"):
        load_profile(profile)


def test_the_raw_client_speaks_mqtt_over_every_transport_of_refbroker():
    target = RefbrokerTarget()
    target.start()
    try:
        for transport in TRANSPORTS:
            endpoint = target.endpoint(transport)
            assert endpoint.transport == transport
            client = RawClient(endpoint=endpoint, version=5, client_id=f"over-{transport}")
            assert client.connect().reason_code == 0
            client.subscribe(("t/#", 1))
            client.publish("t/x", transport.encode(), qos=1)
            assert client.expect_publish().payload == transport.encode()
            client.disconnect()
        tls = target.endpoint("tls")
        untrusted = Endpoint("tls", tls.host, tls.port)  # the system's CAs do not know the suite's CA
        with pytest.raises(HarnessError, match="certificate verify failed"):
            RawClient(endpoint=untrusted, version=4)
        with pytest.raises(ssl.SSLCertVerificationError):
            open_stream(untrusted, 5)
    finally:
        target.cleanup()


def test_transport_option_errors(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--transport", "tls", "--capture-dir", "captures")
    result.stderr.fnmatch_lines(["*--capture-dir records plain TCP sessions only*"])
    result = pytester.runpytest("--transport", "quic")
    result.stderr.fnmatch_lines(["*invalid choice: 'quic'*"])


def test_a_target_without_the_listener_is_an_error_naming_what_is_missing(pytester):
    target = RefbrokerTarget()
    target.start()
    try:
        pytester.makepyfile("def test_connects(client_factory):\n    client_factory()\n")
        result = pytester.runpytest("-p", "no:cacheprovider", "--broker", "{}:{}".format(*target.address),
                                    "--transport", "wss", "--mqtt-version", "5.0")
        result.stdout.fnmatch_lines(["*--transport wss: the target * offers no wss listener (a target profile may "
                                     "declare one*"])
    finally:
        target.cleanup()
