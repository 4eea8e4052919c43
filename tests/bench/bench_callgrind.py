"""Instructions per call, counted by callgrind, for tracepatch and its peers.

    python3 tests/bench/bench_callgrind.py [--json | --markdown] [--builds DIR,DIR...]
        [--python PY,PY...] [--viztracer DIR]
    python3 tests/bench/bench_callgrind.py --from RESULTS.json [--markdown]

--markdown prints the README's performance table; --json the raw counts, which
--from renders again (after the same checks).

For every interpreter that has a built extension (a build*/ directory of this
repository, release builds preferred: `meson setup build-rel-312
-Dpython=/root/.pyenv/versions/3.12.1/bin/python3 -Ddaemon=false -Dtests=false
-Dbench=false --buildtype=release`), one process runs under
`valgrind --tool=callgrind` and measures, on five small workloads (fib, a loop
calling a two-argument function, an object-heavy workload, email parsing, the
pure-Python json encoder) and, per yield/resume event, on two suspension
workloads (gen: a generator yielding GEN_N values to a for loop; await: a
coroutine driven by send() awaiting a generator-based coroutine that yields
AWAIT_N times, so both suspend and resume at every step), these modes one
after another:

  untraced    the workload alone
  floor       the cheapest hook of its kind (floor.c: empty C sys.monitoring
              callbacks on 3.12+, an empty PyEval_SetProfile function before;
              3.10/3.11 record with the eval-frame hook, whose own floor
              bench_floor523.py measures)
  cprofile    cProfile.Profile
  structure   tracepatch, show_args=False, show_return=False
  args        tracepatch, show_args=True, show_return=True
  viz         VizTracer's C tracer, ignore_c_function=True (if --viztracer
              names a directory holding its snaptrace module for this
              interpreter; its code is never part of this repository)
  viz_args    the same with log_func_args and log_func_retval

Each mode runs once to warm up and once measured; floor.c's measure() zeroes
callgrind's counters before the measured call and dumps them after it, so a
figure is the instructions of that call and nothing else. Instructions per
call = (mode - untraced) / calls. Instruction counts do not drift with machine
load the way CPU time does; clock reads and system calls are the wall-clock
benchmark's business (bench_ext.py).

Before printing anything, it asserts what was measured: every tool saw the
same number of calls (tracepatch's call_count in both modes, the floor's and
cProfile's counts, which on 3.10/3.11 or with generators may only be larger;
fib and loop also against their closed forms), no tracepatch limit was hit
and VizTracer's buffer did not wrap. Per call means per call tracepatch
recorded. For gen and await, per event means per sys.monitoring event the
workload raises (each call's start and return, each yield and resume),
known in closed form and checked against tracepatch's YIELD and RESUME
records.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
INTERPRETERS = ["/usr/bin/python3"] + [
    "/root/.pyenv/versions/%s/bin/python3" % v for v in ("3.10.13", "3.11.7", "3.12.1", "3.13.0")
]
MODES = ["untraced", "floor", "cprofile", "structure", "args", "viz", "viz_args"]
WORKLOADS = ["fib", "loop", "OO", "email", "json"]
EVENT_WORKLOADS = ["gen", "await"]  # figures per yield/resume event

# ---------------------------------------------------------------- workloads
FIB_N = 15
LOOP_N = 2000


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def fib_calls(n):
    return 1 if n < 2 else 1 + fib_calls(n - 1) + fib_calls(n - 2)


def two(a, b):
    return a if a & 1 else b


def run_fib():
    fib(FIB_N)


def run_loop():
    f = two
    for i in range(LOOP_N):
        f(i, "xy")


class Vec:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def add(self, o):
        return Vec(self.x + o.x, self.y + o.y)

    def scale(self, k):
        return Vec(self.x * k, self.y * k)

    def norm(self):
        return (self.x * self.x + self.y * self.y) ** 0.5


class Particle:
    def __init__(self, pos, vel):
        self.pos = pos
        self.vel = vel

    def step(self, dt):
        self.pos = self.pos.add(self.vel.scale(dt))
        return self.pos.norm()


def run_oo():
    ps = []
    for i in range(20):
        ps.append(Particle(Vec(float(i), 1.5), Vec(0.25, -0.5)))
    total = 0.0
    for _ in range(10):
        for p in ps:
            total += p.step(0.1)
    return total


MESSAGE = (
    "From: Ada <ada@example.com>\n"
    "To: Bob <bob@example.org>\n"
    "Subject: the numbers\n"
    "Date: Mon, 1 Dec 2025 10:00:00 +0000\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "\n"
    "Hello Bob,\nhere they are.\n"
)


def run_email():
    import email

    for _ in range(3):
        m = email.message_from_string(MESSAGE)
        m.get("Subject")
        m.get_content_type()


JSON_DATA = {
    "name": "bench",
    "values": [1, 2.5, "s", None, True],
    "items": [{"id": i, "pair": [i * 0.5, i * 1.25, i], "tag": "t%d" % i} for i in range(15)],
}


def run_json():
    import json.encoder

    enc = json.encoder.JSONEncoder()
    return "".join(enc.iterencode(JSON_DATA))


GEN_N = 2000
AWAIT_N = 1000


def counter(n):
    for i in range(n):
        yield i


def run_gen():
    total = 0
    for v in counter(GEN_N):
        total += v
    return total


@types.coroutine
def ticks(n):
    for i in range(n):
        yield i


async def waiter(n):
    return await ticks(n)


def run_await():
    c = waiter(AWAIT_N)
    try:
        while True:
            c.send(None)
    except StopIteration:
        pass


RUN = {"fib": run_fib, "loop": run_loop, "OO": run_oo, "email": run_email, "json": run_json,
       "gen": run_gen, "await": run_await}
CLOSED_FORM = {"fib": fib_calls(FIB_N) + 1, "loop": LOOP_N + 1}  # + the run_* function
# The suspension workloads: calls recorded (run_* included), suspensions
# (YIELD records, each matched by a RESUME; await: waiter and ticks at each
# step) and sys.monitoring events (a start and a return per call, a yield
# and a resume per suspension).
GEN_CALLS = {"gen": 2, "await": 3}
SUSPENSIONS = {"gen": GEN_N, "await": 2 * AWAIT_N}
EVENTS = {w: 2 * GEN_CALLS[w] + 2 * SUSPENSIONS[w] for w in EVENT_WORKLOADS}


# ------------------------------------------------------- inside valgrind
def worker(outdir, vizdir):
    import cProfile
    import gc
    import json.encoder

    import _tpfloor
    from tracepatch import _tracepatch

    json.encoder.c_make_encoder = None  # the pure-Python encoder, generators and all
    snaptrace = None
    if vizdir:
        sys.path.insert(0, vizdir)
        try:
            import snaptrace
        except ImportError:
            snaptrace = None
    mon = getattr(sys, "monitoring", None)
    floor_cbs = _tpfloor.callbacks() if mon else None
    FLOOR_TOOL = 5

    def floor_on():
        if mon:
            mon.use_tool_id(FLOOR_TOOL, "tpfloor")
            ev = mon.events
            mon.register_callback(FLOOR_TOOL, ev.PY_START, floor_cbs[0])
            others = (ev.PY_RESUME, ev.PY_RETURN, ev.PY_YIELD, ev.PY_UNWIND, ev.PY_THROW,
                      ev.EXCEPTION_HANDLED)
            mask = ev.PY_START
            for e in others:
                mon.register_callback(FLOOR_TOOL, e, floor_cbs[1])
                mask |= e
            mon.set_events(FLOOR_TOOL, mask)
        _tpfloor.start()

    def floor_off():  # after _tpfloor.stop(): this call is not to be counted
        if mon:
            mon.set_events(FLOOR_TOOL, 0)
            mon.free_tool_id(FLOOR_TOOL)

    results = {"python": "%d.%d.%d" % sys.version_info[:3], "hook": _tracepatch.HOOK,
               "viztracer": snaptrace is not None, "workloads": {}}
    gc.disable()
    for wl in WORKLOADS + EVENT_WORKLOADS:
        fn = RUN[wl]
        counts = {}
        for mode in MODES:
            if mode.startswith("viz") and snaptrace is None:
                continue
            for rep in (0, 1):
                # Called inline, not through a helper: a Python helper would be
                # one more call that every tool counts.
                label = "%s:%s" % (wl, mode) if rep else None
                if mode == "untraced":
                    _tpfloor.measure(label, fn) if label else fn()
                elif mode == "floor":
                    floor_on()
                    _tpfloor.measure(label, fn) if label else fn()
                    counts[mode] = _tpfloor.stop()
                    floor_off()
                elif mode == "cprofile":
                    p = cProfile.Profile()
                    p.enable()
                    _tpfloor.measure(label, fn) if label else fn()
                    p.disable()
                    stats = [e for e in p.getstats() if not isinstance(e.code, str)]
                    counts[mode] = sum(e.callcount for e in stats)
                elif mode in ("structure", "args"):
                    on = mode == "args"
                    s = _tracepatch.Session(max_calls=1_000_000, max_depth=1000, max_time=600.0,
                                            show_args=on, show_return=on)
                    s.start()
                    _tpfloor.measure(label, fn) if label else fn()
                    s.stop()
                    counts[mode] = s.call_count
                    counts[mode + "_limited"] = s.was_limited
                    if wl in EVENT_WORKLOADS:
                        kinds = [e[0] for e in s._raw_events()]
                        counts[mode + "_yields"] = kinds.count(5)  # TP_EV_YIELD
                        counts[mode + "_resumes"] = kinds.count(6)  # TP_EV_RESUME
                else:
                    entries = 1_000_000
                    t = snaptrace.Tracer(entries)
                    t.ignore_c_function = True
                    t.log_func_args = t.log_func_retval = mode == "viz_args"
                    t.start()
                    _tpfloor.measure(label, fn) if label else fn()
                    t.stop(None)
                    events = [e for e in t.load() if e.get("ph") == "X"]
                    t.clear()
                    counts[mode] = len(events)
                    counts[mode + "_limited"] = len(events) >= entries - 10
        results["workloads"][wl] = counts
    gc.enable()
    with open(os.path.join(outdir, "counts.json"), "w") as f:
        json.dump(results, f)


# ------------------------------------------------------------- the driver
def ext_suffix(py):
    return subprocess.check_output(
        [py, "-c", "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))"],
        text=True).strip()


def find_build(py, builds):
    """The build directory holding the extension for py (release builds first)."""
    suffix = ext_suffix(py)
    found = []
    for d in builds:
        so = os.path.join(d, "client_ext", "tracepatch", "_tracepatch" + suffix)
        if not os.path.exists(so):
            continue
        opts = os.path.join(d, "meson-info", "intro-buildoptions.json")
        try:
            with open(opts) as f:
                values = {o["name"]: o["value"] for o in json.load(f)}
        except (OSError, ValueError):
            continue
        # Two interpreters may share a suffix (Debian's 3.11 and pyenv's).
        if os.path.realpath(shutil.which(values.get("python", "")) or "") != os.path.realpath(py):
            continue
        found.append((values.get("buildtype") != "release", d))
    return sorted(found)[0][1] if found else None


def build_floor(py, outdir):
    inc = subprocess.check_output(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"], text=True).strip()
    so = os.path.join(outdir, "_tpfloor" + ext_suffix(py))
    subprocess.check_call(["cc", "-O2", "-fPIC", "-shared", "-I" + inc, "-o", so,
                           os.path.join(HERE, "floor.c")])


def read_dumps(outdir):
    """{label: instructions} from callgrind's client-request dumps."""
    got = {}
    for name in os.listdir(outdir):
        if not name.startswith("cg.out."):
            continue
        label, total = None, None
        with open(os.path.join(outdir, name)) as f:
            for line in f:
                m = re.match(r"desc: Trigger: Client Request: (\S+)", line)
                if m:
                    label = m.group(1)
                m = re.match(r"(?:summary|totals): (\d+)", line)
                if m:
                    total = int(m.group(1))
        if label and total is not None:
            got[label] = total
    return got


