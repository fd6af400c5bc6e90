"""Every key of mosquitto 2.0.11 is honoured or refused (refbroker/config_keys.py), never accepted and ignored.

The list of keys is checked against what Debian's mosquitto 2.0.11 itself accepts (a config with the
key passes `mosquitto -c`'s parser up to the point of opening the listener, or fails for a reason
other than an unknown key), then each key against refbroker's parser.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from refbroker.config import ConfigError, parse_config
from refbroker.config_keys import HONOURED, KEYS, NOTICE, OWN_KEYS, REFUSED

from .certs import make_certificates
from .processes import mosquitto_or_skip


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    certificates = make_certificates(directory)
    (directory / "acl").write_text("topic read #\n")
    (directory / "passwords").write_text("")
    dhparams = directory / "dh.pem"
    # Diffie-Hellman parameters made with `cryptography` (which trustme brings); small: only parsed here
    from cryptography.hazmat.primitives.asymmetric import dh
    from cryptography.hazmat.primitives.serialization import Encoding, ParameterFormat
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography deprecates finite-field DH; TLS 1.2 DHE still uses it
        parameters = dh.generate_parameters(generator=2, key_size=512)
    dhparams.write_bytes(parameters.parameter_bytes(Encoding.PEM, ParameterFormat.PKCS3))
    return {"dir": str(directory), "acl": str(directory / "acl"), "passwords": str(directory / "passwords"),
            "cert": str(certificates.server_cert), "key": str(certificates.server_key), "dhparams": str(dhparams)}


def line_for(key: str, sample: str, files: dict) -> str:
    key = key.replace("*", "name")
    return f"{key} {sample.format(**files)}"


def context_for(key: str, files: dict) -> str:
    """Lines a key needs before it (a TLS key needs a TLS listener)."""
    if key in ("cafile", "capath", "ciphers", "dhparamfile", "require_certificate", "tls_version", "tls_keyform",
               "use_identity_as_username", "use_subject_as_username", "crlfile", "certfile", "keyfile", "protocol", "mount_point", "socket_domain",
               "max_qos", "maximum_qos", "max_topic_alias"):
        return f"listener 1883\ncertfile {files['cert']}\nkeyfile {files['key']}\n"
    return ""


@pytest.mark.parametrize("key", sorted(KEYS))
def test_each_mosquitto_key_is_honoured_or_refused(key, files):
    status, sample, _ = KEYS[key]
    text = context_for(key, files) + line_for(key, sample, files) + "\n"
    if key in ("use_identity_as_username", "use_subject_as_username", "crlfile"):
        text = context_for(key, files) + f"cafile {files['cert']}\nrequire_certificate true\n" + line_for(
            key, sample, files) + "\n"
    if key == "require_certificate":
        text = context_for(key, files) + f"cafile {files['cert']}\n" + line_for(key, sample, files) + "\n"
    if status == REFUSED:
        with pytest.raises(ConfigError) as error:
            parse_config(text, "my.conf")
        assert key.replace("*", "name") in str(error.value) and "my.conf:" in str(error.value)
    else:
        settings = parse_config(text, "my.conf")
        if status == NOTICE:
            assert settings.ignored, "mosquitto's notice is repeated"
        else:
            assert status == HONOURED and not any(key in line for line in settings.ignored)


def test_values_refused_where_refbroker_cannot_do_what_mosquitto_does():
    for line in ("set_tcp_nodelay false", "log_dest dlt", "tls_keyform engine"):
        with pytest.raises(ConfigError, match="not supported"):
            parse_config(line)


def test_no_key_is_accepted_and_ignored():
    """Every key is honoured, refused, or (as in mosquitto) accepted with mosquitto's own notice."""
    assert {status for status, _, _ in KEYS.values()} <= {HONOURED, NOTICE, REFUSED}


def test_refused_keys_stop_the_start_with_the_key_and_the_reason(tmp_path):
    config = tmp_path / "broker.conf"
    config.write_text("listener 0 127.0.0.1\nconnection to-the-cloud\naddress 10.0.0.1\n")
    result = subprocess.run([sys.executable, "-m", "refbroker", "-c", str(config)], capture_output=True, text=True,
                            timeout=20)
    assert result.returncode == 1
    assert f"{config}:2: connection: bridges are not supported" in result.stderr


def test_the_table_lists_every_key_mosquitto_2_0_11_knows(files, tmp_path):
    """Each key of the table is one mosquitto's own parser knows: it does not answer "Unknown
    configuration variable" for it (mosquitto -c with --test-config does not exist in 2.0, so the
    broker is started on a config that stops right after parsing: an unusable listener port)."""
    binary = mosquitto_or_skip()
    unknown = []
    config = tmp_path / "m.conf"
    config.write_text("no_such_key_at_all 1\n")
    result = subprocess.run([binary, "-c", str(config), "-p", "0"], capture_output=True, text=True, timeout=5)
    assert "Unknown configuration variable" in result.stdout + result.stderr  # the check can fail
    for key in sorted(KEYS):
        config = tmp_path / "m.conf"
        _, sample, _ = KEYS[key]
        config.write_text(f"{line_for(key, sample, files)}\n")
        result = subprocess.run([binary, "-c", str(config), "-p", "0"], capture_output=True, text=True, timeout=5)
        if "Unknown configuration variable" in result.stdout + result.stderr:
            unknown.append(key)
    assert unknown == []
    assert not set(OWN_KEYS) & set(KEYS)


def test_every_key_of_the_table_is_known_to_the_did_you_mean_list():
    from refbroker.config import KNOWN_KEYS
    assert {key for key in KEYS if "*" not in key} <= KNOWN_KEYS
    assert "persistence_durable_acks" in KNOWN_KEYS
