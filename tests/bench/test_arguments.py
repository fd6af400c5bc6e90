"""`python -m bench` argument handling: bad input is one clear line and exit status 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import build_parser, main


def run_main(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_help_explains_targets_scenarios_and_exit_status(capsys):
    code, out, _ = run_main(capsys, "--help")
    assert code == 0
    for text in ("--target", "mosquitto", "HOST:PORT", "--json", "--time-cap", "--window", "latency", "ceiling",
                 "exit status"):
        assert text in out


@pytest.mark.parametrize("argv, message", [
    (["--qos", "3"], "--qos: 3 is not one of 0, 1, 2"),
    (["--qos", "x"], "--qos: expected comma-separated integers"),
    (["--fanout", "7"], "--fanout: 7 is not one of 1, 10, 100"),
    (["--max-queued-messages", "-1"], "--max-queued-messages: -1 is outside"),
    (["--unpaced-messages", "0"], "--unpaced-messages: 0 is outside"),
    (["--kind", "speed"], "kind 'speed'"),
    (["--messages", "0"], "--messages: 0 is outside"),
    (["--time-cap", "1000"], "--time-cap: 1000.0 is outside"),
    (["--repeat", "0"], "--repeat: 0 is outside"),
    (["--cpu-pinning", "maybe"], "invalid choice"),
    (["--latency-rate", "fast"], "--latency-rate: 'fast' is not a number"),
    (["--mqtt-version", "3.1"], "invalid choice"),
    (["--target", "broker.example.com"], "expected refbroker, mosquitto, relay or HOST:PORT"),
    (["--target", "10.1.2.3:1883"], "only loopback addresses"),
    (["--target", "127.0.0.1:99999"], "expected refbroker, mosquitto, relay or HOST:PORT"),
    (["--target", "refbroker", "--target", "refbroker"], "each --target may be given once"),
    (["--target", "mosquitto", "--mosquitto", "/nonexistent/mosquitto"], "mosquitto not found"),
    (["--json", "/nonexistent-folder/out.json"], "no such directory"),
])
def test_bad_arguments_exit_2_with_a_clear_message(capsys, argv, message):
    code, _, err = run_main(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_defaults_are_both_brokers_every_scenario():
    arguments = build_parser().parse_args([])
    assert arguments.target is None  # main() then uses refbroker and mosquitto (and the relay for the ceiling)
    assert arguments.qos == [0, 1, 2] and arguments.fanout == [1, 10, 100]
    assert arguments.kind == ["throughput", "unpaced", "latency", "capacity"]
    assert arguments.max_queued_messages == 1000  # both brokers' default
    assert arguments.window == 20 and arguments.subscribers == 100
    assert arguments.repeat == 3 and arguments.cpu_pinning == "auto"


def test_scenarios_unpaced_has_qos_0_and_1_and_10_to_10_only_unpaced():
    from bench.cli import _scenarios
    labels = [(s.kind, s.label) for s in _scenarios(build_parser().parse_args([]))]
    unpaced = [label for kind, label in labels if kind == "unpaced"]
    assert unpaced == ["QoS 0  1→1", "QoS 1  1→1", "QoS 0  10→10", "QoS 1  10→10", "QoS 0  1→100", "QoS 1  1→100"]
    assert ("throughput", "QoS 2  1→100") in labels
    assert not [label for kind, label in labels if "10→10" in label and kind != "unpaced"]
    assert "capacity" not in {kind for kind, _ in labels}  # not a load scenario


def test_a_target_that_is_not_listening_is_an_error_not_a_hang():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        result = subprocess.run([sys.executable, "-m", "bench", "--target", f"127.0.0.1:{port}", "--no-ceiling",
                                 "--qos", "0", "--fanout", "1", "--kind", "throughput"],
                                capture_output=True, text=True, timeout=60, check=False,
                                cwd=Path(__file__).parents[2])
    assert result.returncode == 1
    assert "nothing accepts connections" in result.stderr
    assert "Traceback" not in result.stderr