def run_worker(py, script, tmp, env, *args):
    """Run script's --worker under callgrind (counting only between the
    worker's own dumps) with its results in tmp: the counts.json it wrote,
    with "instructions", each dump's total by label (read_dumps)."""
    env = dict(env, PYTHONHASHSEED="0")
    env.pop("PYTHONSTARTUP", None)
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
           "--callgrind-out-file=" + os.path.join(tmp, "cg.out"),
           py, os.path.abspath(script), "--worker", tmp, *args]
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit("%s under callgrind failed (%d):\n%s" % (py, p.returncode,
                                                                    p.stderr[-3000:]))
    with open(os.path.join(tmp, "counts.json")) as f:
        res = json.load(f)
    res["instructions"] = read_dumps(tmp)
    return res


def measure_interpreter(py, build, vizdir):
    with tempfile.TemporaryDirectory(prefix="tpcg-") as tmp:
        build_floor(py, tmp)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(build, "client_ext"), tmp])
        env["TRACEPATCH_ENABLED"] = "1"
        res = run_worker(py, __file__, tmp, env, vizdir or "")
        res["build"] = os.path.relpath(build, ROOT)
        return res


def check(res):
    """Assert what was measured before any figure is printed."""
    ir = res["instructions"]
    monitoring = res["hook"] == "sys.monitoring"
    for wl, c in res["workloads"].items():
        n = c["structure"]
        where = "%s %s" % (res["python"], wl)
        if wl in CLOSED_FORM:
            assert n == CLOSED_FORM[wl], "%s: %d calls, not %d" % (where, n, CLOSED_FORM[wl])
        if wl in GEN_CALLS:
            assert n == GEN_CALLS[wl], "%s: %d calls, not %d" % (where, n, GEN_CALLS[wl])
        # A profile function's "call" and cProfile's count include every resume
        # of a generator; PY_START does not.
        if monitoring or wl in CLOSED_FORM:
            assert c["floor"] == n, "%s: the floor saw %d calls, not %d" % (where, c["floor"], n)
        else:
            assert c["floor"] >= n, "%s: the floor saw %d calls < %d" % (where, c["floor"], n)
        if wl in CLOSED_FORM:
            assert c["cprofile"] == n, "%s: cProfile saw %d calls, not %d" % (
                where, c["cprofile"], n)
        else:
            assert c["cprofile"] >= n, "%s: cProfile saw %d calls < %d" % (where, c["cprofile"], n)
        for mode in ("structure", "args"):
            assert c[mode] == n, "%s: tracepatch %s recorded %d calls, not %d" % (
                where, mode, c[mode], n)
            assert not c[mode + "_limited"], "%s: tracepatch %s hit a limit" % (where, mode)
            if wl in EVENT_WORKLOADS:
                k = SUSPENSIONS[wl]
                assert c[mode + "_yields"] == k and c[mode + "_resumes"] == k, (
                    "%s: tracepatch %s recorded %d yields and %d resumes, not %d" % (
                        where, mode, c[mode + "_yields"], c[mode + "_resumes"], k))
        for mode in ("viz", "viz_args"):
            if mode in c:
                assert c[mode] >= n and not c[mode + "_limited"], (
                    "%s: VizTracer %s logged %d events for %d calls" % (where, mode, c[mode], n))
        for mode in MODES:
            if mode in c or mode == "untraced":
                assert "%s:%s" % (wl, mode) in ir, "%s: no callgrind dump for %s" % (where, mode)


