"""The Docker parts that need no Docker: option parsing, the generated config, version reading,
trimming, the CLI's errors, and how ensure_engine fails (with a fake dockerd)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interop import docker_engine
from interop.__main__ import main
from interop.docker_engine import DockerUnavailable, ensure_engine
from interop.docker_target import DockerMosquittoTarget, docker_target_from_option
from interop.images import IMAGES, package_version, spec_for, trim_tree, upstream_of

# --------------------------------------------------------------------------------- option parsing


@pytest.mark.parametrize("text, tag", [
    ("docker:mosquitto-2.0.21", "mqtt-toolkit/mosquitto:2.0.21"),
    ("docker:2.0.11", "mqtt-toolkit/mosquitto:2.0.11"),
    ("docker:sid", "mqtt-toolkit/mosquitto:2.1.2"),
    ("docker:mqtt-toolkit/mosquitto:2.1.2", "mqtt-toolkit/mosquitto:2.1.2"),
])
def test_known_images_by_version_suite_or_tag(text, tag):
    target = docker_target_from_option(text)
    assert isinstance(target, DockerMosquittoTarget)
    assert target.image_tag == tag
    assert target.build_missing is True
    assert target.name == "mosquitto-" + tag.rsplit(":", 1)[1]


def test_any_other_tag_is_used_as_is_and_never_built():
    target = docker_target_from_option("docker:eclipse-mosquitto:2.0.18")
    assert target.image_tag == "eclipse-mosquitto:2.0.18"
    assert target.build_missing is False


@pytest.mark.parametrize("text, message", [
    ("docker:", "needs an image"),
    ("docker:mosquitto-1.6.9", "known mosquitto versions are 2.0.11, 2.0.21, 2.1.2"),
    ("docker:Not A Tag", "not a Docker image reference"),
    ("mosquitto", "not a Docker target"),
])
def test_bad_options_are_value_errors(text, message):
    with pytest.raises(ValueError, match=message):
        docker_target_from_option(text)


def test_building_a_target_contacts_nothing():
    target = DockerMosquittoTarget("mqtt-toolkit/mosquitto:2.0.21")
    assert target.container is None and target.workdir is None
    assert target.logs() == ""
    assert target.version_string == "mosquitto 2.0.21 (docker trixie)"  # from the table until it runs
    assert DockerMosquittoTarget("example/broker:1").version_string == \
        "mosquitto (unknown version) (docker example/broker:1)"
    target.stop()  # stopping a target that never started is harmless


def test_config_listens_in_the_container_and_logs_everything():
    config = DockerMosquittoTarget("x", extra_config="max_inflight_messages 5").config_text().splitlines()
    assert "listener 1883" in config
    assert "allow_anonymous true" in config
    assert "persistence false" in config
    assert "log_dest stderr" in config
    assert "log_type all" in config
    assert "max_inflight_messages 5" in config


# ------------------------------------------------------------------------------------- the table


def test_table_has_the_three_releases():
    assert {s.suite: s.mosquitto_version for s in IMAGES.values()} == {
        "bookworm": "2.0.11", "trixie": "2.0.21", "sid": "2.1.2"}
    assert spec_for("trixie").tag == "mqtt-toolkit/mosquitto:2.0.21"
    with pytest.raises(KeyError, match="unknown image 'buster'"):
        spec_for("buster")


@pytest.mark.parametrize("debian, upstream", [
    ("2.0.11-1.2+deb12u2", "2.0.11"),
    ("2.0.21-1", "2.0.21"),
    ("1:2.1.2-3+b1", "2.1.2"),
    ("2.1.2", "2.1.2"),
])
def test_upstream_version_of_a_debian_version(debian, upstream):
    assert upstream_of(debian) == upstream


def test_package_version_reads_dpkg_status(tmp_path):
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text(
        "Package: libmosquitto1\nStatus: install ok installed\nVersion: 2.0.21-1\n\n"
        "Package: mosquitto\nStatus: deinstall ok config-files\nVersion: 1.6.9-1\n\n"
        "Package: mosquitto\nStatus: install ok installed\nPriority: optional\nVersion: 2.0.21-1\n")
    assert package_version(tmp_path) == "2.0.21-1"
    assert package_version(tmp_path, "mosquitto-clients") is None
    assert package_version(tmp_path / "nowhere") is None


def test_trim_keeps_copyright_and_the_broker(tmp_path):
    files = ["var/lib/apt/lists/deb.debian.org_dists_sid_InRelease", "var/cache/apt/pkgcache.bin",
             "usr/share/man/man8/mosquitto.8.gz", "usr/share/locale/de/LC_MESSAGES/apt.mo",
             "usr/share/doc/mosquitto/copyright", "usr/share/doc/mosquitto/changelog.Debian.gz",
             "usr/sbin/mosquitto", "etc/mosquitto/mosquitto.conf", "var/log/mosquitto/.keep"]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    trim_tree(tmp_path)
    kept = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert kept == {"usr/share/doc/mosquitto/copyright", "usr/sbin/mosquitto", "etc/mosquitto/mosquitto.conf",
                    "var/log/mosquitto/.keep"}
    assert (tmp_path / "var/lib/apt/lists/partial").is_dir()  # apt still works in the image


# ------------------------------------------------------------------------------------------ CLI


def test_cli_rejects_an_unknown_suite(capsys):
    assert main(["images", "build", "buster"]) == 2
    assert "unknown image 'buster'" in capsys.readouterr().err


def test_cli_help_names_the_suites(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["images", "build", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "debootstrap" in out and "bookworm" in out and "--force" in out


def test_cli_turns_a_missing_engine_into_one_line(monkeypatch, capsys):
    def unavailable():
        raise DockerUnavailable("Docker is not installed (no dockerd on PATH): apt-get install docker.io",
                                "not-installed")

    monkeypatch.setattr("interop.__main__.ensure_engine", unavailable)
    assert main(["images", "build", "trixie"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Docker is not installed") and "Traceback" not in err


# ------------------------------------------------------------------------- ensure_engine failures


@pytest.fixture
def no_running_engine(monkeypatch, tmp_path):
    """ensure_engine sees no engine answering, runs as root, and starts `dockerd` from tmp_path."""
    pytest.importorskip("docker", reason="docker (the Python package) not installed: pip install -e '.[interop]'")
    monkeypatch.setattr(docker_engine, "_try_client", lambda module, base_url: None)
    monkeypatch.setattr(docker_engine.os, "geteuid", lambda: 0)
    monkeypatch.setattr(docker_engine, "START_LOCK", tmp_path / "start.lock")

    def install_fake_dockerd(script: str) -> Path:
        path = tmp_path / "dockerd"
        path.write_text(f"#!{sys.executable}\n{script}\n")
        path.chmod(0o755)
        monkeypatch.setattr(docker_engine.shutil, "which", lambda name: str(path) if name == "dockerd" else None)
        return path

    return install_fake_dockerd


def test_not_installed_says_what_to_install(monkeypatch):
    pytest.importorskip("docker", reason="docker (the Python package) not installed: pip install -e '.[interop]'")
    monkeypatch.setattr(docker_engine, "_try_client", lambda module, base_url: None)
    monkeypatch.setattr(docker_engine.shutil, "which", lambda name: None)
    with pytest.raises(DockerUnavailable, match="apt-get install docker.io") as info:
        ensure_engine()
    assert info.value.reason == "not-installed"


def test_not_root_says_so(no_running_engine, monkeypatch):
    no_running_engine("raise SystemExit(0)")
    monkeypatch.setattr(docker_engine.os, "geteuid", lambda: 1000)
    with pytest.raises(DockerUnavailable, match="only root can start dockerd") as info:
        ensure_engine()
    assert info.value.reason == "not-root"


def test_a_dockerd_that_dies_is_reported_with_its_log(no_running_engine):
    no_running_engine("import sys\nprint('failed to start daemon: fake failure for the test', flush=True)\n"
                      "sys.exit(1)")
    with pytest.raises(DockerUnavailable, match="(?s)exited with status 1.*fake failure for the test") as info:
        ensure_engine()
    assert info.value.reason == "start-failed"


def test_a_dockerd_that_never_answers_is_killed_after_the_timeout(no_running_engine, tmp_path):
    pid_file = tmp_path / "fake.pid"
    no_running_engine(f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                      "print('starting up, slowly', flush=True)\ntime.sleep(60)")
    started = time.monotonic()
    with pytest.raises(DockerUnavailable, match="(?s)did not answer within 1 s.*starting up, slowly"):
        ensure_engine(start_timeout=1)
    assert time.monotonic() - started < 10
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped


def test_stop_leaves_an_engine_we_did_not_start_alone():
    class Client:
        closed = False

        def close(self):
            self.closed = True

    handle = docker_engine.EngineHandle(Client())
    handle.stop()
    assert handle.client.closed and not handle.started




class _AnsweringClient:
    """Stands for the SDK client of an engine that answers (what the sharing logic needs of it: close)."""

    def close(self):
        pass


@pytest.fixture
def toolkit_dockerd(monkeypatch, tmp_path):
    """A running process called dockerd, recorded as the one the toolkit started, and an engine that
    answers: what a second tox environment finds while the first one's dockerd runs."""
    pytest.importorskip("docker", reason="docker (the Python package) not installed: pip install -e '.[interop]'")
    if os.geteuid() != 0:
        pytest.skip("only root shares a dockerd it started (run the tests as root)")
    for name, file in (("START_LOCK", "start.lock"), ("USERS_LOCK", "users.lock"), ("STARTED_FILE", "started")):
        monkeypatch.setattr(docker_engine, name, tmp_path / file)
    monkeypatch.setattr(docker_engine, "_try_client", lambda module, base_url: _AnsweringClient())
    script = tmp_path / "dockerd"
    ready = tmp_path / "ready"
    script.write_text(f"#!{sys.executable}\nimport pathlib, time\npathlib.Path({str(ready)!r}).touch()\n"
                      "time.sleep(120)\n")
    script.chmod(0o755)
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    process = subprocess.Popen([str(script)])
    # Running for real, as the dockerd that ensure_engine records is (it answered a ping first): right
    # after Popen returns, a busy kernel may not show the new command line in /proc yet
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the stand-in dockerd did not start"
        time.sleep(0.01)
    (tmp_path / "started").write_text(f"{process.pid} {workdir}\n")
    yield process
    process.kill()
    process.wait()


