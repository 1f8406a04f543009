"""Starting ffmpeg/ffprobe children: confined to their files, niced, dying with their worker.

Between fork and exec (`preexec_fn`) each child:
- asks for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`). Linux sends it when the *thread*
  that forked the child ends; that thread is the worker thread running the job (ffmpeg, ffprobe
  are started from `media.pipeline`, inside the job handler), and it waits for the child before
  it does anything else, so in practice the signal fires when the worker process dies (kill -9,
  out of memory). If the parent died before the call, the child kills itself.
- takes the niceness, and optionally RLIMIT_FSIZE (the tests' way to fill the disk: with
  SIGXFSZ ignored a write past it fails with EFBIG, as a full disk fails with ENOSPC).
- is confined with Landlock (Linux >= 5.13): it may read and execute the system's library folders
  and its own binary's folder, read its source, and read/write only its scratch folder. Not /proc
  (the server's environment, with its secrets, is there), not the data folder, not /etc.

Why this and not more: Landlock needs no privilege, no helper binary and no dependency (three
system calls), so it costs nothing where it exists; where it does not (old kernels, macOS, or
`REELOUT_MEDIA_SANDBOX=false`), the children run unconfined and the demuxer/protocol allowlists
(containers.py) remain the defence. A namespace sandbox (bubblewrap, nsjail) would confine more
but needs a system package or root. PyAV (probing when there is no ffprobe) runs inside the
worker process and gets the allowlists only.

Hand-written with ctypes: the Python bindings for Landlock on PyPI are pre-releases, and code
between fork and exec must be a few plain system calls on values prepared beforehand (the
ruleset is built in the parent; the child only applies it).

`confinement_problem` runs each binary once confined at start-up: an ffmpeg whose libraries lie
outside the opened folders is named in the log, and processing fails (retried, not blamed on the
video) until an operator moves it or turns the sandbox off, rather than running unconfined.

`Ledger` records each running child (its own process group) in a file in the data folder with
its worker's pid; a worker starting up ends the groups that dead workers on the same host left
behind (for when PDEATHSIG could not act: other platforms, or a child started by a thread that
ended). psutil tells a live process from a reused pid by its start time.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_sigset = _libc.signal
_sigset.argtypes = [ctypes.c_int, ctypes.c_void_p]
_sigset.restype = ctypes.c_void_p
SIG_IGN = 1
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
# Landlock: the same system call numbers on every architecture
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION, RULE_PATH_BENEATH = 1, 1
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
ABI1_RIGHTS = (1 << 13) - 1  # execute ... make_sym
REFER, TRUNCATE = 1 << 13, 1 << 14  # ABI 2, ABI 3
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE  # what a rule on a file may grant
READ = READ_FILE | READ_DIR
SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/sys/devices/system/cpu")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")
DEVICES_READ = ("/dev/urandom", "/dev/random")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@dataclass(frozen=True)
class Sandbox:
    """What one child may touch, and its limits."""

    reads: tuple[Path, ...] = ()  # files or folders it may read (its source)
    writes: tuple[Path, ...] = ()  # folders it may read and write (its scratch)
    confine: bool = True  # Landlock, where the kernel has it
    nice: int = 0
    max_file_bytes: int | None = None  # RLIMIT_FSIZE


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when there is none (or it is disabled)."""
    if not hasattr(os, "pidfd_open"):  # not Linux
        return 0
    version = int(
        _libc.syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), CREATE_RULESET_VERSION)
    )
    return max(version, 0)


def _add_rule(ruleset: int, path: Path, access: int, handled: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode) or stat.S_ISCHR(os.fstat(fd).st_mode):
            access &= FILE_RIGHTS
        rule = _PathBeneath(access & handled, fd)
        if _libc.syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            raise OSError(ctypes.get_errno(), f"landlock rule for {path}")
    finally:
        os.close(fd)


def _ruleset(sandbox: Sandbox, binary: Path, abi: int) -> int:
    """A Landlock ruleset fd: system libraries and the binary readable, the source readable,
    the scratch writable, nothing else."""
    handled = ABI1_RIGHTS | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)
    attr = _RulesetAttr(handled)
    size = ctypes.c_size_t(ctypes.sizeof(attr))
    ruleset = int(_libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), size, 0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        prefix = binary.parent.parent  # /opt/ffmpeg for /opt/ffmpeg/bin/ffmpeg
        executable = (*SYSTEM_READ, *SYSTEM_FILES, binary, binary.parent, prefix / "lib")
        for path in executable:
            _add_rule(ruleset, Path(path), READ | EXECUTE, handled)
        for path in DEVICES_READ:
            _add_rule(ruleset, Path(path), READ_FILE, handled)
        _add_rule(ruleset, Path("/dev/null"), READ_FILE | WRITE_FILE | TRUNCATE, handled)
        for path in sandbox.reads:
            _add_rule(ruleset, path, READ, handled)
        for path in sandbox.writes:
            _add_rule(ruleset, path, handled, handled)
    except BaseException:
        os.close(ruleset)
        raise
    return ruleset


