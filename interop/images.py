"""Docker images of real mosquitto versions, built locally from Debian's packages.

No image registry is needed: `build_image(suite)` runs `debootstrap --variant=minbase --include=mosquitto,mosquitto-clients`
for a Debian suite into a temporary directory, trims what a broker does not need (apt lists and caches,
man pages, documentation other than copyright files, translations), and imports the tree as an image
(`docker import`) labelled with the suite and the mosquitto version found in it. Each suite pins one
mosquitto release, so the three images let the suite and the interop matrix compare them:

    bookworm  mosquitto 2.0.11   mqtt-toolkit/mosquitto:2.0.11
    trixie    mosquitto 2.0.21   mqtt-toolkit/mosquitto:2.0.21
    sid       mosquitto 2.1.2    mqtt-toolkit/mosquitto:2.1.2

sid moves: when it ships another mosquitto, the build stops with a message naming the version it found
(nothing is tagged), and the table below needs the new version.

Needs root (debootstrap and chroot), `debootstrap`, a Docker engine (see docker_engine), and
deb.debian.org. Only one debootstrap runs at a time on a machine (a lock file serializes them).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .docker_engine import EngineHandle, ensure_engine

MIRROR = os.environ.get("MQTT_TOOLKIT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
REPOSITORY = "mqtt-toolkit/mosquitto"
LABEL_PREFIX = "org.mqtt-toolkit."
LABEL_SUITE = LABEL_PREFIX + "debian-suite"
LABEL_VERSION = LABEL_PREFIX + "mosquitto-version"
LABEL_PACKAGE = LABEL_PREFIX + "mosquitto-package"
LABEL_BUILT = LABEL_PREFIX + "built"
LABEL_CLIENTS = LABEL_PREFIX + "mosquitto-clients"  # "yes" on images that have mosquitto_pub / mosquitto_sub
DEBOOTSTRAP_LOCK = Path(tempfile.gettempdir()) / "mqtt-toolkit-debootstrap.lock"


@dataclass(frozen=True)
class ImageSpec:
    suite: str
    mosquitto_version: str  # the upstream version the suite is expected to ship

    @property
    def tag(self) -> str:
        return f"{REPOSITORY}:{self.mosquitto_version}"


IMAGES: dict[str, ImageSpec] = {spec.suite: spec for spec in (
    ImageSpec("bookworm", "2.0.11"),
    ImageSpec("trixie", "2.0.21"),
    ImageSpec("sid", "2.1.2"),
)}


class ImageBuildError(RuntimeError):
    """A build failed; the message says why and what to do."""


@dataclass
class BuildResult:
    suite: str
    tag: str
    mosquitto_version: str
    package_version: str
    seconds: float
    size_bytes: int
    skipped: bool  # True: the image existed already and nothing was built


def spec_for(name: str) -> ImageSpec:
    """The spec for a suite name ("trixie"), a version ("2.0.21", "mosquitto-2.0.21") or a tag."""
    for spec in IMAGES.values():
        if name in (spec.suite, spec.mosquitto_version, f"mosquitto-{spec.mosquitto_version}", spec.tag):
            return spec
    known = ", ".join(f"{s.suite} ({s.mosquitto_version})" for s in IMAGES.values())
    raise KeyError(f"unknown image {name!r}; known: {known}")


def find_image(engine: EngineHandle, tag: str):
    """The docker Image for `tag`, or None."""
    import docker.errors

    try:
        return engine.client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def _say(line: str, out: Callable[[str], None] | None) -> None:
    (out or (lambda text: print(text, flush=True)))(line)


# ------------------------------------------------------------------------------------ reading versions


_VERSION_LINE = re.compile(r"mosquitto version (\d+\.\d+\.\d+\S*)")


def package_version(root: Path, package: str = "mosquitto") -> str | None:
    """The Debian version of `package` from the tree's dpkg status file (e.g. "2.0.21-1")."""
    status = root / "var/lib/dpkg/status"
    try:
        text = status.read_text(errors="replace")
    except OSError:
        return None
    for stanza in text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", stanza, re.MULTILINE))
        if fields.get("Package") == package and "installed" in fields.get("Status", "").split():
            return fields.get("Version")
    return None


def upstream_of(debian_version: str) -> str:
    """"2.0.21-1+b2" -> "2.0.21"; "1:2.0.11-1.2+deb12u1" -> "2.0.11"."""
    version = debian_version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