def _hold_users_lock(path: Path) -> subprocess.Popen:
    """Another process using the shared dockerd: it holds the users' lock shared until killed."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDONLY | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_SH)\nprint('held', flush=True)\ntime.sleep(120)\n")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_the_last_user_of_a_shared_dockerd_stops_it_whoever_started_it(toolkit_dockerd, tmp_path):
    first, second = ensure_engine(), ensure_engine()
    assert first.shared and second.shared
    other_process = _hold_users_lock(tmp_path / "users.lock")
    try:
        first.stop()
        second.stop()
        assert toolkit_dockerd.poll() is None, "stopped while another process still used it"
        assert (tmp_path / "started").exists()
    finally:
        other_process.kill()
        other_process.wait()
    last = ensure_engine()
    last.stop()
    assert toolkit_dockerd.wait(10) is not None  # SIGTERM from the last user
    assert not (tmp_path / "started").exists() and not (tmp_path / "workdir").exists()
    last.stop()  # twice is harmless


def test_an_engine_the_toolkit_did_not_start_is_never_stopped(toolkit_dockerd, tmp_path):
    (tmp_path / "started").unlink()  # a dockerd started by hand or by the system
    handle = ensure_engine()
    assert not handle.shared
    handle.stop()
    assert toolkit_dockerd.poll() is None and handle.stopped


def test_a_stale_record_of_a_dockerd_that_is_gone_is_forgotten(toolkit_dockerd, tmp_path):
    toolkit_dockerd.kill()
    toolkit_dockerd.wait()
    handle = ensure_engine()
    assert not handle.shared and not (tmp_path / "started").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount")
def test_remove_tree_never_deletes_through_a_mount(tmp_path):
    import subprocess

    from interop.images import remove_tree

    outside = tmp_path / "host-dev"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    tree = tmp_path / "build"
    (tree / "rootfs/dev").mkdir(parents=True)
    if subprocess.run(["mount", "--bind", str(outside), str(tree / "rootfs/dev")], capture_output=True).returncode:
        pytest.skip("bind mounts are not permitted here")
    assert (tree / "rootfs/dev/precious").exists()
    remove_tree(tree)
    assert not tree.exists()
    assert (outside / "precious").read_text() == "keep me"
