"""3.10/3.11: the floor of the PEP 523 eval-frame hook against PyEval_SetProfile
(issue 15), in instructions per call counted by callgrind.

    python3 tests/bench/bench_floor523.py [--json] [--python PY,PY...]

For each interpreter (3.10 and 3.11 ones; 3.12+ has sys.monitoring), one
process under `valgrind --tool=callgrind` runs bench_callgrind.py's workloads
in these modes, measured the way bench_callgrind.py measures (floor.c's
measure(): zero the counters, call, dump):

  untraced   the workload alone
  profile    an empty PyEval_SetProfile C function (floor.c): what any
             tracer on the profile hook pays before doing anything
  hook523    an eval-frame hook (_PyInterpreterState_SetEvalFrameFunc) that
             counts and calls _PyEval_EvalFrameDefault (floor523.c)
  rec523     that hook plus the least structure-only recording needs
             (floor523.c: thread test, code object, two clock reads, two
             16-byte records, a generator's state after the call)
  cprofile   cProfile.Profile

Instructions per call = (mode - untraced) / calls, calls being the number of
calls of Python functions (fib and loop: their closed forms, which every mode
must have seen). On 3.11 an installed eval-frame hook also stops CPython from
inlining Python-to-Python calls (CALL and CALL_PY_EXACT_ARGS check
interp->eval_frame and go through _PyFunction_Vectorcall / _PyEval_Vector
instead), so hook523 on 3.11 is mostly that: the script reports the hook
function's own instructions (callgrind's self cost of hook_pass) beside it,
and the rest is what losing the inlined call costs.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_callgrind as bc  # noqa: E402

INTERPRETERS = ["/usr/bin/python3"] + [
    "/root/.pyenv/versions/%s/bin/python3" % v for v in ("3.10.13", "3.11.7")
]
MODES = ["untraced", "profile", "hook523", "rec523", "cprofile"]
# The untraced run is measured again last: the base is the smaller of the two
# (a first run may pay for memory the allocator takes from the system).
RUN_ORDER = MODES + ["untraced2"]


def worker(outdir):
    import cProfile
    import gc
    import json.encoder

    import _tpfloor
    import _tpfloor523

    json.encoder.c_make_encoder = None
    results = {"python": "%d.%d.%d" % sys.version_info[:3], "workloads": {}}
    gc.disable()
    for wl in bc.WORKLOADS:
        fn = bc.RUN[wl]
        counts = {}
        for mode in RUN_ORDER:
            for rep in (0, 1):
                label = "%s:%s" % (wl, mode) if rep else None
                if mode.startswith("untraced"):
                    _tpfloor.measure(label, fn) if label else fn()
                elif mode == "profile":
                    _tpfloor.start()
                    _tpfloor.measure(label, fn) if label else fn()
                    counts[mode] = _tpfloor.stop()
                elif mode in ("hook523", "rec523"):
                    _tpfloor523.start(1 if mode == "hook523" else 2)
                    _tpfloor.measure(label, fn) if label else fn()
                    n, nyield, nfinish = _tpfloor523.stop()
                    counts[mode] = n
                    counts[mode + "_yields"] = nyield
                else:
                    p = cProfile.Profile()
                    p.enable()
                    _tpfloor.measure(label, fn) if label else fn()
                    p.disable()
                    stats = [e for e in p.getstats() if not isinstance(e.code, str)]
                    counts[mode] = sum(e.callcount for e in stats)
        results["workloads"][wl] = counts
    gc.enable()
    with open(os.path.join(outdir, "counts.json"), "w") as f:
        json.dump(results, f)


def build(py, outdir):
    bc.build_floor(py, outdir)
    inc = subprocess.check_output(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"], text=True).strip()
    so = os.path.join(outdir, "_tpfloor523" + bc.ext_suffix(py))
    subprocess.check_call(["cc", "-O2", "-fPIC", "-shared", "-I" + inc, "-o", so,
                           os.path.join(HERE, "floor523.c")])


def self_cost(outdir, label, symbol):
    """callgrind's self instructions of symbol in the dump of label."""
    for name in os.listdir(outdir):
        if not name.startswith("cg.out."):
            continue
        path = os.path.join(outdir, name)
        with open(path) as f:
            if "Client Request: %s\n" % label not in f.read(4096):
                continue
        out = subprocess.check_output(["callgrind_annotate", "--threshold=100", path], text=True)
        for line in out.splitlines():
            if re.search(r"\b%s\b" % symbol, line):
                m = re.match(r"\s*([\d,]+)", line)
                if m:
                    return int(m.group(1).replace(",", ""))
    return None


