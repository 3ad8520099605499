"""The SSH transport against real OpenSSH sshd: host keys, errors, and the SFTP push steps.

Every host of the fixture is confined to ``internal-sftp`` (ForceCommand), so each push
here also shows that no remote shell is needed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from inotify_simple import INotify
from inotify_simple import flags as inotify_flags
from support.sshd import SshdHost, generate_ed25519_key

from controller.errors import (
    AuthenticationFailed,
    HostKeyRefused,
    HostUnreachable,
    RemoteFileError,
)
from controller.inventory import Host
from controller.push_plan import FileAction
from controller.ssh_target import SshTarget
from hotconf.atomic import TEMP_MARKER
from hotconf.backups import BackupStore
from hotconf.version import content_version

pytestmark = pytest.mark.integration

OLD = {"config.yaml": b"backend:\n  server_port: 8001\n", "settings.json": b'{"a": 1}\n'}
NEW = {"config.yaml": b"backend:\n  server_port: 8002\n", "settings.json": b'{"a": 2}\n'}


def inventory_host(server: SshdHost, **changes: Any) -> Host:
    fields: dict[str, Any] = {
        "name": server.name,
        "address": server.address,
        "port": server.port,
        "user": server.user,
        "key_file": server.client_key,
        "config_dir": PurePosixPath(str(server.config_dir)),
        "known_hosts": server.known_hosts,
    }
    fields.update(changes)
    return Host(**fields)


def place(directory: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (directory / name).write_bytes(data)


def on_disk(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes()
            for name in ("config.yaml", "settings.json") if (directory / name).exists()}


def tree_state(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``directory`` with its inode, mtime and mode."""
    state = {}
    for path in sorted(directory.rglob("*")):
        info = path.lstat()
        state[str(path.relative_to(directory))] = (info.st_ino, info.st_mtime_ns, info.st_mode)
    return state


@pytest.fixture
async def target(ssh_host: SshdHost) -> AsyncIterator[SshTarget]:
    async with SshTarget(inventory_host(ssh_host)) as connected:
        yield connected


class TestHostKeys:
    async def test_known_key_connects(self, ssh_host: SshdHost) -> None:
        async with SshTarget(inventory_host(ssh_host)) as target:
            assert await target.read_files() == {}

    async def test_unknown_key_is_refused_with_fingerprint_and_trust_command(
        self, ssh_host: SshdHost, tmp_path: Path
    ) -> None:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text("")
        host = inventory_host(ssh_host, known_hosts=known_hosts)

        with pytest.raises(HostKeyRefused) as refused:
            await SshTarget(host).connect()

        error = refused.value
        assert not error.changed
        assert error.fingerprint == ssh_host.fingerprint
        message = str(error)
        assert message.startswith(f"vm1 (127.0.0.1:{ssh_host.port}): unknown host key")
        assert ssh_host.fingerprint in message
        command = f"ssh-keyscan -p {ssh_host.port} 127.0.0.1 >> {known_hosts}"
        assert command in message
        assert known_hosts.read_text() == ""

        # The command it prints is the fix: run it and the host connects.
        subprocess.run(command, shell=True, check=True, capture_output=True, timeout=30)
        async with SshTarget(host) as target:
            assert await target.read_files() == {}

    async def test_missing_known_hosts_file_trusts_nobody(
        self, ssh_host: SshdHost, tmp_path: Path
    ) -> None:
        known_hosts = tmp_path / "absent" / "known_hosts"

        with pytest.raises(HostKeyRefused, match="unknown host key"):
            await SshTarget(inventory_host(ssh_host, known_hosts=known_hosts)).connect()

        assert not known_hosts.exists()

    @pytest.mark.parametrize("accept_new", [False, True])
    async def test_changed_key_is_refused_even_with_accept_new(
        self, ssh_host: SshdHost, accept_new: bool
    ) -> None:
        listed = ssh_host.known_hosts.read_text()
        new_fingerprint = ssh_host.replace_host_key()

        with pytest.raises(HostKeyRefused) as refused:
            await SshTarget(inventory_host(ssh_host), accept_new_host_keys=accept_new).connect()

        error = refused.value
        assert error.changed
        assert error.fingerprint == new_fingerprint
        assert "HOST KEY CHANGED" in str(error)
        assert f"ssh-keygen -R '[127.0.0.1]:{ssh_host.port}'" in str(error)
        assert ssh_host.known_hosts.read_text() == listed

    async def test_accept_new_records_the_key_then_it_is_known(
        self, ssh_host: SshdHost, tmp_path: Path
    ) -> None:
        known_hosts = tmp_path / "ssh" / "known_hosts"
        host = inventory_host(ssh_host, known_hosts=known_hosts)

        async with SshTarget(host, accept_new_host_keys=True) as target:
            await target.read_files()

        key_type, key_blob = ssh_host.host_public_key.split()[:2]
        assert known_hosts.read_text() == f"[127.0.0.1]:{ssh_host.port} {key_type} {key_blob}\n"
        assert known_hosts.stat().st_mode & 0o777 == 0o600
        async with SshTarget(host) as target:
            assert await target.read_files() == {}

    async def test_accept_new_appends_after_a_last_line_without_newline(
        self, ssh_fleet: Any, tmp_path: Path
    ) -> None:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(ssh_fleet["vm1"].known_hosts_line())
        host = inventory_host(ssh_fleet["vm2"], known_hosts=known_hosts)

        async with SshTarget(host, accept_new_host_keys=True):
            pass

        lines = known_hosts.read_text().splitlines()
        assert lines == [ssh_fleet["vm1"].known_hosts_line(), ssh_fleet["vm2"].known_hosts_line()]


