#!/usr/bin/env bash
# Install what is missing, build, and run every test tracepatch has:
#   1. formatting (clang-format) and the systemd units (systemd-analyze verify)
#   2. the C unit tests (Criterion), through meson
#   3. pytest under every interpreter found (Debian's python3, pyenv 3.10-3.13),
#      each against the extension built for it
#   4. end-to-end tests: real tphd, real tph, real extension, real Chromium
#   5. under CI=true also: the C tests with ASan/UBSan, and the wire, JSON and OTLP fuzzers
# It ends with one line "N passed, N failed" and exits non-zero if anything
# failed. Idempotent: run it as often as you like.
#
# Usage: deploy/check.sh [--no-deps] [--fast]
#   --no-deps  do not install anything (fail if something is missing)
#   --fast     Debian's python3 only, no sanitizers, no fuzzing
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
builddir=${TP_BUILDDIR:-$root/build}
logdir=$builddir/check-logs
deps=1
fast=0
for a in "$@"; do
    case $a in
    --no-deps) deps=0 ;;
    --fast) fast=1 ;;
    -h | --help)
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "check.sh: unknown option '$a' (try --help)" >&2
        exit 2
        ;;
    esac
done
ci=0
[[ "${CI:-}" == "true" ]] && ci=1

passed=0
failed=0
failures=()

say() { printf '\n==> %s\n' "$*"; }
pass() { passed=$((passed + $1)); }
fail() {
    failed=$((failed + $1))
    failures+=("$2")
}

# Add the counts of a test-runner log: pytest's junit XML, meson's testlog
# JSON, or node's TAP summary.
count_junit() { # name file
    local p f
    read -r p f < <(python3 - "$2" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    r = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1); sys.exit()
suites = [r] if r.tag == "testsuite" else list(r)
t = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skip = sum(int(s.get("skipped", 0)) for s in suites)
print(t - bad - skip, bad)
EOF
    )
    pass "$p"
    ((f)) && fail "$f" "$1"
    echo "    $1: $p passed, $f failed"
}

count_meson() { # name builddir
    local p f
    read -r p f < <(python3 - "$2/meson-logs/testlog.json" <<'EOF'
import json, sys
ok = bad = 0
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        res = r.get("result")
        if res == "SKIP":
            continue
        # TAP tests (Criterion --tap) count their test cases; others count once.
        out = r.get("stdout") or ""
        t_ok = sum(1 for l in out.splitlines() if l.startswith("ok "))
        t_bad = sum(1 for l in out.splitlines() if l.startswith("not ok "))
        if t_ok or t_bad:
            ok += t_ok
            bad += t_bad
            if res not in ("OK", "EXPECTEDFAIL") and not t_bad:
                bad += 1  # crashed or timed out after its last reported case
        elif res in ("OK", "EXPECTEDFAIL"):
            ok += 1
        else:
            bad += 1
except OSError:
    bad = 1
print(ok, bad)
EOF
    )
    pass "$p"
    ((f)) && fail "$f" "$1"
    echo "    $1: $p passed, $f failed"
}

step() { # name command... : a single pass/fail check, output to the log
    local name=$1
    shift
    local log="$logdir/${name//[^A-Za-z0-9_.-]/_}.log"
    if "$@" >"$log" 2>&1; then
        pass 1
        echo "    $name: ok"
    else
        fail 1 "$name"
        echo "    $name: FAILED (log: $log)"
        tail -n 30 "$log" | sed 's/^/      | /'
    fi
}

# ---------------------------------------------------------------- deps
if ((deps)); then
    say "dependencies"
    deploy/deps.sh || {
        echo "check.sh: installing dependencies failed" >&2
        exit 1
    }
fi
mkdir -p "$logdir"

# ---------------------------------------------------------------- static checks
say "static checks"
mapfile -t csrc < <(git ls-files '*.c' '*.h' 2>/dev/null)
step clang-format clang-format --dry-run --Werror "${csrc[@]}"

# ---------------------------------------------------------------- build
say "build ($builddir)"
if [[ ! -f $builddir/build.ninja ]]; then
    step meson-setup meson setup "$builddir" -Dpython=/usr/bin/python3
else
    step meson-reconfigure meson setup --reconfigure "$builddir" -Dpython=/usr/bin/python3
