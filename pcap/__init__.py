"""pcap: record MQTT sessions to pcapng files, explain them packet by packet, replay them against a broker.

Modules: `session` (the shared data model: sessions, chunks, decoded packets), `proxy` (the recording
TCP proxy, `RecordingProxy`), `pcapng` (writing sessions as pcapng with synthesized TCP/IP framing).
"""
