# agentopt's Python worker: runs inside the sandbox, one per session. It speaks JSON lines with the
# Rust side over private copies of stdin/stdout, so nothing user code prints (or a subprocess writes to
# fd 1/2) can corrupt the protocol. Started as `python -I -B -c BOOTSTRAP WORKER_SOURCE CONFIG_JSON`.
# With `"fork_server"` in the config it is instead the fork server: it imports the common modules once
# and forks one child per session, each speaking the same protocol over its own Unix socket connection.
import ast
import builtins
import importlib
import io
import json
import linecache
import os
import re
import resource
import select
import shutil
import signal
import socket
import sys
import threading
import traceback
import types

WORKER_FILE = "<agentopt-worker>"
CONFIG = json.loads(sys.argv[2])
CAP = int(CONFIG["cap"])
sys.argv = [""]  # user code should not see the worker's source in argv


def set_limits():
    # Applied before any user code runs (and before the uid drop, while raising is still allowed).
    def cap(which, value):
        if value:
            resource.setrlimit(which, (value, value))

    def cap_hard(which, value):
        if value:
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)  # never raised
            resource.setrlimit(which, (value if soft == resource.RLIM_INFINITY else min(soft, value), value))

    cap(resource.RLIMIT_AS, CONFIG.get("memory_bytes"))
    # A hard CPU limit for the session's whole life, so code cannot lift the per-execution soft one
    # past it (see set_cpu_budget); reaching it kills the worker, and the session restarts.
    cap_hard(resource.RLIMIT_CPU, CONFIG.get("cpu_seconds_total"))
    cap(resource.RLIMIT_NPROC, CONFIG.get("max_processes"))
    cap(resource.RLIMIT_FSIZE, CONFIG.get("file_size_bytes"))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    uid = CONFIG.get("drop_uid")
    if uid is not None and os.getuid() == 0:
        # Running as host root: RLIMIT_NPROC does not bind uid 0, so become an unprivileged uid of
        # our own (this also clears every capability). Its home, a tmpfs bwrap made for root, first
        # becomes its own.
        if CONFIG.get("workdir"):
            os.chown(CONFIG["workdir"], uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    if CONFIG.get("seccomp"):
        install_seccomp(CONFIG["seccomp"])


def install_seccomp(settings):
    """Installs agentopt's system-call filter (built in seccomp.rs) on every thread of this process;
    whatever it starts inherits it and nothing can remove it. Failing closed: an error here ends
    the worker before any user code."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    program = bytes.fromhex(settings["program"])
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    fprog = SockFprog(len(program) // 8, program)
    if libc.syscall(
        ctypes.c_long(settings["call"]),
        ctypes.c_uint(settings["operation"]),
        ctypes.c_uint(settings["flags"]),
        ctypes.byref(fprog),
    ) != 0:
        raise OSError(ctypes.get_errno(), "seccomp(SECCOMP_SET_MODE_FILTER) failed")


PR_SET_NO_NEW_PRIVS = 38


def take_protocol_fds(read_fd=0, write_fd=1):
    # Keep private duplicates for the protocol, then point fd 0 at /dev/null and fd 1/2 at a memory
    # file whose content is collected after each execution (output of subprocesses, os.write, C code).
    proto_in = os.fdopen(os.dup(read_fd), "r", encoding="utf-8")
    proto_out = os.fdopen(os.dup(write_fd), "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    raw = os.memfd_create("agentopt-output")
    os.dup2(raw, 1)
    os.dup2(raw, 2)
    os.close(raw)
    return proto_in, proto_out


def close_other_descriptors(*streams):
    """Closes every descriptor but 0-2 and the protocol's `streams` (or descriptor numbers) before
    user code runs: nothing the fork server (its stderr, pipes, socket) or anyone before it held may
    reach a session."""
    keep = {0, 1, 2} | {s if isinstance(s, int) else s.fileno() for s in streams}
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc (unsandboxed on an odd system): every number up to the limit
        open_fds = range(3, min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1 << 16))
    for fd in open_fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # not open (the listing's own descriptor, closed already)


class CappedWriter(io.TextIOBase):
    """A text stream keeping the first CAP characters and counting the rest. With `stream`, what it
    keeps is also sent as it is written (`{"event": "output"}`), so output printed before a timeout
    or a crash reaches the assistant although the final reply never comes."""

    def __init__(self, collects_fd_output=False, stream=None, send=None):
        self.parts = []
        self.kept = 0
        self.omitted = 0
        self.stream = stream
        self.send = send
        # stdout first pulls in what subprocesses wrote to fd 1/2 so far, keeping the order of
        # `os.system(...); print(...)` (one fstat per write).
        self.collects_fd_output = collects_fd_output

    encoding = "utf-8"
    errors = "replace"

    def writable(self):
        return True

    @property
    def buffer(self):
        # For code writing bytes to sys.stdout.buffer.
        return BytesToText(self)

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not " + type(s).__name__)
        if self.collects_fd_output:
            self.collect_fd_output()
        self.append(s)
        return len(s)

    def collect_fd_output(self):
        try:
            pending = os.fstat(1).st_size
        except OSError:
            return
        if pending:
            read_fd_output(self)

    def append(self, s):
        room = CAP - self.kept
        if room > 0:
            part = s[:room]
            self.parts.append(part)
            self.kept += min(len(s), room)
            if self.send is not None and part:
                self.send({"event": "output", "stream": self.stream, "text": part})
        self.omitted += max(0, len(s) - max(room, 0))

    def text(self):
        return "".join(self.parts)


class BytesToText:
    def __init__(self, text):
        self.text = text

    def write(self, b):
        self.text.write(bytes(b).decode("utf-8", "replace"))
        return len(b)

    def flush(self):
        pass


def read_fd_output(into):
    """Moves what landed in the memory file behind fd 1/2 into the writer `into`, then empties it."""
    try:
        for stream in (sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
        size = os.fstat(1).st_size
        os.lseek(1, 0, os.SEEK_SET)
        data = b""
        while len(data) <= CAP * 4:
            chunk = os.read(1, 65536)
            if not chunk:
                break
            data += chunk
        os.ftruncate(1, 0)
        os.lseek(1, 0, os.SEEK_SET)
    except (OSError, ValueError):
        return
    into.append(data.decode("utf-8", "replace"))
    into.omitted += max(0, size - len(data))


def format_exception(e):
    # Drop the worker's own frames: the traceback starts at the user's code.
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == WORKER_FILE:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(e), e, tb))


def register_source(filename, source):
    # Lets tracebacks quote the lines of code that was never a file.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def exit_status(e):
    """Ok for sys.exit(0)/sys.exit(None); otherwise an error line."""
    if e.code is None or e.code == 0:
        return None
    return "SystemExit: %s\n" % (e.code,)


class Capture:
    """Routes sys.stdout/sys.stderr into capped buffers for one execution (streamed through `send`
    when given)."""

    def __init__(self, send=None):
        self.send = send

    def __enter__(self):
        self.out = CappedWriter(collects_fd_output=True, stream="stdout", send=self.send)
        self.err = CappedWriter(stream="stderr", send=self.send)
        self.saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self.out, self.err
        return self

    def __exit__(self, *exc):
        sys.stdout, sys.stderr = self.saved
        read_fd_output(self.out)
        return False

    def reply(self, status, result=None):
        return {
            "status": status,
            "stdout": self.out.text(),
            "stdout_omitted": self.out.omitted,
            "stderr": self.err.text(),
            "stderr_omitted": self.err.omitted,
            "result": result,
        }


def set_cpu_budget():
    # RLIMIT_CPU is cumulative over the worker's life: grant each execution a fresh budget on top of
    # what was used, within the session's hard limit. A backstop only; the wall-clock timeout on the
    # Rust side is the real limit.
    seconds = CONFIG.get("cpu_seconds")
    if not seconds:
        return
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(used.ru_utime + used.ru_stime) + int(seconds)
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    except (ValueError, OSError):
        pass


def safe_repr(value):
    try:
        text = repr(value)
    except BaseException as e:  # a broken __repr__ is the user's problem, not the worker's
        text = "<unrepresentable %s: %s>" % (type(value).__name__, e)
    return text[: CAP * 2]


PIP_TO_IMPORT = {
    "scikit-learn": "sklearn",
    "pillow": "PIL",
    "beautifulsoup4": "bs4",
    "pyyaml": "yaml",
    "opencv-python": "cv2",
    "python-dateutil": "dateutil",
}


def check_packages(packages):
    """None when every declared package imports, else the error message."""
    for entry in packages:
        for spec in re.split(r"[\s,]+", entry.strip()):
            name = re.split(r"[<>=!~\[;@ ]", spec, 1)[0].strip()
            if not name:
                continue
            module = PIP_TO_IMPORT.get(name.lower(), name.replace("-", "_"))
            try:
                importlib.import_module(module)
            except BaseException as e:
                return "package `%s` cannot be imported (%s: %s); only installed packages can be used" % (
                    name,
                    type(e).__name__,
                    e,
                )
    return None


def define(name, code, packages):
    """Defines one function in its own module, so each name keeps its own code and globals."""
    problem = name_problem(name) or check_packages(packages)
    if problem:
        return None, problem
    filename = "<function %s>" % name
    register_source(filename, code)
    module = types.ModuleType("agentopt_fn_" + name)
    module.__file__ = filename
    try:
        compiled = compile(code, filename, "exec")
    except SyntaxError as e:
        return None, "".join(traceback.format_exception_only(type(e), e))
    try:
        with Capture():
            exec(compiled, module.__dict__)
    except BaseException as e:
        return None, format_exception(e)
    if name not in module.__dict__:
        return None, "the code does not define `%s`" % name
    fn = module.__dict__[name]
    if not callable(fn):
        return None, "`%s` is defined but is not callable (it is a %s)" % (name, type(fn).__name__)
    return fn, None


def name_problem(name):
    """Why a learned function may not take this name: a keyword cannot be one, and a builtin's name
    would replace the builtin (`print`, `len`) in every code block of the session."""
    import keyword

    if keyword.iskeyword(name):
        return "`%s` is a Python keyword: choose another name" % name
    if hasattr(builtins, name):
        return (
            "`%s` is a Python builtin: a learned function of that name would replace it in every "
            "code block; choose another name" % name
        )
    return None


def check_signature(name, fn, schema):
    """None when the JSON-schema parameters fit the function's signature (so the assistant's calls,
    built from the schema, can work), else the mismatch."""
    import inspect

    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as e:
            return "the parameters are not a valid JSON schema (%s)" % e
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return None  # nothing declared to compare against
    declared = schema["properties"]
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None  # builtins and some C callables have no signature to compare
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    accepted = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    shown = "%s(%s)" % (name, ", ".join(p.name for p in params))
    for prop in declared:
        if prop not in accepted:
            return "the parameters declare `%s` but the function is %s" % (prop, shown)
    for p in params:
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            if p.name not in declared:
                return "%s requires `%s`, which the parameters do not declare" % (shown, p.name)
    return None


class Worker:
    def __init__(self, send, preload, background=True):
        self.send = send
        self.user = {"__name__": "__main__", "__builtins__": builtins}
        self.functions = {}
        self.cells = 0
        # The common modules import in the background, so the session is ready at once and the
        # import overlaps with the model's first reply; code that needs them waits (see `begin`).
        # A child of the quick fork server imports what it lacks only when code needs it (`lazy`):
        # dozens of early children importing sympy each would starve the machine.
        self.preload, self.lazy = None, []
        if background and preload:
            self.preload = threading.Thread(target=import_all, args=(preload,), daemon=True)
            self.preload.start()
        elif preload:
            self.lazy = list(preload)
        self.preloaded = re.compile(r"\b(%s)\b" % "|".join(re.escape(m) for m in preload)) if preload else None

    def begin(self, code=None):
        """Before running user code: tell the Rust side that the execution starts now (its wall-clock
        limit counts from here). Function calls, validation and code naming a preloaded module first
        finish the preload, so a busy machine's import is not charged to them. Other code runs at once:
        a short conversation should not wait for (nor, once killed, pay for) a whole sympy import it
        never uses, and an import racing the preload just waits on Python's per-module import lock."""
        wanted = code is None or not self.preloaded or self.preloaded.search(code)
        if self.preload is not None and not self.preload.is_alive():
            self.preload = None
        if self.preload is not None and wanted:
            self.preload.join()
            self.preload = None
        if self.lazy and wanted:
            import_modules(self.lazy)
            self.lazy = []
        self.send({"event": "started"})

    def op_define(self, req):
        # The clock starts here too, so a function whose top-level code loops costs the session's
        # time limit, not the startup allowance.
        self.begin("\n".join(f.get("code") or "" for f in req["functions"]))
        errors = {}
        for f in req["functions"]:
            # A definition that already failed elsewhere (hung or crashed its worker) stays failed.
            if "error" in f:
                fn, problem = None, f["error"]
            else:
                fn, problem = define(f["name"], f["code"], f.get("packages") or [])
            if problem:
                errors[f["name"]] = problem
                self.functions[f["name"]] = problem
            else:
                self.functions[f["name"]] = fn
                self.user[f["name"]] = fn  # code blocks may call learned functions too
        return {"errors": errors}

    def op_validate(self, req):
        self.begin()
        fn, problem = define(req["name"], req["code"], req.get("packages") or [])
        if problem is None:
            problem = check_signature(req["name"], fn, req.get("parameters"))
        return {"error": problem}

    def op_exec(self, req):
        code = req["code"]
        self.cells += 1
        filename = "<cell %d>" % self.cells
        register_source(filename, code)
        self.begin(code)
        set_cpu_budget()
        with Capture(self.send) as cap:
            try:
                tree = ast.parse(code, filename, "exec")
            except SyntaxError as e:
                sys.stderr.write("".join(traceback.format_exception_only(type(e), e)))
                status, result = "error", None
            else:
                status, result = self.run_tree(tree, filename)
        return cap.reply(status, result)

    def run_tree(self, tree, filename):
        # Like the REPL: a final bare expression's value is reported (when not None).
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        try:
            exec(compile(tree, filename, "exec"), self.user)
            if last is not None:
                value = eval(compile(last, filename, "eval"), self.user)
                if value is not None:
                    return "ok", safe_repr(value)
            return "ok", None
        except SystemExit as e:
            message = exit_status(e)
            if message:
                sys.stderr.write(message)
                return "error", None
            return "ok", None
        except BaseException as e:
            sys.stderr.write(format_exception(e))
            return "error", None

    def op_call(self, req):
        self.begin()
        set_cpu_budget()
        with Capture(self.send) as cap:
            status, value = self.call(req["name"], req["args"])
        return cap.reply(status, value)

    def call(self, name, args):
        fn = self.functions.get(name)
        if fn is None:
            known = ", ".join(sorted(self.functions)) or "none"
            sys.stderr.write("Error: no function named `%s` (available: %s)\n" % (name, known))
            return "error", None
        if isinstance(fn, str):
            sys.stderr.write("Error: function `%s` could not be defined:\n%s" % (name, fn))
            return "error", None
        try:
            return "ok", safe_repr(fn(**args))
        except SystemExit as e:
            message = exit_status(e)
            if message:
                sys.stderr.write(message)
                return "error", None
            return "ok", safe_repr(None)
        except BaseException as e:
            sys.stderr.write(format_exception(e))
            return "error", None


