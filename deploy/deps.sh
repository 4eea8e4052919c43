#!/usr/bin/env bash
# Install the Debian packages in deploy/packages.txt that are missing, and the
# npm packages the browser tests and the OTLP cross-check use (tests/e2e/web,
# tests/e2e/otlp-js). Idempotent: a machine
# that has everything is left alone and nothing is downloaded.
# Usage: deploy/deps.sh [--no-npm]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

want=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/packages.txt")
missing=()
for p in $want; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

# Node.js may come from elsewhere than Debian (the image ships NodeSource's);
# only ask Debian for it when there is none at all.
command -v npm >/dev/null || missing+=(nodejs npm)

if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}"
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ "${1:-}" != "--no-npm" && -f "$root/tests/e2e/web/package.json" ]]; then
    if [[ ! -d "$root/tests/e2e/web/node_modules/playwright-core" ]]; then
        echo "deps: installing npm packages for the browser tests"
        if [[ -f "$root/tests/e2e/web/package-lock.json" ]]; then
            npm ci --prefix "$root/tests/e2e/web" --no-audit --no-fund --loglevel=error
        else
            npm install --prefix "$root/tests/e2e/web" --no-audit --no-fund --loglevel=error
        fi
    fi
fi

# The OpenTelemetry JS SDK: the independent OTLP encoder tests/e2e/test_otlp.py
# checks tphd's export against.
if [[ "${1:-}" != "--no-npm" && -f "$root/tests/e2e/otlp-js/package.json" ]]; then
    if [[ ! -d "$root/tests/e2e/otlp-js/node_modules/@opentelemetry/exporter-trace-otlp-proto" ]]; then
        echo "deps: installing npm packages for the OTLP cross-check"
        npm ci --prefix "$root/tests/e2e/otlp-js" --no-audit --no-fund --loglevel=error
    fi
fi
