#!/usr/bin/env bash
# tracepatch in one command: install what is missing, build, start a user
# tphd if none is running, trace a small demo service, then show what the
# daemon kept (`tph logs`, `tph tree`) and the link to its report.
#
# Usage: deploy/quickstart.sh [--no-daemon]
#   --no-daemon  only build and trace in process (nothing is started)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
builddir=${TP_BUILDDIR:-$root/build}
use_daemon=1
for a in "$@"; do
    case $a in
    --no-daemon) use_daemon=0 ;;
    -h | --help)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "quickstart.sh: unknown option '$a' (try --help)" >&2
        exit 2
        ;;
    esac
done

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Installing what is missing"
deploy/deps.sh --no-npm

step "Building into $builddir"
if [[ ! -f $builddir/build.ninja ]]; then
    meson setup "$builddir" -Dpython=/usr/bin/python3 >/dev/null
fi
ninja -C "$builddir" >/dev/null
echo "built: $builddir/daemon/tphd/tphd, $builddir/daemon/tph/tph, $builddir/client_ext/tracepatch"

export PYTHONPATH="$builddir/client_ext${PYTHONPATH:+:$PYTHONPATH}"
tph=$builddir/daemon/tph/tph
tphd=$builddir/daemon/tphd/tphd

if ((use_daemon)); then
    step "Starting a user tphd (unless one is running)"
    if "$tph" status >/dev/null 2>&1; then
        echo "tphd is already running"
    else
        state=${XDG_STATE_HOME:-$HOME/.local/state}/tracepatch
        mkdir -p "$state"
        chmod 700 "$state"
        nohup "$tphd" >>"$state/tphd.log" 2>&1 </dev/null &
        for _ in $(seq 50); do
            "$tph" status >/dev/null 2>&1 && break
            sleep 0.1
        done
        if ! "$tph" status >/dev/null 2>&1; then
            echo "tphd did not start; its log:" >&2
            tail -n 20 "$state/tphd.log" >&2
            exit 1
        fi
        echo "started tphd (pid $!), log: $state/tphd.log"
    fi
    "$tph" status
fi

step "Tracing the demo service (deploy/demo.py)"
/usr/bin/python3 deploy/demo.py

if ((use_daemon)); then
    step "tph logs"
    "$tph" logs --limit 5
    id=$("$tph" logs --json --label quickstart-demo --limit 1 |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["traces"][0]["id"])')

    step "tph tree $id --self-time"
    "$tph" tree "$id" --self-time

    step "The report in your browser"
    "$tph" open "$id"
fi
