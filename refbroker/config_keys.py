"""Every key of mosquitto 2.0.11's mosquitto.conf, and what refbroker does with it.

    HONOURED  refbroker does what mosquitto does with it (each has a test against both brokers where
              the behaviour is mosquitto's: tests/broker/test_dropin_*.py, tests/persistence/)
    NOTICE    mosquitto accepts it and does nothing but print a notice (deprecated or obsolete); so does refbroker
    REFUSED   refbroker cannot honour it: the start stops with an error naming the key and the reason

`KEYS` maps each key to (status, a valid sample value, what it does in refbroker). The README's
table is this one; tests/broker/test_config_keys.py checks the parser against it key by key.
"""

from __future__ import annotations

HONOURED, NOTICE, REFUSED = "honoured", "notice", "refused"

KEYS: dict[str, tuple[str, str, str]] = {
    # General
    "acl_file": (HONOURED, "{acl}", "mosquitto's ACL format; reloaded on SIGHUP"),
    "allow_anonymous": (HONOURED, "true", "as mosquitto 2.0 (local only mode without listeners); reloaded on SIGHUP"),
    "allow_duplicate_messages": (NOTICE, "true", "deprecated in mosquitto 2.0, no effect there either"),
    "allow_zero_length_clientid": (HONOURED, "false", ""),
    "auth_opt_*": (REFUSED, "x", "plugins"),
    "auth_plugin": (REFUSED, "/x.so", "plugins"),
    "auth_plugin_deny_special_chars": (REFUSED, "true", "plugins"),
    "auto_id_prefix": (HONOURED, "x-", ""),
    "autosave_interval": (HONOURED, "60", "seconds (or changes) between saves"),
    "autosave_on_changes": (HONOURED, "true", ""),
    "check_retain_source": (HONOURED, "true", "as mosquitto 2.0.11/2.0.21 behave: the retained message is sent"),
    "clientid_prefixes": (HONOURED, "x-", "other client ids: CONNACK 5 / 0x87"),
    "connection_messages": (HONOURED, "false", ""),
    "include_dir": (HONOURED, "{dir}", "mosquitto's order; only in the main file"),
    "log_dest": (HONOURED, "stdout", "stderr, stdout, file PATH, topic, syslog, none (dlt refused)"),
    "log_facility": (HONOURED, "5", "syslog local0..7"),
    "log_timestamp": (HONOURED, "false", ""),
    "log_timestamp_format": (HONOURED, "%H:%M:%S", "strftime"),
    "log_type": (HONOURED, "all", "debug error warning notice information subscribe unsubscribe websockets"),
    "max_inflight_bytes": (HONOURED, "1000", "payload bytes in flight per client, as mosquitto.conf(5) says"),
    "max_inflight_messages": (HONOURED, "10", ""),
    "max_keepalive": (HONOURED, "60", ""),
    "max_packet_size": (HONOURED, "10000", ""),
    "max_queued_bytes": (HONOURED, "1000", "payload bytes queued per client; more is dropped"),
    "max_queued_messages": (HONOURED, "100", ""),
    "memory_limit": (HONOURED, "1000000", "counted on the payloads held; past it a publisher or receiver is "
                                          "disconnected"),
    "message_size_limit": (HONOURED, "1000", ""),
    "password_file": (HONOURED, "{passwords}", "mosquitto_passwd's formats; reloaded on SIGHUP (clients whose "
                                               "credentials no longer pass are disconnected, as mosquitto)"),
    "per_listener_settings": (HONOURED, "true", "password_file, acl_file, allow_anonymous, allow_zero_length_clientid "
                                                "and auto_id_prefix per listener; must come before them, as in mosquitto"),
    "persistence": (HONOURED, "true", "an SQLite database (refbroker/persistence)"),
    "persistence_file": (HONOURED, "state.db", ""),
    "persistence_location": (HONOURED, "{dir}/", ""),
    "persistent_client_expiration": (HONOURED, "2d", ""),
    "pid_file": (HONOURED, "{dir}/broker.pid", ""),
    "plugin": (REFUSED, "/x.so", "plugins"),
    "plugin_opt_*": (REFUSED, "x", "plugins"),
    "psk_file": (REFUSED, "/x", "TLS-PSK (Python's ssl has no PSK before 3.13)"),
    "queue_qos0_messages": (HONOURED, "true", ""),
    "retain_available": (HONOURED, "false", ""),
    "retained_persistence": (HONOURED, "true", "mosquitto's old name of persistence"),
    "retry_interval": (NOTICE, "20", "obsolete in mosquitto 2.0, no effect there either"),
    "set_tcp_nodelay": (HONOURED, "true", "true (refbroker always sets TCP_NODELAY); false is refused"),
    "sys_interval": (HONOURED, "10", ""),
    "upgrade_outgoing_qos": (HONOURED, "true", ""),
    "user": (HONOURED, "nobody", "privileges dropped after binding, when started as root (see process.py)"),
    "websockets_headers_size": (REFUSED, "1024", "a libwebsockets setting"),
    "websockets_log_level": (REFUSED, "255", "a libwebsockets setting (log_type websockets works)"),
    # Listeners
    "bind_address": (HONOURED, "127.0.0.1", "the default listener's address"),
    "bind_interface": (REFUSED, "eth0", "use listener PORT ADDRESS"),
    "http_dir": (REFUSED, "/x", "no HTTP file serving"),
    "listener": (HONOURED, "1883 127.0.0.1", "TCP, or `listener 0 /path` for a Unix socket"),
    "max_connections": (HONOURED, "10", "per listener; the connection above it is closed at once"),
    "max_qos": (HONOURED, "1", ""),
    "maximum_qos": (HONOURED, "1", "mosquitto's old name of max_qos"),
    "max_topic_alias": (HONOURED, "5", ""),
    "mount_point": (HONOURED, "tenant/", "topics prefixed in, stripped out (as mosquitto's manual and 2.0.21)"),
    "port": (HONOURED, "1883", "the default listener's port"),
    "protocol": (HONOURED, "websockets", "mqtt or websockets"),
    "socket_domain": (HONOURED, "ipv4", ""),
    "use_username_as_clientid": (HONOURED, "true", "the user name replaces the client id; none: CONNACK 5 / 0x87"),
    # TLS
    "cafile": (HONOURED, "{cert}", ""),
    "capath": (HONOURED, "{dir}", ""),
    "certfile": (HONOURED, "{cert}", "reloaded on SIGHUP"),
    "ciphers": (HONOURED, "HIGH", "TLS 1.2 and below"),
    "ciphers_tls1.3": (REFUSED, "TLS_AES_256_GCM_SHA384", "Python's ssl cannot choose TLS 1.3 suites"),
    "crlfile": (HONOURED, "{cert}", "client certificates checked against the CRL (OpenSSL, leaf)"),
    "dhparamfile": (HONOURED, "{dhparams}", ""),
    "keyfile": (HONOURED, "{key}", "reloaded on SIGHUP"),
    "psk_hint": (REFUSED, "x", "TLS-PSK"),
    "require_certificate": (HONOURED, "true", ""),
    "tls_engine": (REFUSED, "x", "OpenSSL engines"),
    "tls_engine_kpass_sha1": (REFUSED, "x", "OpenSSL engines"),
    "tls_keyform": (HONOURED, "pem", "pem; engine is refused"),
    "tls_version": (HONOURED, "tlsv1.2", "the lowest version accepted"),
    "use_identity_as_username": (HONOURED, "true", ""),
    "use_subject_as_username": (HONOURED, "true", "the client certificate's subject, RFC 2253 form, is the user name"),
    # Bridges: all refused
    **{key: (REFUSED, "x", "bridges") for key in (
        "address", "addresses", "bridge_alpn", "bridge_attempt_unsubscribe", "bridge_bind_address", "bridge_cafile",
        "bridge_capath", "bridge_certfile", "bridge_identity", "bridge_insecure", "bridge_keyfile",
        "bridge_max_packet_size", "bridge_outgoing_retain", "bridge_protocol_version", "bridge_psk",
        "bridge_require_ocsp", "bridge_tls_version", "cleansession", "clientid", "connection", "idle_timeout",
        "keepalive_interval", "local_cleansession", "local_clientid", "local_password", "local_username",
        "notification_topic", "notifications", "notifications_local_only", "remote_clientid", "remote_password",
        "remote_username", "restart_timeout", "round_robin", "start_type", "threshold", "topic", "try_private")},
}

# refbroker's own keys (not mosquitto's)
OWN_KEYS = ("persistence_durable_acks", "scram_users", "assign_topic_aliases", "server_reference", "server_moved",
            "response_information", "mosquitto_compat", "reason_strings")
