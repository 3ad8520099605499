"""A filesystem with one-second timestamps, for the same-tick polling cases.

Today's local filesystems give a write that follows a stat a fresh fine-grained
timestamp, so two same-size writes "within one mtime tick" only happen on coarse
ones: ext2 with 128-byte inodes (seconds), FAT, many network filesystems, older
kernels. The fixture loop-mounts a small ext2 image; it needs root.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def coarse_filesystem(tmp_path: Path) -> Iterator[Path]:
    """An empty directory on a loop-mounted ext2 with one-second timestamps.

    Skips the test where the image cannot be made or mounted.
    """
    image, mount_point = tmp_path / "ext2.img", tmp_path / "coarse"
    mount_point.mkdir()
    with open(image, "wb") as handle:
        handle.truncate(8 * 1024 * 1024)
    made = subprocess.run(
        ["mkfs.ext2", "-q", "-F", "-I", "128", str(image)], capture_output=True, check=False
    )
    mounted = made.returncode == 0 and subprocess.run(
        ["mount", "-o", "loop", str(image), str(mount_point)], capture_output=True, check=False
    ).returncode == 0
    if not mounted:
        pytest.skip("needs mkfs.ext2 and the right to loop-mount an image (root)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