fi
step build ninja -C "$builddir"

# The units as installed, but pointing at the tphd just built (verify checks
# that ExecStart exists).
verify_units() {
    local t rc=0
    t=$(mktemp -d)
    mkdir -p "$t/system" "$t/user" "$t/run"
    chmod 700 "$t/run"
    for u in deploy/systemd/*.in deploy/systemd/*.socket; do
        sed "s#@bindir@#$builddir/daemon/tphd#g" "$u" >"$t/system/$(basename "${u%.in}")"
    done
    for u in deploy/systemd/user/*; do
        sed "s#@bindir@#$builddir/daemon/tphd#g" "$u" >"$t/user/$(basename "${u%.in}")"
    done
    systemd-analyze verify --man=no "$t"/system/* || rc=1
    XDG_RUNTIME_DIR="$t/run" systemd-analyze --user verify --man=no "$t"/user/* || rc=1
    rm -rf "$t"
    return $rc
}
step systemd-units verify_units

# ---------------------------------------------------------------- C unit tests
say "C unit tests (Criterion)"
meson test -C "$builddir" --no-rebuild --print-errorlogs --suite unit --suite daemon \
    >"$logdir/unit.log" 2>&1 ||
    tail -n 40 "$logdir/unit.log" | sed 's/^/      | /'
count_meson unit "$builddir"

# ---------------------------------------------------------------- pytest per interpreter
# The last lines of a pytest log, and the name of every test that failed
# with the first lines of its assertion, so a CI log says what broke.
pytest_tail() {
    grep -E '^(FAILED|ERROR) ' "$1" | head -n 20 | cut -c1-300 | sed 's/^/      | /'
    tail -n 3 "$1" | sed 's/^/      | /'
}
pyroot=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
interpreters=(/usr/bin/python3)
if ((!fast)); then
    for v in 3.10 3.11 3.12 3.13; do
        for p in "$pyroot"/versions/$v.*/bin/python3; do
            [[ -x $p ]] && interpreters+=("$p") && break
        done
    done
fi
tested_new=0
for py in "${interpreters[@]}"; do
    ver=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
    say "pytest under Python $ver ($py)"
    if [[ $py == /usr/bin/python3 ]]; then
        pybuild=$builddir
    else
        pybuild=$builddir/py-$ver
        opts=(-Dpython="$py" -Ddaemon=false -Dtests=false -Dbench=false)
        if [[ -f $pybuild/build.ninja ]]; then
            step "setup-py$ver" meson setup --reconfigure "$pybuild" "${opts[@]}"
        else
            step "setup-py$ver" meson setup "$pybuild" "${opts[@]}"
        fi
        step "build-py$ver" ninja -C "$pybuild"
    fi
    PYTHONPATH="$pybuild/client_ext:/usr/lib/python3/dist-packages" TRACEPATCH_BUILD="$builddir" \
        "$py" -m pytest -q -p no:cacheprovider --junitxml="$logdir/pytest-$ver.xml" tests/py \
        >"$logdir/pytest-$ver.log" 2>&1
    rc=$?
    pytest_tail "$logdir/pytest-$ver.log"
    if ((rc == 5)); then
        echo "    pytest-$ver: no tests collected"
    elif ((rc != 0 && rc != 1)); then
        fail 1 "pytest-$ver (exit $rc)"
    else
        count_junit "pytest-$ver" "$logdir/pytest-$ver.xml"
        case $ver in 3.1[2-9].*) tested_new=1 ;; esac
    fi
done
if ((ci && !tested_new)); then
    fail 1 "no Python 3.12+ interpreter was tested"
    echo "    CI needs a Python 3.12+ interpreter (pyenv install 3.12)"
fi