def import_all(modules):
    # Lowest CPU priority for this thread only (Linux nice is per thread): on a busy machine the
    # preload of many sessions must not starve the code that is actually waiting to run.
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass
    import_modules(modules)


def import_modules(modules):
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:
            pass  # a missing optional module only costs speed


def sender(stream):
    def send(obj):
        stream.write(json.dumps(without_surrogates(obj), ensure_ascii=True) + "\n")
        stream.flush()

    return send


def without_surrogates(value):
    """Lone surrogates (`print('\\udcff')`, undecodable file names) are not Unicode text: JSON
    readers refuse them, which would lose the whole reply. They are shown as `\\udcff` instead."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {key: without_surrogates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_surrogates(item) for item in value]
    return value


def main():
    if CONFIG.get("fork_server"):
        fork_server(CONFIG["fork_server"], CONFIG.get("preload") or [])
        return
    proto_in, proto_out = take_protocol_fds()
    close_other_descriptors(proto_in, proto_out)  # before the preload thread opens any
    send = sender(proto_out)
    set_limits()
    os.chdir(CONFIG.get("workdir") or os.getcwd())
    worker = Worker(send, CONFIG.get("preload") or [])
    send({"ready": True})
    serve(proto_in, send, worker)


def serve(proto_in, send, worker):
    handlers = {
        "define": worker.op_define,
        "validate": worker.op_validate,
        "exec": worker.op_exec,
        "call": worker.op_call,
    }
    for line in proto_in:
        req = json.loads(line)
        try:
            reply = handlers[req["op"]](req)
        except BaseException as e:  # never let the worker die on a user's odd exception
            reply = {"status": "error", "stdout": "", "stderr": format_exception(e), "result": None}
        send(reply)


# --- The fork server -------------------------------------------------------------------------------
# One sandboxed process that imports the common modules once and forks children for sessions: a
# session then starts in milliseconds, sharing the imported modules copy-on-write, instead of paying
# for a new sandbox and interpreter. It keeps `spares` children forked ahead of demand, each waiting in
# accept() on the server's Unix socket (0600, so children, once on their own uids, cannot ask for
# more): a burst of sessions finds them ready, and the forks happen while the machine waits for the
# model. A spare that accepts a connection tells the server (the `taken` pipe), which forks another
# while fewer than `spares` are idle.
# Its stdin carries control lines (`{"kill": pid}`, `{"spares": n}`: the number to keep, fewer when
# fewer sessions are still expected; end of input: agentopt is gone) and its stdout
# reports `ready`, `preloaded` (its own imports are done) and each child's exit. It imports
# `fork_server.preload` first (one module at a time, cheapest first); a child imports what it lacks
# of the common `preload` list when its code needs it.
# It stays single-threaded, so a fork never copies another thread's half-held lock; kill requests and
# child exits are served from signal handlers (SIGIO on the control pipe, SIGCHLD), which Python runs
# between bytecodes, so a kill is prompt even while a long import is under way.

CONTROL_SIGNALS = {signal.SIGIO, signal.SIGCHLD}


class ForkServer:
    def __init__(self, settings, events_fd):
        import fcntl

        self.events_fd = events_fd
        self.settings = settings
        self.stale_groups = set()  # reaped sessions whose memory cgroups are still to remove
        self.home = settings["home"]
        self.nice = bool(settings.get("nice"))
        self.spares = max(1, int(settings.get("spares") or 1))
        self.children = set()  # forked and not yet reaped: only these may be signalled
        self.signals = {}  # child pid -> the signal that killed its session (its init reports it)
        self.idle = set()  # spares still waiting for a connection
        self.control = b""
        self.busy = self.again = False
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(settings["socket"])
        os.chmod(settings["socket"], 0o600)
        self.listener.listen(256)
        self.taken_r, self.taken_w = os.pipe()
        # The server's own PID namespace: each spare is the init of a new one (see fork_spare), and
        # the server returns here after each fork.
        self.own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY) if os.getuid() == 0 else None
        # Likewise each spare gets a network namespace of its own (see network_namespace).
        self.own_net_ns = os.open("/proc/self/ns/net", os.O_RDONLY) if os.getuid() == 0 else None
        self.free_net = []  # namespaces whose sessions have all been reaped
        self.net_of = {}  # child pid -> its network namespace
        # Signals also wake the main loop's select through this pipe.
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.taken_r, self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w)
        os.set_blocking(0, False)
        fcntl.fcntl(0, fcntl.F_SETOWN, os.getpid())
        fcntl.fcntl(0, fcntl.F_SETFL, fcntl.fcntl(0, fcntl.F_GETFL) | os.O_ASYNC)
        for signum in CONTROL_SIGNALS:
            signal.signal(signum, lambda *_: self.service())

    def send_event(self, obj):
        """One event line in one write(2): the SIGCHLD handler reports exits, and may run while the
        main loop is itself reporting; a buffered stream would refuse that reentrant write and take
        the server, and every session forked from it, down. A pipe write of at most PIPE_BUF bytes is
        atomic, so lines from the two never interleave."""
        line = (json.dumps(obj, ensure_ascii=True) + "\n").encode()
        assert len(line) <= select.PIPE_BUF
        os.write(self.events_fd, line)

    def service(self):
        """Serves kill requests and reaps children; re-entrant (a signal may land mid-way)."""
        if self.busy:
            self.again = True
            return
        self.busy = True
        try:
            self.again = True
            while self.again:
                self.again = False
                self.read_control()
                self.reap()
        finally:
            self.busy = False

    def read_control(self):
        while True:
            try:
                chunk = os.read(0, 65536)
            except BlockingIOError:
                return
            if not chunk:  # agentopt is gone: so is every session
                for pid in list(self.children):
                    kill_group(pid)
                os._exit(0)
            self.control += chunk
            *lines, self.control = self.control.split(b"\n")
            for line in lines:
                request = json.loads(line) if line.strip() else {}
                pid = request.get("kill")
                if pid in self.children:
                    kill_group(pid)  # what left the group dies when the child is reaped
                if "spares" in request:  # fewer sessions to come (or more): the main loop follows
                    self.spares = max(1, int(request["spares"]))

    def reap(self):
        self.read_taken()  # a session's signal line may still wait there
        memcg = self.settings.get("memcg")
        self.stale_groups = {pid for pid in self.stale_groups if not remove_memory_cgroup(memcg, pid)}
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self.idle.discard(pid)
            if pid in self.net_of:
                self.free_net.append(self.net_of.pop(pid))
            # Its PID namespace died with it (and every process the session left, whatever group
            # or session it moved to); without one (not root) its group is what can be killed.
            kill_group(pid)
            shutil.rmtree(os.path.join(self.home, "s%d" % pid), ignore_errors=True)
            self.stale_groups.add(pid)
            signum = self.signals.pop(pid, None)
            if signum is None and os.WIFSIGNALED(status):
                signum = os.WTERMSIG(status)
            if signum is not None:
                self.send_event({"exited": pid, "signal": signum})
            else:
                self.send_event({"exited": pid, "code": os.waitstatus_to_exitcode(status)})

    def read_taken(self):
        try:
            data = os.read(self.taken_r, 65536)
        except BlockingIOError:
            return
        # "PID" once a spare is taken, "PID SIGNAL" from its init when a signal killed the session.
        for line in data.decode().splitlines():
            fields = [int(f) for f in line.split()]
            if fields:
                self.idle.discard(fields[0])
            if len(fields) == 2 and fields[0] in self.children:
                self.signals[fields[0]] = fields[1]

    def network_namespace(self):
        """A network namespace for the next spare: one whose session has ended, else a new one. A
        reaped session's processes are all gone (its PID namespace died with its init), and having
        had its loopback down and no capability, it left nothing there: no socket, route or
        setting. Kept rather than destroyed because making and tearing down one costs ~1 ms of
        kernel CPU, which a burst of 64 sessions on 2 cores paid in its wall time."""
        if self.free_net:
            return self.free_net.pop()
        if LIBC.unshare(CLONE_NEWNET) != 0:
            raise OSError(ctypes_errno(), "unshare(CLONE_NEWNET) failed")
        try:
            return os.open("/proc/self/ns/net", os.O_RDONLY)
        finally:
            if LIBC.setns(self.own_net_ns, CLONE_NEWNET) != 0:
                raise OSError(ctypes_errno(), "setns(CLONE_NEWNET) failed")

    def fork_spare(self):
        # What the child lacks of the common modules it imports itself, when its code needs them.
        missing = [m for m in self.preloadable if m not in sys.modules]
        # Blocked until the child is registered, so no handler sees it half-known.
        signal.pthread_sigmask(signal.SIG_BLOCK, CONTROL_SIGNALS)
        net = self.network_namespace() if self.own_net_ns is not None else None
        if self.own_pid_ns is not None:
            # The child is the first process, the init, of a PID namespace of its own: its session
            # sees only its own processes, and none outlives it. Made here, not by a double fork in
            # the child, so it stays the server's child (reaped and reported as before); the setns
            # below puts the server's later children back in its own namespace.
            if LIBC.unshare(CLONE_NEWPID) != 0:
                raise OSError(ctypes_errno(), "unshare(CLONE_NEWPID) failed")
        pid = os.fork()
        if pid == 0:
            own = (self.events_fd, self.taken_r, self.wake_r, self.wake_w, self.own_pid_ns)
            own += (self.own_net_ns, *self.free_net, *self.net_of.values())
            server_fds = [fd for fd in own if fd is not None]
            spare(self.listener, self.taken_w, server_fds, self.home, missing, net)
        if self.own_pid_ns is not None and LIBC.setns(self.own_pid_ns, CLONE_NEWPID) != 0:
            raise OSError(ctypes_errno(), "setns(CLONE_NEWPID) failed")
        try:
            os.setpgid(pid, pid)  # also done by the child; whichever runs first
        except OSError:
            pass
        self.children.add(pid)
        self.idle.add(pid)
        if net is not None:
            self.net_of[pid] = net
        signal.pthread_sigmask(signal.SIG_UNBLOCK, CONTROL_SIGNALS)

    def run(self, preload, preloadable):
        import gc

        self.pending, self.preloadable = list(preload), list(preloadable)
        announced = False
        self.send_event({"ready": True})
        # A slow preload (sympy) starts at the lowest CPU priority: the first sessions (forked from
        # the quick server) must not wait for the CPU it takes. For at most a few seconds, though:
        # sessions busy importing sympy themselves would otherwise starve it for good. Root may
        # raise the priority back.
        # (agentopt starts a `nice` server at that process priority already, so its start-up waits
        # too; its autogroup is lowered here.)
        low_priority = bool(self.pending) and self.nice
        if low_priority:
            low_priority_now()
            signal.signal(signal.SIGALRM, lambda *_: normal_priority())
            signal.alarm(LOW_PRIORITY_SECONDS)
        elif self.nice:
            normal_priority()
        while True:
            # Spares are forked once the imports are done (every session then shares them); before,
            # each module is imported in turn, with kills and exits served by the signal handlers.
            short = not self.pending and len(self.idle) < self.spares
            busy = self.pending or short or not announced
            readable, _, _ = select.select([self.wake_r, self.taken_r], [], [], 0 if busy else 5.0)
            if self.wake_r in readable:
                try:
                    os.read(self.wake_r, 4096)
                except BlockingIOError:
                    pass
            self.service()
            if self.taken_r in readable:
                self.read_taken()
            if short:
                # A spare's fork (page tables copied, pages shared) yields to the sessions running.
                before = os.getpriority(os.PRIO_PROCESS, 0)
                if before < SPARE_NICE:
                    set_priority(SPARE_NICE, autogroup=False)
                self.fork_spare()
                if before < SPARE_NICE:
                    set_priority(before, autogroup=False)
            elif not self.pending and not announced:
                # Imports done and spares waiting: sessions may come here now.
                self.send_event({"preloaded": True})
                announced = True
                if low_priority:
                    signal.alarm(0)
                    normal_priority()
            elif self.pending:
                import_modules([self.pending.pop(0)])
                if not self.pending:
                    # Objects that exist now are never collected: the collector would otherwise
                    # touch (and so copy) every shared page in every child.
                    gc.collect()
                    gc.freeze()


LOW_PRIORITY_SECONDS = 2
# A spare is forked at this priority (or the server's, if lower), prepares itself and waits at it,
# and takes the normal one when a session takes it: during a burst of conversations, replacing the
# spares taken never delays a taken one.
SPARE_NICE = 10


def low_priority_now():
    """The lowest CPU priority, for this process and for its scheduling autogroup: bwrap's
    --new-session makes each server the first of an autogroup, and where autogroups are on the
    scheduler shares the CPU between them, not between processes, so a process's nice alone would
    still leave a slow import half the machine."""
    set_priority(19)


def normal_priority():
    set_priority(0)


def set_priority(nice, autogroup=True):
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        if autogroup:
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(nice))
    except OSError:
        pass  # not root (where no fork server runs), or no autogroups


def fork_server(settings, preload):
    global LIBC
    import ctypes

    LIBC = ctypes.CDLL(None, use_errno=True)  # loaded once here, for every child's prctl
    events_fd = os.dup(1)
    os.dup2(2, 1)  # a module printing while it imports must not corrupt the events
    ForkServer(settings, events_fd).run(settings["preload"], preload)


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


LIBC = None
PR_SET_PDEATHSIG = 1
CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_REC, MS_PRIVATE = 1 << 14, 1 << 18
# The session's id: the pid of its namespace's init as the server sees it (inside, that init is 1
# and the session 2). Names its work directory and memory cgroup and is what kills are sent for.
SESSION_ID = None


def join_memory_cgroup(memcg):
    """A memory cgroup of the session's own inside the server's (see memcg.rs), joined before any
    user code: its processes, memfds and tmpfs pages together stay within the limit. The server
    removes it once the session's processes are gone."""
    if not memcg:
        return
    group = os.path.join(memcg["dir"], "s%d" % SESSION_ID)
    os.mkdir(group)
    for name, value in memcg["limits"]:
        path = os.path.join(group, name)
        if os.path.exists(path):  # a swap limit only exists where swap is accounted
            with open(path, "w") as f:
                f.write(value)
    with open(os.path.join(group, "cgroup.procs"), "w") as f:
        f.write("0")