def measure(py):
    with tempfile.TemporaryDirectory(prefix="tpcg523-") as tmp:
        build(py, tmp)
        res = bc.run_worker(py, __file__, tmp, dict(os.environ, PYTHONPATH=tmp))
        res["hook_self"] = {wl: self_cost(tmp, "%s:hook523" % wl, "hook_pass")
                            for wl in ("fib", "loop")}
        return res


def check(res):
    for wl, c in res["workloads"].items():
        where = "%s %s" % (res["python"], wl)
        if wl in bc.CLOSED_FORM:
            n = bc.CLOSED_FORM[wl]
            for mode in MODES[1:]:
                # The hook sees every call: none was inlined past it.
                assert c[mode] == n, "%s: %s saw %d calls, not %d" % (where, mode, c[mode], n)
        for mode in RUN_ORDER:
            assert "%s:%s" % (wl, mode) in res["instructions"], "%s: no dump for %s" % (where, mode)


def per_call(res):
    ir = res["instructions"]
    out = {}
    for wl, c in res["workloads"].items():
        # Python calls: cProfile's count (every resume on 3.10/3.11) is the
        # profile hook's too; the eval hook's includes a generator's creation
        # on 3.11, so it is not the divisor.
        n = c["profile"]
        base = min(ir["%s:untraced" % wl], ir["%s:untraced2" % wl])
        out[wl] = {"calls": n}
        for mode in MODES[1:]:
            out[wl][mode] = (ir["%s:%s" % (wl, mode)] - base) / n
    return out


TITLES = [("profile", "empty PyEval_SetProfile function"),
          ("hook523", "eval-frame hook, pass-through"),
          ("rec523", "eval-frame hook + minimal recording"),
          ("cprofile", "cProfile")]


def table(res):
    pc = res["per_call"]
    lines = ["| %s | %s |" % (res["python"], " | ".join(
                 "%s (%d calls)" % (w, pc[w]["calls"]) for w in bc.WORKLOADS)),
             "|---|" + "---|" * len(bc.WORKLOADS)]
    for mode, title in TITLES:
        lines.append("| %s | %s |" % (title, " | ".join(
            "%.0f (%.2f×)" % (pc[w][mode], pc[w][mode] / pc[w]["cprofile"])
            for w in bc.WORKLOADS)))
    hs = res["hook_self"]
    if hs.get("fib") is not None:
        lines.append("| … of which hook_pass itself | %s |" % " | ".join(
            "%.0f" % (hs[w] / pc[w]["calls"]) if w in hs and hs[w] is not None else ""
            for w in bc.WORKLOADS))
    return "\n".join(lines)


def main():
    argv = sys.argv[1:]
    if argv and argv[0] == "--worker":
        worker(argv[1])
        return
    pys = [p for p in INTERPRETERS if os.path.exists(p)]
    if "--python" in argv:
        pys = argv[argv.index("--python") + 1].split(",")
    all_res = []
    for py in pys:
        res = measure(py)
        check(res)
        res["per_call"] = per_call(res)
        all_res.append(res)
    if "--json" in argv:
        print(json.dumps(all_res, indent=2))
        return
    print("Instructions per call over the untraced run (callgrind); in brackets, the ratio "
          "to cProfile in the same run.\n")
    for res in all_res:
        print(table(res))
        print()


if __name__ == "__main__":
    main()