class TestConnectionErrors:
    async def test_stopped_sshd_is_unreachable_with_host_address_and_reason(
        self, ssh_host: SshdHost
    ) -> None:
        ssh_host.stop()

        with pytest.raises(HostUnreachable) as caught:
            await SshTarget(inventory_host(ssh_host)).connect()

        assert caught.value.unreachable
        assert (caught.value.host, caught.value.port) == ("vm1", ssh_host.port)
        assert str(caught.value) == (
            f"vm1 (127.0.0.1:{ssh_host.port}): unreachable: connection refused "
            "(is sshd running, and on this port?)"
        )

    async def test_a_key_the_host_does_not_know_fails_authentication(
        self, ssh_host: SshdHost, tmp_path: Path
    ) -> None:
        stranger = tmp_path / "stranger"
        generate_ed25519_key(stranger, "stranger")

        with pytest.raises(AuthenticationFailed) as caught:
            await SshTarget(inventory_host(ssh_host, key_file=stranger)).connect()

        assert not caught.value.unreachable
        assert f"authentication as {ssh_host.user} failed" in str(caught.value)
        assert str(stranger) in str(caught.value)

    async def test_missing_key_file_is_named(self, ssh_host: SshdHost, tmp_path: Path) -> None:
        missing = tmp_path / "no-such-key"

        with pytest.raises(AuthenticationFailed, match=f"key file {missing} cannot be read"):
            await SshTarget(inventory_host(ssh_host, key_file=missing)).connect()

    async def test_passphrase_protected_key_says_what_to_do(
        self, ssh_host: SshdHost, tmp_path: Path
    ) -> None:
        locked = tmp_path / "locked"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret-phrase", "-f",
                        str(locked)], check=True, capture_output=True)

        with pytest.raises(AuthenticationFailed, match="passphrase"):
            await SshTarget(inventory_host(ssh_host, key_file=locked)).connect()