def per_call(res):
    """{workload: {mode: instructions per call (per event for EVENT_WORKLOADS)
    over untraced}}."""
    ir = res["instructions"]
    out = {}
    for wl, c in res["workloads"].items():
        n = EVENTS[wl] if wl in EVENT_WORKLOADS else c["structure"]
        base = ir["%s:untraced" % wl]
        out[wl] = {"calls": n}
        for mode in MODES[1:]:
            key = "%s:%s" % (wl, mode)
            if key in ir:
                out[wl][mode] = (ir[key] - base) / n
    return out


ROWS = [
    ("floor", "empty C callbacks (the floor)", False),
    ("cprofile", "cProfile", False),
    ("structure", "tracepatch, structure only", True),
    ("viz", "VizTracer, ignore_c_function=True", True),
    ("args", "tracepatch, args + returns", True),
    ("viz_args", "VizTracer, log_func_args + log_func_retval", True),
]


def table(res, pc):
    wls = [w for w in WORKLOADS + EVENT_WORKLOADS if w in pc]
    lines = ["| %s (%s, %s) | %s |" % (res["python"], res["hook"], res["build"],
                                       " | ".join("%s (%d %s)" % (
                                           w, pc[w]["calls"],
                                           "events" if w in EVENT_WORKLOADS else "calls")
                                           for w in wls)),
             "|---|" + "---|" * len(wls)]
    for mode, title, ratio in ROWS:
        if mode not in pc[WORKLOADS[0]]:
            continue
        cells = []
        for w in wls:
            v = pc[w][mode]
            cp = pc[w]["cprofile"]
            cells.append("%.0f (%.2f×)" % (v, v / cp) if ratio else "%.0f" % v)
        lines.append("| %s | %s |" % (title, " | ".join(cells)))
    return "\n".join(lines)


