"""Stage children that start warm: a pipeline keeps one interpreter with the heavy libraries imported, and each
stage child forks its work from it instead of importing torch, transformers and peft again.

On two CPU cores those imports take 10-15 s per child, before it reads its config; a pipeline of five children
spent about a minute in them. A pipeline run starts ``serve`` in the background (``warm_interpreter``): it imports
``PRELOAD`` once, then waits on a Unix socket whose path it puts in ``GENIE_WARM_SOCKET`` for every child.

The children are still started as before (``accelerate launch ... -m genie_core.stage_child CONFIG``, and the
plain commands of evaluate, export and tokenize). A child's entry point first calls ``run_warm``: it sends its
arguments, environment, working directory and standard streams to the warm interpreter, which forks a worker that
takes them over and runs the same ``main``. The child then only waits: it passes SIGTERM and SIGINT on to the
worker and exits with the worker's status. The worker stops (as a parent-death signal would stop it) when the
child is gone, so killing the child's process tree still stops the stage.

The fork inherits only imported modules: nothing in the warm interpreter has run a model or started a Python
thread. A child starts cold, exactly as before, when no warm interpreter is set, when it is one of several ranks
(``WORLD_SIZE`` > 1), or when its environment differs from the warm one in a variable that a library may have
read while importing (``RUNTIME_ENV`` lists those read later); the warm interpreter says why in the child's log.
Machines with a visible GPU start every child cold: an import may initialise the driver, and a fork of a process
that did cannot use the device. ``GENIE_WARM_START=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

WARM_ENV = "GENIE_WARM_SOCKET"
SWITCH_ENV = "GENIE_WARM_START"

# what the stage children import before their first log line (measured with -X importtime: about 10 s of the SFT
# child's 11 s on 2 cores), and each stage's own module; a missing optional one is skipped
PRELOAD = (
    "torch",
    "transformers",
    "transformers.training_args_seq2seq",
    "transformers.trainer",
    "transformers.generation.utils",
    "transformers.models.auto.modeling_auto",
    "peft",
    "accelerate",
    "safetensors.torch",
    "matplotlib.pyplot",
    "genie_core.hparams",
    "genie_core.model",
    "genie_core.stages",
    "genie_core.stages.trainer",
    "genie_core.stages.sft",
    "genie_core.stages.rm",
    "genie_core.stages.ppo",
    "genie_core.stages.dpo",
    "genie_core.stages.compare",
    "genie_core.eval.metrics",
    "genie_core.data.tokenized",
    "genie_core.export",
)
# variables read when a stage runs, not while importing: a child may differ from the warm interpreter in these
RUNTIME_ENV = (
    "OMP_NUM_THREADS",  # applied with torch.set_num_threads in the worker
    "MKL_NUM_THREADS",
    "KMP_AFFINITY",  # accelerate's launcher sets these for Intel OpenMP; torch's CPU wheels use GNU OpenMP
    "KMP_BLOCKTIME",
    "PYTHONUNBUFFERED",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
)
# accelerate's and genie's own settings, read when a stage starts; children never import prefect, and mlflow is
# imported by the stage (not preloaded), so it reads its variables in the worker
RUNTIME_PREFIXES = ("ACCELERATE_", "GENIE_", "PREFECT_", "MLFLOW_")
_HEADER = struct.Struct("!I")
_serving: dict[str, int] = {}  # the pid of this process's warm interpreter, while ``warm_interpreter`` runs it
_READY_TIMEOUT_S = 300.0  # a child waits this long for the warm interpreter to finish importing
_LISTEN_TIMEOUT_S = 10.0  # the warm interpreter's socket appears this soon after it starts, or it is not used


def serving_pid() -> int | None:
    """The warm interpreter this process started (its imports are not other work when choosing threads)."""
    return _serving.get("pid")


def enabled() -> bool:
    return (
        os.environ.get(SWITCH_ENV, "1") != "0"
        and hasattr(os, "fork")
        and hasattr(socket, "send_fds")
        and sys.platform.startswith("linux")
        and not _accelerator_visible()
    )


def _accelerator_visible() -> bool:
    """A GPU the children could use. Importing torch and transformers may initialise its driver (a device count
    at import), and a fork of a process that did cannot use the device, so GPU machines start children cold."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/kfd")