def remove_memory_cgroup(memcg, pid):
    """True once the session's group is gone (rmdir fails while a killed process still exits)."""
    if not memcg:
        return True
    try:
        os.rmdir(os.path.join(memcg["dir"], "s%d" % pid))
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def private_tmp(binds, size):
    """A /tmp of the session's own. `binds`: the interpreter's directories under the server's /tmp
    (a checkout cloned there), bound again, read-only, into the new one, with the masks inside."""
    kept = [(path, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path in binds]
    mount_tmpfs("/tmp", "size=%d,mode=1777" % size)
    for path, fd in kept:
        os.makedirs(path, exist_ok=True)
        source = b"/proc/self/fd/%d" % fd
        if LIBC.mount(source, path.encode(), None, MS_BIND | MS_REC, None) != 0:
            raise OSError(ctypes_errno(), "binding %s into the private /tmp failed" % path)
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
        if LIBC.mount(None, path.encode(), None, flags, None) != 0:
            raise OSError(ctypes_errno(), "making %s read-only failed" % path)
        os.close(fd)


def mount_tmpfs(path, options):
    flags = MS_NOSUID | MS_NODEV
    if LIBC.mount(b"tmpfs", path.encode(), b"tmpfs", flags, options.encode()) != 0:
        raise OSError(ctypes_errno(), "mounting a tmpfs on %s failed" % path)


def ctypes_errno():
    import ctypes

    return ctypes.get_errno()


def die_with_parent(parent):
    """A child dies with the server: without it, nothing could kill a runaway session. Set again
    after a uid change, which clears it."""
    LIBC.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if os.getppid() != parent:
        os._exit(1)


def spare(listener, taken_w, server_fds, home, missing, net):
    """A spare child: waits for a connection, then becomes that session's worker. As root it is
    first the init of its PID namespace (see `namespace_init`): it makes the session's network and
    mount namespaces and its /proc, and the session's process is its child. Never returns."""
    global SESSION_ID
    code = 0
    # The server's stderr, kept for a crash report: a session points its own fd 2 at captured output.
    report = os.fdopen(os.dup(2), "w", encoding="utf-8")
    try:
        os.setpgid(0, 0)  # its own group: a kill takes whatever it starts with it
        signal.set_wakeup_fd(-1)
        for signum in CONTROL_SIGNALS | {signal.SIGALRM}:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, CONTROL_SIGNALS)
        die_with_parent(os.getppid())
        for fd in server_fds:
            os.close(fd)
        SESSION_ID = os.getpid()
        if os.getuid() == 0:
            # Made while the spare waits (milliseconds): the network namespace the server chose for
            # it, used by no other live session (no interface up), so sessions cannot reach each
            # other through a shared loopback (the server's socket is a path, reachable from any);
            # a mount namespace, for the session's home, /tmp and /proc; and, the server having
            # made this process the first of a PID namespace, a /proc that shows that namespace alone.
            if LIBC.setns(net, CLONE_NEWNET) != 0:
                raise OSError(ctypes_errno(), "setns(CLONE_NEWNET) failed")
            os.close(net)
            if LIBC.unshare(CLONE_NEWNS) != 0:
                raise OSError(ctypes_errno(), "unshare(CLONE_NEWNS) failed")
            if LIBC.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
                raise OSError(ctypes_errno(), "making the mounts private failed")
            SESSION_ID = int(os.readlink("/proc/self"))  # the server's /proc still: its pid there
            if LIBC.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
                raise OSError(ctypes_errno(), "mounting the session's /proc failed")
            session_process = os.fork()
            if session_process != 0:
                report.close()
                namespace_init(session_process, taken_w)
            die_with_parent(os.getppid())  # cleared by the fork
        warm_up(missing)
        conn, _ = listener.accept()
        set_priority(0, autogroup=False)  # the server's group: not this session's to change
        listener.close()
        os.write(taken_w, b"%d\n" % SESSION_ID)
        session(conn, home, missing, os.getppid(), report, taken_w)
    except BaseException:
        code = 1
        if not report.closed:  # closed once user code may run: it must not write there
            try:
                print("session %d failed:" % SESSION_ID, file=report)
                traceback.print_exc(file=report)
                report.flush()
            except OSError:
                pass
    finally:
        os._exit(code)


