"""The Docker engine for the tests that need one (mosquitto images, corpus replays, side-by-side bytes).

`engine_or_skip()` starts or finds the engine and, when there is none, skips with the command that brings it,
or fails when MQTT_TOOLKIT_REQUIRE_DOCKER is set (CI: a missing engine must not pass as a skip).
"""

from __future__ import annotations

import os
import warnings

import pytest

SKIP_MESSAGE = "Docker engine not available: apt-get install docker.io (run as root so the tests can start dockerd)"


def engine_or_skip():
    """The running engine (interop.docker_engine's handle); skips or fails the calling test without one."""
    try:
        from interop.docker_engine import DockerUnavailable, ensure_engine
    except ImportError as exc:
        pytest.skip(f"the interop extra is not installed: pip install -e '.[interop]' ({exc})")
    try:
        return ensure_engine()
    except DockerUnavailable as exc:
        if os.environ.get("MQTT_TOOLKIT_REQUIRE_DOCKER"):
            pytest.fail(f"MQTT_TOOLKIT_REQUIRE_DOCKER is set but: {exc}", pytrace=False)
        if exc.reason == "sdk-missing":
            pytest.skip(str(exc))
        if exc.reason == "start-failed":  # installed but broken: say why, beside the standard skip
            warnings.warn(f"dockerd could not be started: {exc}", stacklevel=1)
        pytest.skip(SKIP_MESSAGE)


def engine_with_every_image():
    """engine_or_skip(), with every mosquitto image of interop.images built (now, if it is missing)."""
    from interop.images import IMAGES, build_image

    engine = engine_or_skip()
    for spec in IMAGES.values():
        build_image(spec.suite, engine=engine)
    return engine
