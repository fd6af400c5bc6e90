"""pcap: record MQTT sessions to pcap files, explain them packet by packet, replay them (not built yet)."""