def env_mismatch(warm: dict[str, str], child: dict[str, str]) -> str | None:
    """The first variable a library may read at import that differs between the two environments, or None."""
    for key in sorted(set(warm) | set(child)):
        if key in RUNTIME_ENV or key.startswith(RUNTIME_PREFIXES):
            continue
        if warm.get(key) != child.get(key):
            return key
    return None


# ---- the child's side ------------------------------------------------------------------------------------------


def run_warm(entry: str, argv: list[str]) -> int | None:
    """Run ``entry`` (``module:function``, called with ``argv``) in a worker forked from the warm interpreter and
    return its exit status; None when this child should start cold (no warm interpreter, or it declined).

    Two phases: the request first, and the standard streams only once the warm interpreter has accepted it, so a
    child that gives up waiting leaves no copy of its streams behind (its reader would never see them close).
    """
    path = os.environ.get(WARM_ENV)
    if not path or not enabled() or os.environ.get("WORLD_SIZE", "1") != "1":
        return None
    from genie_core.extras.supervise import die_with_parent

    die_with_parent()  # as the cold child would: the launcher gone, this child stops (and its worker with it)
    worker: list[int] = []
    early: list[int] = []

    def forward(signum, frame):
        if not worker:
            early.append(signum)  # passed on once the worker exists, or acted on here if we start cold
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(worker[0], signum)  # the worker leads its own session: it and whatever it started

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    reader = sock.makefile("r", encoding="utf-8")
    try:
        sock.settimeout(5.0)
        sock.connect(path)
        request = json.dumps(
            {"entry": entry, "argv": [sys.argv[0], *argv], "env": dict(os.environ), "cwd": os.getcwd()}
        ).encode()
        sock.sendall(_HEADER.pack(len(request)) + request)
        sock.settimeout(_READY_TIMEOUT_S)  # the warm interpreter may still be importing: that is worth waiting for
        reply = reader.readline().strip().split(" ", 1)
        if reply[0] == "ready":
            socket.send_fds(sock, [b"s"], [0, 1, 2])
            reply = reader.readline().strip().split(" ", 1)
    except OSError as exc:
        reply = ["cold", f"unavailable: {exc}"]
    if reply[0] != "pid":
        sock.close()
        reason = reply[1].strip() if len(reply) > 1 else "no answer"
        print(f"[genie] warm start declined ({reason}); starting cold.", file=sys.stderr, flush=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if early:  # asked to stop while we waited: as a cold child would have been
            os.kill(os.getpid(), early[0])
        return None
    worker.append(int(reply[1]))
    for signum in early:
        forward(signum, None)
    sock.settimeout(None)
    try:
        status = reader.readline().split()
    except OSError:
        status = []
    if len(status) == 2 and status[0] == "exit":
        _await_worker_end(sock, reader)
        return int(status[1])
    print("[genie] the warm interpreter stopped before the stage ended.", file=sys.stderr, flush=True)
    return 1


def _await_worker_end(sock: socket.socket, reader, timeout: float = 5.0) -> None:
    """The worker sends its status just before it exits; the warm interpreter's own report (once it has reaped
    the worker) or the end of the stream follows when the worker is gone. Waiting for that keeps this child from
    exiting while its stage process still runs, which whoever waits on the child would count as a leftover."""
    sock.settimeout(timeout)
    with contextlib.suppress(OSError):  # a timeout too: the worker is then merely slow to go
        reader.readline()


# ---- the warm interpreter --------------------------------------------------------------------------------------


@contextlib.contextmanager
def warm_interpreter(
    log_path: str | Path, env: dict[str, str], wanted: bool = True, preload: tuple[str, ...] = PRELOAD
) -> Iterator[str | None]:
    """Start ``serve`` in the background for the children started inside the block (which get ``WARM_ENV`` from
    ``os.environ``); stop it after. ``env`` is what the children's environment will be, minus ``RUNTIME_ENV``."""
    if not wanted or not enabled():
        yield None
        return
    running = os.environ.get(WARM_ENV)
    if running and os.path.exists(running) and serving_pid():
        yield running  # started by an enclosing block of this process (`genie run` starts it before the flow)
        return
    from genie_core.extras.supervise import die_with_parent

    folder = tempfile.mkdtemp(prefix="genie-warm-")
    path = os.path.join(folder, "sock")
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "genie_core.extras.warm", path, *preload],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    deadline = time.monotonic() + _LISTEN_TIMEOUT_S
    while not os.path.exists(path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # it listens before importing anything heavy: a fraction of a second
    if not os.path.exists(path):
        _stop(proc)
        with contextlib.suppress(OSError):  # serve() removes it itself when it fails to listen
            os.rmdir(folder)
        yield None
        return
    previous = os.environ.get(WARM_ENV)
    os.environ[WARM_ENV] = path
    _serving["pid"] = proc.pid
    try:
        yield path
    finally:
        _serving.pop("pid", None)
        if previous is None:
            os.environ.pop(WARM_ENV, None)
        else:
            os.environ[WARM_ENV] = previous
        _stop(proc)
        with contextlib.suppress(OSError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve(path: str, preload: tuple[str, ...] = PRELOAD) -> None:
    """Listen on ``path`` at once (children queue while the imports run), import ``preload``, then fork a worker
    per child and report each worker's exit status to its child. SIGTERM stops it, and it removes its socket."""
    from genie_core.extras.supervise import die_with_parent

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)  # before the imports: a pipeline that ends meanwhile still cleans up
    die_with_parent()  # the pipeline that started us is gone: so are we
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        listener.listen(16)
        _serve(listener, preload)
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))