# ---------------------------------------------------------------- end-to-end
if [[ -d tests/e2e ]]; then
    say "end-to-end (tphd, tph, extension)"
    PYTHONPATH="$builddir/client_ext:/usr/lib/python3/dist-packages" TRACEPATCH_BUILD="$builddir" \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$logdir/e2e.xml" tests/e2e \
        >"$logdir/e2e.log" 2>&1
    rc=$?
    pytest_tail "$logdir/e2e.log"
    if ((rc == 0 || rc == 1)); then
        count_junit e2e "$logdir/e2e.xml"
    elif ((rc != 5)); then
        fail 1 "e2e (pytest exit $rc)"
    fi
    if [[ -f tests/e2e/web/package.json ]]; then
        say "browser tests (headless Chromium)"
        TRACEPATCH_BUILD="$builddir" node --test --test-reporter=tap tests/e2e/web/ \
            >"$logdir/browser.log" 2>&1
        p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$logdir/browser.log" | tail -1)
        f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$logdir/browser.log" | tail -1)
        pass "${p:-0}"
        if [[ -z $p ]]; then
            fail 1 "browser tests did not run"
        elif ((${f:-0})); then
            fail "$f" browser
        fi
        echo "    browser: ${p:-0} passed, ${f:-?} failed"
        ((${f:-1})) && tail -n 40 "$logdir/browser.log" | sed 's/^/      | /'
    fi
fi

# ---------------------------------------------------------------- CI extras
if ((ci && !fast)); then
    say "C tests and tphd end-to-end tests under ASan/UBSan"
    asan=$builddir/asan
    if [[ ! -f $asan/build.ninja ]]; then
        step asan-setup meson setup "$asan" -Db_sanitize=address,undefined -Db_lundef=false \
            -Dextension=false -Dbench=false
    fi
    step asan-build ninja -C "$asan"
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C "$asan" --no-rebuild --print-errorlogs >"$logdir/asan.log" 2>&1 ||
        tail -n 40 "$logdir/asan.log" | sed 's/^/      | /'
    count_meson asan "$asan"
    # Criterion reports a test that leaks or trips UBSan in its forked child as
    # passed: the sanitizers' own reports decide.
    if grep -qE 'ERROR: (LeakSanitizer|AddressSanitizer)|runtime error:' \
        "$asan/meson-logs/testlog.txt"; then
        fail 1 "sanitizer reports in $asan/meson-logs/testlog.txt"
        grep -E -m5 'ERROR: (LeakSanitizer|AddressSanitizer)|runtime error:' \
            "$asan/meson-logs/testlog.txt" | sed 's/^/      | /'
    else
        pass 1
        echo "    sanitizer reports: none"
    fi

    if [[ -f tests/fuzz/fuzz_wire.c ]]; then
        say "wire fuzzer (libFuzzer, bounded)"
        fz=$builddir/fuzz
        if [[ ! -f $fz/build.ninja ]]; then
            step fuzz-setup env CC=clang-14 meson setup "$fz" -Dfuzz=true -Dtests=false \
                -Dbench=false -Dextension=false -Ddaemon=false \
                -Db_sanitize=address,undefined -Db_lundef=false
        fi
        step fuzz-build ninja -C "$fz" tests/fuzz/fuzz_wire tests/fuzz/fuzz_json tests/fuzz/fuzz_otlp
        work=$(mktemp -d)
        cp tests/fuzz/corpus/* "$work"/ 2>/dev/null
        step fuzz-wire "$fz/tests/fuzz/fuzz_wire" -max_total_time="${TP_FUZZ_SECONDS:-120}" \
            -max_len=65536 -rss_limit_mb=2048 -dict=tests/fuzz/wire.dict "$work"
        rm -rf "$work"
        # The JSON re-emitter (proto/json.c) on client config text.
        work=$(mktemp -d)
        cp tests/fuzz/corpus-json/* "$work"/ 2>/dev/null
        step fuzz-json "$fz/tests/fuzz/fuzz_json" -max_total_time="${TP_FUZZ_JSON_SECONDS:-30}" \
            -max_len=4096 -rss_limit_mb=2048 "$work"
        rm -rf "$work"
        # The OTLP encoder (daemon/tphd/otlp) on hostile trace text.
        work=$(mktemp -d)
        cp tests/fuzz/corpus_otlp/* "$work"/ 2>/dev/null
        step fuzz-otlp "$fz/tests/fuzz/fuzz_otlp" -max_total_time="${TP_FUZZ_OTLP_SECONDS:-30}" \
            -max_len=65536 -rss_limit_mb=2048 "$work"
        rm -rf "$work"
    fi
fi

# ---------------------------------------------------------------- summary
echo
if ((${#failures[@]})); then
    echo "Failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
((failed == 0))