def _child_setup(sandbox: Sandbox, parent: int, ruleset: int | None) -> Callable[[], None]:
    """The function the child runs between fork and exec: plain system calls only."""

    def setup() -> None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request above
            os.kill(os.getpid(), signal.SIGKILL)
        if sandbox.nice:
            os.nice(sandbox.nice)
        if sandbox.max_file_bytes is not None:
            _sigset(signal.SIGXFSZ, SIG_IGN)
            limit = sandbox.max_file_bytes
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        if ruleset is not None:
            if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "no_new_privs")
            if _libc.syscall(SYS_RESTRICT_SELF, ruleset, 0) != 0:
                raise OSError(ctypes.get_errno(), "landlock_restrict_self")

    return setup


_warned: list[bool] = []


def _ruleset_for(sandbox: Sandbox, binary: str) -> int | None:
    if not sandbox.confine:
        return None
    abi = landlock_abi()
    if abi < 1:
        if not _warned:
            _warned.append(True)
            log.warning("media: Landlock is not available; ffmpeg runs unconfined")
        return None
    found = shutil.which(binary)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, "no such program", binary)
    return _ruleset(sandbox, Path(found).resolve(), abi)


@contextlib.contextmanager
def _prepared(sandbox: Sandbox, binary: str) -> Iterator[Callable[[], None]]:
    ruleset = _ruleset_for(sandbox, binary)
    try:
        yield _child_setup(sandbox, os.getpid(), ruleset)
    finally:
        if ruleset is not None:
            os.close(ruleset)


def spawn(args: list[str], sandbox: Sandbox, **popen: object) -> subprocess.Popen[str]:
    """Start `args` in its own process group (a kill takes every child with it), set up as
    `sandbox` says; `popen` are further Popen arguments (pipes, cwd)."""
    with _prepared(sandbox, args[0]) as setup:
        return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
            args, text=True, start_new_session=True, preexec_fn=setup, **popen
        )


def run(
    args: list[str], sandbox: Sandbox, timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `args` to the end as `spawn` starts it, capturing its output; the whole process group
    is killed on timeout (subprocess.TimeoutExpired is raised)."""
    proc = spawn(
        args,
        sandbox,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def confinement_problem(binaries: list[str]) -> str | None:
    """Why these programs cannot run confined (e.g. libraries outside the folders the sandbox
    opens); None when they can, or when there is no Landlock to confine them with."""
    if landlock_abi() < 1:
        return None
    for binary in binaries:
        try:
            done = run([binary, "-hide_banner", "-version"], Sandbox(), timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{binary}: {exc}"
        if done.returncode != 0:
            detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return f"{binary} exits with status {done.returncode} when confined: {detail}"
    return None


def kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


# --- the ledger of running children ------------------------------------------------------------


def _started(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


class Ledger:
    """Running children, one file each under `folder`: host, worker pid, child pid, start times."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.host = socket.gethostname()

    def add(self, pid: int) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        owner = os.getpid()
        entry = self.folder / f"{self.host}-{owner}-{pid}.json"
        record = {
            "host": self.host,
            "owner": owner,
            "owner_started": _started(owner),
            "pid": pid,
            "started": _started(pid),
        }
        entry.write_text(json.dumps(record))
        return entry

    @staticmethod
    def remove(entry: Path) -> None:
        entry.unlink(missing_ok=True)

    def sweep(self) -> int:
        """Kill the process groups of children whose worker is gone; returns how many."""
        if not self.folder.is_dir():
            return 0
        killed = 0
        for entry in self.folder.glob(f"{self.host}-*.json"):
            try:
                record = json.loads(entry.read_text())
            except (OSError, ValueError):
                self.remove(entry)
                continue
            if record.get("host") != self.host:
                continue
            if _started(int(record["owner"])) == record["owner_started"]:
                continue  # its worker is alive and still owns it
            killed += _end_group(int(record["pid"]), record["started"])
            self.remove(entry)
        return killed


def _end_group(pid: int, started: float | None) -> int:
    if started is None or _started(pid) != started:
        return 0  # gone, or the pid now belongs to another process
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError as exc:
        if exc.errno not in (errno.ESRCH, errno.EPERM):
            raise
        return 0
    log.warning("media: ended leftover ffmpeg process group %s of a dead worker", pid)
    return 1
