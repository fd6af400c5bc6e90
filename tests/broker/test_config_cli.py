"""mosquitto.conf parsing and the command line (python -m refbroker)."""

import socket
import subprocess
import sys
import time

import pytest

from refbroker.config import ConfigError, load_config, parse_config, settings_from_mapping
from refbroker.core import Listener

from .certs import make_certificates
from .net import StreamClient, WebSocketClient


def run_cli(*arguments, timeout=20):
    return subprocess.run([sys.executable, "-m", "refbroker", *arguments], capture_output=True, text=True,
                          timeout=timeout)


def test_config_keys_of_issue_4(tmp_path):
    included = tmp_path / "conf.d"
    included.mkdir()
    (included / "b.conf").write_text("max_qos 1\n")
    (included / "a.conf").write_text("max_qos 2\nretain_available false\n")
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"""# a comment
listener 1884 127.0.0.1
listener 1885
allow_anonymous true
max_inflight_messages 5
max_queued_messages 50
max_packet_size 10000
message_size_limit 500
max_keepalive 30
sys_interval 0
persistent_client_expiration 2d
allow_zero_length_clientid false
auto_id_prefix x-
log_type error
log_type debug
log_dest stderr
per_listener_settings false
include_dir {included}
""")
    settings = load_config(config)
    assert settings.listeners == [Listener(1884, "127.0.0.1"), Listener(1885, None)]
    assert settings.allow_anonymous is True
    assert (settings.max_inflight_messages, settings.max_queued_messages) == (5, 50)
    assert (settings.max_packet_size, settings.message_size_limit, settings.max_keepalive) == (10000, 500, 30)
    assert settings.sys_interval == 0 and settings.persistent_client_expiration == 2 * 86400
    assert settings.allow_zero_length_clientid is False and settings.auto_id_prefix == "x-"
    assert settings.log_types == {"error", "debug"}
    assert settings.max_qos == 1 and settings.retain_available is False  # b.conf read after a.conf
    assert settings.log_dest == [("stderr", None)] and settings.per_listener_settings is False


@pytest.mark.parametrize("line, message", [
    ("no_such_key 1", "unknown configuration key 'no_such_key'"),
    ("max_qos 3", "out of range"),
    ("allow_anonymous yes", "expected 'true' or 'false'"),
    ("listener", "usage: listener PORT"),
    ("password_file /nonexistent/pw", "cannot read"),
    ("certfile /nonexistent/cert.pem", "no such file"),
    ("tls_version tlsv9", "tls_version must be one of"),
    ("protocol http", "not supported"),
])
def test_bad_config_lines_name_file_and_line(line, message):
    with pytest.raises(ConfigError) as error:
        parse_config(f"# first\n{line}\n", "my.conf")
    assert str(error.value).startswith("my.conf:2: ")
    assert message in str(error.value)


def test_defaults_without_listeners_allow_anonymous_like_mosquitto_local_only_mode():
    assert parse_config("").anonymous_allowed is True
    assert parse_config("listener 1883").anonymous_allowed is False


def test_settings_from_a_mapping():
    settings = settings_from_mapping({"max_inflight_messages": 3, "retain_available": False})
    assert settings.max_inflight_messages == 3 and settings.retain_available is False


def test_cli_help():
    result = run_cli("-h")
    assert result.returncode == 0
    assert "Usage: refbroker" in result.stdout and "--test-config" in result.stdout


def test_cli_test_config_valid_and_invalid(tmp_path):
    good = tmp_path / "good.conf"
    good.write_text("listener 1883\nallow_anonymous true\n")
    result = run_cli("-c", str(good), "--test-config")
    assert result.returncode == 0, result.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text("listener 1883\nmax_inflight_messages lots\n")
    result = run_cli("-c", str(bad), "--test-config")
    assert result.returncode != 0
    assert f"{bad}:2:" in result.stderr and "Traceback" not in result.stderr


def test_cli_user_mistakes_are_one_line_not_a_traceback(tmp_path):
    for arguments in (["-c", str(tmp_path / "missing.conf")], ["--bogus"], ["-p", "x"], ["-c"]):
        result = run_cli(*arguments)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr and "Error:" in result.stderr


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_cli_runs_a_broker_on_the_port_of_p_with_verbose_packet_log():
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "refbroker", "-p", str(port), "-v"],
                               stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            try:
                connection = socket.create_connection(("127.0.0.1", port), timeout=2)
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("refbroker did not start listening")
        from refbroker.protocol import Connect, StreamDecoder
        with connection:
            connection.sendall(Connect(client_id="c1").encode())
            assert StreamDecoder(4).feed(connection.recv(100))[0].reason_code == 0
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Received CONNECT from" in stderr and "Sending CONNACK to c1 (0, 0)" in stderr


def test_cli_opens_tls_and_websocket_listeners(tmp_path):
    certs = make_certificates(tmp_path)
    tls_port, ws_port = _free_port(), _free_port()
    config = tmp_path / "secure.conf"
    config.write_text(f"listener {tls_port} 127.0.0.1\ncertfile {certs.server_cert}\nkeyfile {certs.server_key}\n"
                      f"listener {ws_port} 127.0.0.1\nprotocol websockets\nallow_anonymous true\n")
    process = subprocess.Popen([sys.executable, "-m", "refbroker", "-c", str(config)], stderr=subprocess.PIPE,
                               text=True)
    try:
        for _ in range(100):
            try:
                tls = StreamClient(tls_port, 5, certs.client_context())
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("refbroker did not start listening")
        assert tls.connect("tls").reason_code == 0
        assert WebSocketClient(f"ws://127.0.0.1:{ws_port}/", 4).connect("ws").reason_code == 0
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert f"Opening TLS listen socket on 127.0.0.1 port {tls_port}." in stderr
    assert f"Opening websockets listen socket on 127.0.0.1 port {ws_port}." in stderr