def namespace_init(session_process, taken_w):
    """The first process of a session's PID namespace: it reaps what the session leaves behind
    (orphans come to it) and ends when the session's process does, which kills whatever else still
    runs in the namespace, however it left its group or session. Its exit is the session's: the
    same code, or, when a signal killed the session, a line naming it to the server before exiting
    (an init cannot die by a signal sent from inside its namespace). Never returns."""
    close_other_descriptors(taken_w)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(1)
        if pid != session_process:
            continue
        if os.WIFSIGNALED(status):
            os.write(taken_w, b"%d %d\n" % (SESSION_ID, os.WTERMSIG(status)))
            os._exit(1)
        os._exit(os.waitstatus_to_exitcode(status))


def warm_up(missing):
    """Runs a session's first steps once on a throwaway worker while the spare waits: the pages they
    touch are copied now, in idle time, not when a conversation's first code block is waiting."""
    worker = Worker(lambda _: None, missing, background=False)
    worker.lazy = []  # never import on its behalf
    reply = worker.op_exec({"code": "x = 6 * 7\nprint(x)\nx"})
    json.loads(json.dumps(reply, ensure_ascii=True))
    linecache.cache.pop("<cell 1>", None)


def session(conn, home, missing, parent, report, taken_w):
    """A child's session: the worker protocol on its connection, after it takes the session's limits."""
    global CAP
    fd = conn.detach()  # the control pipe on fd 0 is replaced by /dev/null just below
    proto_in, proto_out = take_protocol_fds(fd, fd)
    os.close(fd)
    send = sender(proto_out)
    CONFIG.update(json.loads(proto_in.readline() or "{}"))
    CAP = int(CONFIG["cap"])
    workdir = os.path.join(home, "s%d" % SESSION_ID)
    uid = CONFIG.get("drop_uid")
    if uid is not None and os.getuid() == 0:
        # Its disk: a size-capped tmpfs over the server's home, in its own mount namespace, so it
        # can fill neither the host's disk nor another session's space, nothing of it outlives the
        # session (kill -9 of agentopt included), and the server's socket beneath is out of its
        # reach (no session can take a spare). Nothing is made in the home the host sees, so ending
        # a run removes no session's directory: removing one that is a live session's mount point
        # would unmount it there, ~0.5 ms each. /tmp too: nothing one session leaves there reaches
        # the next.
        disk = int(CONFIG.get("file_size_bytes") or 256 << 20)
        mount_tmpfs(home, "size=%d,mode=0755" % disk)
        os.mkdir(workdir, 0o700)
        os.chown(workdir, uid, uid)
        private_tmp(CONFIG["fork_server"].get("tmp_binds") or [], disk)
        join_memory_cgroup(CONFIG["fork_server"].get("memcg"))
    else:
        os.mkdir(workdir, 0o700)
    os.close(taken_w)
    set_limits()
    die_with_parent(parent)
    os.chdir(workdir)
    os.environ["HOME"] = os.environ["TMPDIR"] = workdir
    worker = Worker(send, missing, background=False)
    report.close()
    close_other_descriptors(proto_in, proto_out)
    send({"ready": True, "pid": SESSION_ID})
    serve(proto_in, send, worker)


main()