def mosquitto_version(root: Path) -> tuple[str, str]:
    """(upstream version, Debian package version) of the mosquitto in the tree at `root`.

    The upstream version comes from the binary itself (`mosquitto -h`, run inside the tree with chroot,
    since the suite's libraries may be newer than the host's); the dpkg status file is the fallback.
    """
    package = package_version(root)
    if package is None:
        raise ImageBuildError(f"mosquitto is not installed in {root} (no dpkg status entry)")
    found = None
    try:
        result = subprocess.run(["chroot", str(root), "/usr/sbin/mosquitto", "-h"], capture_output=True,
                                text=True, timeout=30)
        match = _VERSION_LINE.search(result.stdout + result.stderr)
        found = match.group(1) if match else None
    except (OSError, subprocess.SubprocessError):
        pass
    return found or upstream_of(package), package


# -------------------------------------------------------------------------------------------- building


_TRIM = ["var/lib/apt/lists", "var/cache/apt", "var/cache/debconf/templates.dat-old",
         "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian", "usr/share/linda"]


def trim_tree(root: Path) -> None:
    """Remove from a debootstrapped tree what a broker container never reads."""
    for relative in _TRIM:
        path = root / relative
        if path.is_dir() and not path.is_symlink():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                elif child.name != "lock":
                    child.unlink()
        elif path.exists():
            path.unlink()
    (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    doc = root / "usr/share/doc"
    if doc.is_dir():  # keep the copyright files: they travel with the binaries
        for path in sorted(doc.rglob("*"), reverse=True):
            if path.is_symlink() or path.is_file():
                if path.name != "copyright":
                    path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` (from /proc/self/mountinfo), deepest first."""
    prefix = str(path.resolve())
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_tree(path: Path, out=None) -> None:
    """Remove a build directory, but never through a mount: debootstrap mounts /proc and /sys (and, inside
    a container, binds /dev) into the tree, and an interrupted run can leave them mounted. Deleting
    through such a mount would delete the host's files, so they are unmounted first, and if any stays
    mounted the directory is left alone."""
    for point in _mounts_under(path):
        subprocess.run(["umount", "--lazy", point], capture_output=True)
    left = _mounts_under(path)
    if left:
        _say(f"warning: not removing {path}: still mounted: {', '.join(left)}", out)
        return
    shutil.rmtree(path, ignore_errors=True)


def _tree_size(root: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


_PER_PACKAGE_LINE = re.compile(r"^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) [^ ]+\.\.\.$")


def _run_debootstrap(suite: str, root: Path, log_path: Path, out) -> None:
    # mosquitto-clients: the interop matrix also runs the mosquitto_pub / mosquitto_sub of each release
    command = ["debootstrap", "--variant=minbase", "--include=mosquitto,mosquitto-clients", suite, str(root), MIRROR]
    _say(f"[{suite}] $ {' '.join(command)}", out)
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace")
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            line = line.rstrip()
            # The phase lines ("I: Unpacking the base system...") and every warning or error;
            # not the hundreds of per-package lines, which stay in the log.
            per_package = _PER_PACKAGE_LINE.match(line)
            if (line.endswith("...") and not per_package) or line.endswith("successfully.") \
                    or line.startswith(("W:", "E:")):
                _say(f"[{suite}]   {line}", out)
        code = process.wait()
    if code != 0:
        tail = "\n".join("    " + line for line in log_path.read_text(errors="replace").splitlines()[-15:])
        raise ImageBuildError(f"debootstrap {suite} failed (exit status {code}); the end of its output:\n{tail}")


def build_image(suite: str, force: bool = False, engine: EngineHandle | None = None,
                out: Callable[[str], None] | None = None) -> BuildResult:
    """Build (or find) the image for `suite` and return what was done.

    Skips the build when the tag exists already, unless `force`. Progress goes to `out` (default: print).
    """
    spec = spec_for(suite)
    own_engine = engine is None
    engine = engine or ensure_engine()
    try:
        existing = find_image(engine, spec.tag)
        if existing is not None and not force:
            labels = existing.labels or {}
            return BuildResult(spec.suite, spec.tag, labels.get(LABEL_VERSION, "?"), labels.get(LABEL_PACKAGE, "?"),
                               0.0, int(existing.attrs.get("Size", 0)), skipped=True)
        return _build(spec, engine, out)
    finally:
        if own_engine:
            engine.stop()


def _build(spec: ImageSpec, engine: EngineHandle, out) -> BuildResult:
    for tool in ("debootstrap", "chroot", "tar"):
        if shutil.which(tool) is None:
            hint = "apt-get install debootstrap" if tool == "debootstrap" else f"install {tool}"
            raise ImageBuildError(f"building images needs {tool}: {hint}")
    if os.geteuid() != 0:
        raise ImageBuildError("building images needs root (debootstrap installs packages into a chroot)")
    started = time.monotonic()
    _say(f"[{spec.suite}] building {spec.tag} from Debian {spec.suite} (expect mosquitto {spec.mosquitto_version}); "
         f"this takes a minute or more", out)
    work = Path(tempfile.mkdtemp(prefix=f"mqtt-toolkit-{spec.suite}-"))
    try:
        root = work / "rootfs"
        with open(DEBOOTSTRAP_LOCK, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                _say(f"[{spec.suite}] another debootstrap is running; waiting for it to finish", out)
                fcntl.flock(lock, fcntl.LOCK_EX)
            _run_debootstrap(spec.suite, root, work / "debootstrap.log", out)
        found, package = mosquitto_version(root)
        _say(f"[{spec.suite}] debootstrap done in {time.monotonic() - started:.0f} s: mosquitto {found} "
             f"(Debian package {package}), tree {_tree_size(root) / 2**20:.0f} MiB", out)
        if found != spec.mosquitto_version:
            raise ImageBuildError(
                f"Debian {spec.suite} now ships mosquitto {found} (package {package}), not "
                f"{spec.mosquitto_version}; update IMAGES in interop/images.py (nothing was tagged)")
        trim_tree(root)
        _say(f"[{spec.suite}] trimmed to {_tree_size(root) / 2**20:.0f} MiB; packing and importing", out)
        archive = work / "rootfs.tar"
        # --numeric-owner: the tree's uids (e.g. the mosquitto user's) must not be mapped through the host's names
        packed = subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(archive), "."],
                                capture_output=True, text=True, errors="replace")
        if packed.returncode != 0:
            raise ImageBuildError(f"tar of the {spec.suite} tree failed: {packed.stderr.strip()[-1000:]}")
        labels = {LABEL_SUITE: spec.suite, LABEL_VERSION: found, LABEL_PACKAGE: package,
                  LABEL_BUILT: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  LABEL_CLIENTS: "yes" if (root / "usr/bin/mosquitto_sub").exists() else "no"}
        changes = [f'LABEL {key}="{value}"' for key, value in labels.items()]
        changes += ["EXPOSE 1883", 'CMD ["/usr/sbin/mosquitto", "-c", "/etc/mosquitto/mosquitto.conf"]']
        repository, tag = spec.tag.rsplit(":", 1)
        try:
            engine.client.api.import_image(src=str(archive), repository=repository, tag=tag, changes=changes)
        except Exception as exc:  # noqa: BLE001 - the SDK's APIError and connection errors alike
            raise ImageBuildError(f"docker import of {spec.tag} failed: {exc}") from None
    finally:
        remove_tree(work, out)
    image = find_image(engine, spec.tag)
    if image is None:
        raise ImageBuildError(f"docker import reported success but {spec.tag} is not there")
    seconds = time.monotonic() - started
    size = int(image.attrs.get("Size", 0))
    _say(f"[{spec.suite}] built {spec.tag} in {seconds:.0f} s, {size / 2**20:.0f} MiB", out)
    return BuildResult(spec.suite, spec.tag, found, package, seconds, size, skipped=False)


def ensure_image(suite: str, engine: EngineHandle, out: Callable[[str], None] | None = None) -> str:
    """The tag for `suite`, building the image first if it is missing."""
    return build_image(suite, engine=engine, out=out).tag


def describe_images(engine: EngineHandle | None) -> list[dict]:
    """One row per known image: the table, plus what the engine has (None: engine not available)."""
    rows = []
    for spec in IMAGES.values():
        row = {"suite": spec.suite, "tag": spec.tag, "expected": spec.mosquitto_version,
               "built": None, "found": "", "package": "", "size": None, "created": ""}
        if engine is not None:
            image = find_image(engine, spec.tag)
            row["built"] = image is not None
            if image is not None:
                labels = image.labels or {}
                row.update(found=labels.get(LABEL_VERSION, "?"), package=labels.get(LABEL_PACKAGE, "?"),
                           size=int(image.attrs.get("Size", 0)), created=labels.get(LABEL_BUILT, ""))
        rows.append(row)
    return rows