class TestPush:
    async def test_push_applies_and_keeps_the_old_files_as_a_backup(
        self, ssh_host: SshdHost, target: SshTarget
    ) -> None:
        place(ssh_host.config_dir, OLD)

        plan = await target.plan(NEW)
        applied = await target.apply(plan)

        assert on_disk(ssh_host.config_dir) == NEW
        assert applied.written == ("settings.json", "config.yaml")
        assert plan.current_version == content_version(OLD)
        assert plan.wanted_version == content_version(NEW)
        # The host's own BackupStore reads the generation the push took.
        store = BackupStore(ssh_host.config_dir)
        newest = store.newest()
        assert newest is not None and newest.id == applied.backup_id
        assert newest.version == content_version(OLD)
        assert store.read(newest) == OLD

    async def test_backup_is_a_hard_link_of_the_replaced_file(
        self, ssh_host: SshdHost, target: SshTarget
    ) -> None:
        place(ssh_host.config_dir, OLD)
        old_inode = (ssh_host.config_dir / "config.yaml").stat().st_ino

        applied = await target.apply(await target.plan(NEW))

        backup = ssh_host.config_dir / ".hotconf" / "backups" / f"config.yaml.{applied.backup_id}"
        assert backup.stat().st_ino == old_inode

    async def test_identical_push_writes_nothing(
        self, ssh_host: SshdHost, target: SshTarget
    ) -> None:
        place(ssh_host.config_dir, OLD)
        await target.write_files(NEW)
        before = tree_state(ssh_host.config_dir)

        plan = await target.plan(NEW)
        applied = await target.apply(plan)

        assert plan.in_sync
        assert (applied.written, applied.removed, applied.backup_id) == ((), (), None)
        assert tree_state(ssh_host.config_dir) == before

    async def test_identical_push_over_a_fresh_connection_writes_nothing(
        self, ssh_host: SshdHost, target: SshTarget
    ) -> None:
        await target.write_files(NEW)
        before = tree_state(ssh_host.config_dir)

        async with SshTarget(inventory_host(ssh_host)) as again:
            assert await again.read_files() == NEW
            await again.write_files(NEW)

        assert tree_state(ssh_host.config_dir) == before

    async def test_only_the_changed_file_is_rewritten(
        self, ssh_host: SshdHost, target: SshTarget
    ) -> None:
        place(ssh_host.config_dir, OLD)
        base = (ssh_host.config_dir / "config.yaml").stat()

        await target.write_files({**OLD, "settings.json": b'{"a": 3}\n'})

        after = (ssh_host.config_dir / "config.yaml").stat()
        assert (after.st_ino, after.st_mtime_ns) == (base.st_ino, base.st_mtime_ns)
        assert (ssh_host.config_dir / "settings.json").read_bytes() == b'{"a": 3}\n'

    async def test_settings_json_presence_is_mirrored_both_ways(
        self, ssh_host: SshdHost, target: SshTarget
    ) -> None:
        place(ssh_host.config_dir, OLD)
        base_only = {"config.yaml": NEW["config.yaml"]}

        removal = await target.plan(base_only)
        applied = await target.apply(removal)

        assert [c.action for c in removal.changes] == [FileAction.REMOVE, FileAction.REPLACE]
        assert applied.removed == ("settings.json",)
        assert on_disk(ssh_host.config_dir) == base_only
        assert BackupStore(ssh_host.config_dir).read(applied.backup_id or "") == OLD

        creation = await target.plan(NEW)
        await target.apply(creation)

        assert [c.action for c in creation.changes] == [FileAction.CREATE]
        assert on_disk(ssh_host.config_dir) == NEW

    async def test_mode_and_owner_are_kept_and_new_files_get_0644(
        self, ssh_host: SshdHost, target: SshTarget
    ) -> None:
        config = ssh_host.config_dir / "config.yaml"
        config.write_bytes(OLD["config.yaml"])
        config.chmod(0o640)
        os.chown(config, 4321, 4321)

        await target.write_files(NEW)

        info = config.stat()
        assert (info.st_mode & 0o777, info.st_uid, info.st_gid) == (0o640, 4321, 4321)
        assert (ssh_host.config_dir / "settings.json").stat().st_mode & 0o777 == 0o644

    async def test_check_reports_changes_and_touches_nothing(
        self, ssh_host: SshdHost, target: SshTarget
    ) -> None:
        place(ssh_host.config_dir, OLD)
        before = tree_state(ssh_host.config_dir)

        plan = await target.remote.plan({"config.yaml": NEW["config.yaml"]})

        assert [change.describe() for change in plan.changes] == [
            f"remove settings.json ({len(OLD['settings.json'])} bytes, kept in the backup)",
            f"replace config.yaml ({len(OLD['config.yaml'])} -> {len(NEW['config.yaml'])} bytes)",
        ]
        assert tree_state(ssh_host.config_dir) == before

    async def test_a_symlinked_config_is_replaced_where_it_points(
        self, ssh_host: SshdHost, target: SshTarget, tmp_path: Path
    ) -> None:
        real = tmp_path / "real-config.yaml"
        real.write_bytes(OLD["config.yaml"])
        (ssh_host.config_dir / "config.yaml").symlink_to(real)

        await target.write_files({"config.yaml": NEW["config.yaml"]})

        assert (ssh_host.config_dir / "config.yaml").is_symlink()
        assert real.read_bytes() == NEW["config.yaml"]

    async def test_a_missing_config_dir_is_created(
        self, ssh_host: SshdHost, target: SshTarget
    ) -> None:
        ssh_host.config_dir.rmdir()

        await target.write_files(NEW)

        assert on_disk(ssh_host.config_dir) == NEW

    async def test_backups_beyond_keep_are_pruned(
        self, ssh_host: SshdHost, target: SshTarget
    ) -> None:
        target.remote.keep = 2
        for port in range(8001, 8006):
            await target.write_files({"config.yaml": f"backend: {{port: {port}}}\n".encode()})

        generations = BackupStore(ssh_host.config_dir).generations()

        kept = [BackupStore(ssh_host.config_dir).read(g)["config.yaml"] for g in generations]
        assert kept == [b"backend: {port: 8004}\n", b"backend: {port: 8003}\n"]
        names = os.listdir(ssh_host.config_dir / ".hotconf" / "backups")
        assert len(names) == 4  # two generations: a data file and a manifest each

    async def test_status_json_is_read_back(
        self, ssh_host: SshdHost, target: SshTarget
    ) -> None:
        assert await target.read_status() is None

        state_dir = ssh_host.config_dir / ".hotconf"
        state_dir.mkdir()
        (state_dir / "status.json").write_text('{"host": "vm1", "state": "applied"}')
        assert await target.read_status() == {"host": "vm1", "state": "applied"}

        (state_dir / "status.json").write_text("{torn")
        assert await target.read_status() is None