def _serve(listener: socket.socket, preload: tuple[str, ...]) -> None:
    start = time.perf_counter()
    environ = dict(os.environ)
    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            print(f"warm: skipped {name} ({exc})", flush=True)
    threads = _python_threads()
    print(f"warm: imported {len(preload)} modules in {time.perf_counter() - start:.1f} s", flush=True)
    workers: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    while True:
        for _key, _ in selector.select(timeout=0.2):
            conn, _ = listener.accept()
            _accept(conn, listener, environ, threads, workers)
        _reap(workers)


def _accept(conn: socket.socket, listener, environ: dict[str, str], threads: int, workers: dict) -> None:
    """Read one child's request; fork its worker, or tell it why it should start cold."""
    fds: list[int] = []
    try:
        conn.settimeout(10.0)
        (size,) = _HEADER.unpack(_read_exactly(conn, _HEADER.size))
        request = json.loads(_read_exactly(conn, size))
        reason = _decline_reason(conn, request, environ, threads)
        if reason:
            with contextlib.suppress(OSError):
                conn.sendall(f"cold {reason}\n".encode())
            conn.close()
            return
        conn.sendall(b"ready\n")
        _, fds, _flags, _addr = socket.recv_fds(conn, 1, 3)
        if len(fds) != 3:
            raise OSError(f"the child's standard streams did not arrive ({len(fds)} of 3)")
        conn.settimeout(None)
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        print(f"warm: dropped a request ({exc!r})", flush=True)
        for fd in fds:
            os.close(fd)
        conn.close()
        return
    # blocked across the fork: a stop forwarded at once must meet the stage's handlers, not ours (which would end
    # the worker as a success, or run the warm interpreter's clean-up in it)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    pid = os.fork()
    if pid == 0:
        _worker(conn, [listener, *workers.values()], fds, request, mask)  # never returns
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    for fd in fds:
        os.close(fd)
    workers[pid] = conn
    with contextlib.suppress(OSError):
        conn.sendall(f"pid {pid}\n".encode())


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("the child left before sending its request")
        data += chunk
    return data


def _decline_reason(conn: socket.socket, request: dict, environ: dict[str, str], threads: int) -> str | None:
    """Why this child should start cold, or None."""
    if threads != 1:
        return f"the warm interpreter runs {threads} Python threads, so forking it is not safe"
    if request["cwd"] != os.getcwd():
        return "the child runs in another working directory"
    if _peer_gone(conn):
        return "the child left while the warm interpreter was importing"
    key = env_mismatch(environ, request["env"])
    return f"{key} differs from the warm interpreter's" if key else None


