"""End-to-end MQTT broker benchmark: throughput and latency for QoS 0, 1 and 2, 1→1 and 1→N fan-out.

    python -m bench                      refbroker and mosquitto side by side, with the ratio
    python -m bench --target 127.0.0.1:1883
    python -m bench --help

Parts:
    cli.py      the command line: which targets and scenarios, the run loop, --json
    targets.py  refbroker and mosquitto as separate local processes, the relay, HOST:PORT
    runner.py   one scenario: subscriber processes, then the publisher process, then the figures
    workers.py  the publisher and subscriber processes (raw sockets, pre-encoded packets)
    wire.py     packet templates made with refbroker.protocol, the handshake, frame walking
    relay.py    a do-nothing "broker" that measures the load generator's own ceiling
    report.py   header, progress lines and tables
"""