class TestInterruptedPush:
    async def test_a_dropped_connection_while_reading_is_one_clear_error(
        self, ssh_host: SshdHost, target: SshTarget
    ) -> None:
        place(ssh_host.config_dir, OLD)

        ssh_host.kill_sessions()

        with pytest.raises(RemoteFileError) as caught:
            await target.read_files()
        assert str(caught.value).startswith(f"vm1 (127.0.0.1:{ssh_host.port}): cannot read ")
        assert "the connection was lost" in str(caught.value)
        assert ssh_host.running, "only the session was killed; the host still serves"


    async def test_sshd_killed_mid_upload_leaves_the_old_file_whole(
        self, ssh_host: SshdHost
    ) -> None:
        place(ssh_host.config_dir, {"config.yaml": OLD["config.yaml"]})
        # Large enough that the upload is still running when the kill lands.
        huge = {"config.yaml": b"# padding\n" * 6_400_000}
        target = SshTarget(inventory_host(ssh_host))
        await target.connect()
        try:
            with INotify() as watcher:
                watcher.add_watch(ssh_host.config_dir, inotify_flags.MODIFY)
                upload = asyncio.create_task(target.write_files(huge))
                temp = await first_write_to_a_temp(watcher)
                ssh_host.kill()

                with pytest.raises(RemoteFileError) as caught:
                    await upload
        finally:
            await target.close()

        assert "the connection was lost" in str(caught.value)
        assert "Files already changed: none" in str(caught.value)
        assert (ssh_host.config_dir / "config.yaml").read_bytes() == OLD["config.yaml"]
        leftover = ssh_host.config_dir / temp
        assert 0 < leftover.stat().st_size < len(huge["config.yaml"])

        # Back up: a new push lands, and sweeps the temp once it is old enough to be stale.
        an_hour_and_more_ago = time.time() - 3700
        os.utime(leftover, (an_hour_and_more_ago, an_hour_and_more_ago))
        ssh_host.start()
        async with SshTarget(inventory_host(ssh_host)) as again:
            await again.write_files(NEW)
        assert on_disk(ssh_host.config_dir) == NEW
        assert not leftover.exists()


async def first_write_to_a_temp(watcher: INotify) -> str:
    """Wait (event-driven) for the first write to a push temp; return its name."""
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(watcher.fileno(), readable.set)
    try:
        async with asyncio.timeout(30):
            while True:
                await readable.wait()
                readable.clear()
                for event in watcher.read(timeout=0):
                    if TEMP_MARKER in event.name:
                        return str(event.name)
    finally:
        loop.remove_reader(watcher.fileno())