def _reap(workers: dict[int, socket.socket]) -> None:
    """Send each finished worker's exit status to its child (128 + N for a worker killed by signal N)."""
    while workers:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = workers.pop(pid, None)
        if conn is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(OSError):
            conn.sendall(f"exit {code if code >= 0 else 128 - code}\n".encode())
        conn.close()


def _worker(conn: socket.socket, others: list[socket.socket], fds: list[int], request: dict, mask) -> None:
    """In the fork: become the child (its streams, directory, environment, arguments) and run its entry point.
    Its exit status goes to the child directly (the warm interpreter reports it too, for a worker killed by a
    signal), so the child does not depend on the warm interpreter outliving the stage."""
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the warm interpreter's own handler is not the stage's
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a stop that came meanwhile lands now, as a cold one would
        for other in others:  # the listener and other children's connections: theirs to close, not ours to hold
            other.close()
        os.setsid()
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.pop(WARM_ENV, None)  # this worker's own children (tokenizing, say) start cold
        sys.argv = list(request["argv"])
        _follow_child(conn)
        _apply_runtime_env()
        from genie_core.extras.logging import get_logger

        get_logger("genie_core.extras.warm").info(
            "Started warm: forked from the pipeline's warm interpreter (%s already imported)",
            ", ".join(name for name in ("torch", "transformers", "peft") if name in sys.modules) or "nothing heavy",
        )
        module, _, function = request["entry"].partition(":")
        code = int(getattr(importlib.import_module(module), function or "main")(sys.argv[1:]) or 0)
        _run_exit_functions()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - whatever it was, the child's log gets the traceback
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(Exception):
            conn.sendall(f"exit {code & 0xFF}\n".encode())
        os._exit(code)


def _python_threads() -> int:
    """Python threads besides the main one would be lost, mid-work, in a fork. Native helper threads that the
    imports start (numpy's OpenBLAS pool, pyarrow's jemalloc) are left out: those libraries re-arm themselves
    after a fork, the same property torch's forked DataLoader workers rely on."""
    return threading.active_count()


def _peer_gone(conn: socket.socket) -> bool:
    """Whether the child closed its end (it timed out waiting, or was stopped) before we got to its request."""
    timeout = conn.gettimeout()
    try:
        conn.setblocking(False)
        return conn.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        conn.settimeout(timeout)


def _run_exit_functions() -> None:
    """What the interpreter runs at a normal exit (logging's flush, libraries' atexit hooks); the worker then
    leaves with ``os._exit``, since the warm interpreter's teardown is not its to run."""
    import atexit

    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()


def _follow_child(conn: socket.socket) -> None:
    """Stop when the child that asked for this worker is gone, as its parent-death signal would have stopped it:
    SIGTERM (a checkpoint, then exit), and SIGKILL if that does not end the process in time."""
    from genie_core.extras.supervise import grace_seconds, stop_requested

    def watch() -> None:
        with contextlib.suppress(OSError):
            while conn.recv(64):
                pass
        group = os.getpgid(0)  # this worker's session: it and whatever it started
        if not stop_requested():  # a stop already passed on and then the child killed: its supervisor gave up
            os.killpg(group, signal.SIGTERM)
            time.sleep(grace_seconds() + 5.0)
        os.killpg(group, signal.SIGKILL)

    threading.Thread(target=watch, name="genie-warm-follow", daemon=True).start()


def _apply_runtime_env() -> None:
    """What a cold child would have taken from its environment at start-up: thread counts, genie's log level and
    a fresh seed."""
    import logging

    logging.getLogger("genie").setLevel(os.environ.get("GENIE_LOG_LEVEL", "INFO").upper())
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0 and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()  # every fork would otherwise draw numpy's global numbers alike


if __name__ == "__main__":  # python -m genie_core.extras.warm SOCKET [MODULE ...] (PRELOAD when none is named)
    serve(sys.argv[1], tuple(sys.argv[2:]) or PRELOAD)