# The README's performance table: (row title, mode).
README_ROWS = [
    ("structure only", "structure"),
    ("args + returns", "args"),
    ("VizTracer, ignore_c_function", "viz"),
    ("VizTracer, log_func_args + retval", "viz_args"),
]


def markdown(all_res):
    """The README's table: per interpreter and workload, instructions per call
    and the ratio to cProfile in the same run."""
    out = ["| interpreter | mode | " + " | ".join(WORKLOADS) + " |",
           "|---|---|" + "---|" * len(WORKLOADS)]
    for wls in (WORKLOADS, EVENT_WORKLOADS):
        if wls is EVENT_WORKLOADS:
            if not all(w in r["per_call"] for r in all_res for w in wls):
                break  # measured before these workloads existed
            out += ["", "Suspension workloads, per sys.monitoring event (a start, return, yield "
                    "or resume):", "",
                    "| interpreter | mode | " + " | ".join(wls) + " |",
                    "|---|---|" + "---|" * len(wls)]
        for res in all_res:
            pc = res["per_call"]
            py = "%s (%s)" % (res["python"], res["hook"])
            out.append("| %s | floor / cProfile | %s |" % (py, " | ".join(
                "%.0f / %.0f" % (pc[w]["floor"], pc[w]["cprofile"]) for w in wls)))
            for title, mode in README_ROWS:
                if mode not in pc[WORKLOADS[0]]:
                    continue
                out.append("| %s | %s | %s |" % (py, title, " | ".join(
                    "%.0f (%.2f×)" % (pc[w][mode], pc[w][mode] / pc[w]["cprofile"])
                    for w in wls)))
    return "\n".join(out)


