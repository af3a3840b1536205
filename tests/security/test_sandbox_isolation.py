"""What a server sees from INSIDE a real sandbox: the probe `probes/isolation.py` runs once per module
under the system python and reports; each test checks one property of its report."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sandbox.process import spawn
from sandbox.users import SandboxUser

if TYPE_CHECKING:  # conftest is loaded by pytest; import it only for the type checker
    from tests.security.conftest import SpecFactory

pytestmark = pytest.mark.root

PROBES = Path(__file__).parent / "probes"
SECRET_ENV = "GIG_TEST_GATEWAY_SECRET"
ALLOWED_ETC = {
    "alternatives",
    "group",
    "hosts",
    "ld.so.cache",
    "localtime",
    "nsswitch.conf",
    "passwd",
    "ssl",
}


@dataclass
class ProbeRun:
    report: dict[str, Any]
    returncode: int
    host_status: dict[int, dict[str, str]]  # pid -> /proc/<pid>/status fields read from the host
    stderr: bytes


def host_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


@pytest.fixture(scope="module")
async def probe(make_spec: SpecFactory, world_tmp: Path) -> ProbeRun:
    outside = world_tmp / "outside"
    outside.mkdir(mode=0o755)
    canary = outside / "canary.txt"
    canary.write_text("the sandbox must not see this\n")
    canary.chmod(0o644)
    data = world_tmp / "gateway-data"
    data.mkdir(mode=0o755)
    database = data / "gigmcp.db"
    database.write_bytes(b"SQLite format 3\x00 fake gateway database with secrets")
    database.chmod(0o644)  # readable by anyone on the host: only the mount layout hides it

    os.environ[SECRET_ENV] = "s3cr3t"  # the gateway's environment must not leak into the sandbox
    try:
        proc = await spawn(
            make_spec("/usr/bin/python3", "/app/isolation.py", str(canary), str(database), name="isolation")
        )
    finally:
        del os.environ[SECRET_ENV]
    statuses = {pid: host_status(pid) for pid in proc.descendant_pids()}
    out = await asyncio.wait_for(proc.stdout.read(), 30)
    returncode = await proc.wait()
    assert out, f"probe printed nothing; stderr: {proc.last_stderr()!r}"
    return ProbeRun(json.loads(out), returncode, statuses, proc.last_stderr())


def test_probe_completed(probe: ProbeRun) -> None:
    assert probe.returncode == 0, probe.stderr


def test_runs_as_sandbox_uid_on_host(probe: ProbeRun, sandbox_user: SandboxUser) -> None:
    assert len(probe.host_status) >= 2  # bwrap's pid 1 and the server
    for pid, status in probe.host_status.items():
        assert status["Uid"].split() == [str(sandbox_user.uid)] * 4, (pid, status["Uid"])
        assert status["Gid"].split() == [str(sandbox_user.gid)] * 4, (pid, status["Gid"])
        assert int(status["CapEff"], 16) == 0, (pid, status["CapEff"])


def test_unprivileged_inside(probe: ProbeRun, sandbox_user: SandboxUser) -> None:
    r = probe.report
    assert r["uid"] == r["euid"] == sandbox_user.uid != 0
    assert r["gid"] == sandbox_user.gid != 0
    assert 0 not in r["groups"]
    assert int(r["cap_eff"], 16) == int(r["cap_prm"], 16) == int(r["cap_bnd"], 16) == 0
    assert r["no_new_privs"] == "1"
    assert r["seccomp_mode"] == "2"  # filter mode


def test_own_pid_namespace(probe: ProbeRun) -> None:
    r = probe.report
    assert r["pid"] == 2  # bwrap's reaper is 1
    assert r["hostname"] == "sbtest"
    assert max(r["proc_pids"]) < 100  # none of the host's processes


def test_host_files_invisible(probe: ProbeRun) -> None:
    r = probe.report
    assert r["canary"] == "ENOENT"
    assert r["database"] == "ENOENT"
    assert r["shadow"] == "ENOENT"
    assert r["root_home"] is False
    assert set(r["etc_entries"]) <= ALLOWED_ETC, r["etc_entries"]
    assert set(r["root_entries"]) <= {
        "app",
        "bin",
        "dev",
        "etc",
        "home",
        "lib",
        "lib64",
        "opt",
        "proc",
        "sbin",
        "tmp",
        "usr",
    }


def test_environment_is_clean(probe: ProbeRun) -> None:
    keys = set(probe.report["env_keys"])
    assert SECRET_ENV not in keys
    assert keys <= {"HOME", "LANG", "PATH", "TMPDIR", "PWD", "LC_CTYPE"}, keys


def test_only_loopback(probe: ProbeRun) -> None:
    assert probe.report["interfaces"] == ["lo"]
    assert probe.report["loopback"] is True  # and it is up and usable


def test_read_only_mounts(probe: ProbeRun) -> None:
    r = probe.report
    assert r["usr_write"] == "EROFS"
    assert r["usr_bin_write"] == "EROFS"
    assert r["app_write"] == "EROFS"  # the dir is owned by the sandbox uid: only the mount forbids it
    assert r["tmp_write"] == "writable"
    assert r["home_write"] == "writable"


def test_no_nested_user_namespace(probe: ProbeRun) -> None:
    r = probe.report
    assert r["unshare_cli"]["returncode"] != 0, r["unshare_cli"]
    assert r["clone_newuser"]["errno"] == "EPERM", r["clone_newuser"]
    assert r["unshare_newuser"]["errno"] == "EPERM", r["unshare_newuser"]


@pytest.mark.parametrize(
    "check",
    [
        "mount",
        "setns",
        "io_uring_setup",
        "bpf",
        "keyctl",
        "perf_event_open",
        "userfaultfd",
        "open_by_handle_at",
        "kcmp",
        "ptrace_sibling",
        "personality_no_aslr",
        "tiocsti",
        "tiocsti_high_bits",
    ],
)
def test_denied_syscalls(probe: ProbeRun, check: str) -> None:
    result = probe.report[check]
    assert result["ret"] == -1 and result["errno"] == "EPERM", result


def test_clone3_is_enosys_and_threads_still_work(probe: ProbeRun) -> None:
    r = probe.report
    assert r["clone3"]["errno"] == "ENOSYS", r["clone3"]
    assert r["threads_and_subprocess"] == {"threads": True, "subprocess": "child ok"}
    assert r["mmap_ok"] is True


def test_personality_query_allowed(probe: ProbeRun) -> None:
    r = probe.report
    assert r["personality_query"]["ret"] == 0, r["personality_query"]
    assert r["personality_linux"]["ret"] == 0, r["personality_linux"]


def _host_runs_i386_syscalls() -> bool:
    code = (PROBES / "isolation.py").read_text().split('FOREIGN_ARCH = """')[1].split('"""')[0]
    out = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, timeout=10)
    return out.returncode == 0 and out.stdout.strip().lstrip("-").isdigit()


def test_foreign_architecture_killed(probe: ProbeRun) -> None:
    if not _host_runs_i386_syscalls():
        reason = "kernel: no IA32 emulation, i386 system calls cannot be issued at all"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    assert probe.report["foreign_arch"]["returncode"] == -signal.SIGSYS, probe.report["foreign_arch"]


PARENT = textwrap.dedent(
    """
    import asyncio, json, sys
    from sandbox.process import spawn
    from sandbox.spec import SandboxSpec

    async def main():
        spec = SandboxSpec(name="orphan", argv=("/bin/sleep", "60"), uid=int(sys.argv[1]),
                           gid=int(sys.argv[2]), cwd="/tmp")
        proc = await spawn(spec)
        paths = list(proc.cgroup.paths) if proc.cgroup else []
        print(json.dumps({"bwrap": proc.pid, "pids": proc.descendant_pids(), "cgroups": paths}), flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


def _alive(pid: int) -> bool:
    """True unless the process is gone or a zombie (zombies run nothing; PID 1 may reap them late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_sandbox_dies_with_its_parent(sandbox_user: SandboxUser) -> None:
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(sandbox_user.uid), str(sandbox_user.gid)],
        stdout=subprocess.PIPE,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert parent.stdout is not None
        info = json.loads(parent.stdout.readline())
        victims = [info["bwrap"], *info["pids"]]
        assert len(info["pids"]) >= 2 and all(_alive(pid) for pid in victims)
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and any(_alive(pid) for pid in victims):
            time.sleep(0.02)
        assert not [pid for pid in victims if _alive(pid)], "sandbox processes outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        # the parent died before it could clean up: remove its (now empty) cgroups
        for path in reversed(info.get("cgroups", []) if "info" in locals() else []):
            for _ in range(100):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
