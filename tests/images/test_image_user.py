"""Both images: the user they run as."""

from __future__ import annotations

import pytest
from docker_support import Images, docker


@pytest.mark.parametrize("image", ["operator", "worker"])
def test_image_runs_as_the_numeric_non_root_user_1000(images: Images, image: str) -> None:
    """Both images declare the numeric user 1000:1000, which a pod's runAsNonRoot can check."""
    name = getattr(images, image)
    declared = docker("image", "inspect", "--format", "{{.Config.User}}", name).stdout.strip()
    effective = docker("run", "--rm", "--network", "none", "--entrypoint", "id", name).stdout

    assert declared == "1000:1000"
    assert effective.startswith("uid=1000(phonefleet) gid=1000(phonefleet)")