def main():
    argv = sys.argv[1:]
    if argv and argv[0] == "--worker":
        worker(argv[1], argv[2] if len(argv) > 2 else "")
        return
    if "--from" in argv:
        # Render figures measured earlier (a --json output) again.
        with open(argv[argv.index("--from") + 1]) as f:
            all_res = json.load(f)
        for res in all_res:
            check(res)
        print(markdown(all_res) if "--markdown" in argv else
              "\n\n".join(table(r, r["per_call"]) for r in all_res))
        return
    as_json = "--json" in argv
    vizdir = argv[argv.index("--viztracer") + 1] if "--viztracer" in argv else ""
    if "--builds" in argv:
        builds = [os.path.abspath(d) for d in argv[argv.index("--builds") + 1].split(",")]
    else:
        builds = sorted(os.path.join(ROOT, d) for d in os.listdir(ROOT) if d.startswith("build"))
    pys = [p for p in INTERPRETERS if os.path.exists(p)]
    if "--python" in argv:
        pys = argv[argv.index("--python") + 1].split(",")
    all_res = []
    for py in pys:
        build = find_build(py, builds)
        if not build:
            print("# %s: no build of the extension found, skipped" % py, file=sys.stderr)
            continue
        res = measure_interpreter(py, build, vizdir)
        check(res)
        res["per_call"] = per_call(res)
        all_res.append(res)
    if as_json:
        print(json.dumps(all_res, indent=2))
        return
    if "--markdown" in argv:
        print(markdown(all_res))
        return
    print("Instructions per call over the untraced run (callgrind); in brackets, the ratio "
          "to cProfile in the same run.\n")
    for res in all_res:
        print(table(res, res["per_call"]))
        print()


if __name__ == "__main__":
    main()
