#!/bin/sh
# Real Elasticsearch clients nobody here wrote (Debian's elasticsearch-py 7.17,
# @elastic/elasticsearch 8 from npm) against one `espipe serve` on a free
# loopback port, and the version-specific ones (elasticsearch-py 7.17,
# @opensearch-project/opensearch 2) against the --flavor they speak. Prints one TAP stream on stdout (suites renumbered into one
# plan); exits 1 when anything failed. The server is stopped by its pid and
# the work directory removed on every exit path.
# Then Elasticsearch's own YAML REST tests (yaml_rest.py, which starts its own server).
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)
python=/usr/bin/python3

work=$(mktemp -d "${TMPDIR:-/tmp}/espipe-conformance.XXXXXX") || exit 1
pidfile="$work/serve.pid"
results="$work/results.tap"
: > "$results"

stop_one() {
    if [ -s "$1" ]; then
        pid=$(cat "$1")
        TMPDIR="$work" lua5.4 bin/espipe serve --stop --pid-file "$1" >/dev/null 2>&1
        # in case --stop could not: the nginx master by its pid, then wait for it
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null
            i=0
            while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
        fi
    fi
}
# every server this script started: the default one and the flavoured ones
stop_server() {
    for f in "$work"/*.pid; do stop_one "$f"; done
    rm -rf "$work"
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# renumber a suite's TAP into the one stream; other output becomes comments
emit() {
    awk -v start="$(grep -c '^\(not \)\?ok ' "$results")" '
    /^(not )?ok [0-9]+/ {
        n = ++start
        sub(/^ok [0-9]+/, "ok " n); sub(/^not ok [0-9]+/, "not ok " n)
        print; fflush(); next
    }
    /^1\.\.[0-9]+/ || /^TAP version/ { next }
    /^#/ || /^[ \t]/ { print; fflush(); next }
    NF { print "# " $0; fflush() }
    ' | tee -a "$results"
}

fail_line() { printf 'not ok 0 - %s\n' "$1" | emit; }

count() { grep -c '^\(not \)\?ok ' "$results"; }

# run_suite NAME COMMAND...: a suite that runs no test, or exits non-zero
# without reporting a failure, is itself a failure
run_suite() {
    name=$1; shift
    before=$(count); failed_before=$(grep -c '^not ok ' "$results")
    "$@" > "$work/suite.out" 2>&1
    rc=$?
    emit < "$work/suite.out"
    if [ "$(count)" -eq "$before" ]; then
        fail_line "$name suite ran no test (exit status $rc)"
    elif [ "$rc" -ne 0 ] && [ "$(grep -c '^not ok ' "$results")" -eq "$failed_before" ]; then
        fail_line "$name suite exited with status $rc"
    fi
}

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

echo "TAP version 13"
port=$(free_port)
if [ -z "$port" ]; then
    fail_line "conformance: could not find a free loopback port"
    echo "1..$(grep -c '^\(not \)\?ok ' "$results")"
    exit 1
fi
if ! TMPDIR="$work" lua5.4 bin/espipe serve --host 127.0.0.1 --port "$port" --daemon \
        --pid-file "$pidfile" > "$work/serve.log" 2>&1; then
    fail_line "conformance: espipe serve did not start: $(tr '\n' ' ' < "$work/serve.log")"
    echo "1..$(grep -c '^\(not \)\?ok ' "$results")"
    exit 1
fi
url="http://127.0.0.1:$port"
ES_URL=$url
export ES_URL
echo "# espipe serve on $url (pid $(cat "$pidfile" 2>/dev/null))"

# Python: Debian's elasticsearch-py 7.17
echo "# python elasticsearch client"
if "$python" -c 'import elasticsearch' 2>/dev/null; then
    run_suite python "$python" spec/conformance/python_client.py
else
    fail_line "python suite: /usr/bin/python3 cannot import elasticsearch (apt-get install python3-elasticsearch)"
fi

# Node: @elastic/elasticsearch 8 from npm
echo "# node @elastic/elasticsearch client"
if ! command -v node >/dev/null 2>&1; then
    fail_line "node suite: node is not installed"
else
    if [ ! -d spec/node/node_modules/@elastic/elasticsearch ] && command -v npm >/dev/null 2>&1; then
        npm install --prefix spec/node --no-audit --no-fund --loglevel=error >/dev/null 2>&1
    fi
    if [ -d spec/node/node_modules/@elastic/elasticsearch ]; then
        run_suite node node --test --test-reporter=tap spec/conformance/node_client.test.mjs
    else
        fail_line "node suite: @elastic/elasticsearch is not installed (npm install --prefix spec/node)"
    fi
fi

# The version-specific clients against the flavour they were written for
# (espipe serve --flavor): elasticsearch-py 7.17 against es-7.17, and
# @opensearch-project/opensearch 2 against opensearch-2.
start_flavor() { # start_flavor FLAVOR -> prints the URL, or nothing
    fport=$(free_port)
    [ -n "$fport" ] || return 1
    TMPDIR="$work" lua5.4 bin/espipe serve --host 127.0.0.1 --port "$fport" --daemon --flavor "$1" \
        --pid-file "$work/flavor-$1.pid" > "$work/serve-$1.log" 2>&1 || return 1
    echo "http://127.0.0.1:$fport"
}
echo "# python elasticsearch client 7.17 against --flavor es-7.17"
if "$python" -c 'import elasticsearch' 2>/dev/null; then
    if furl=$(start_flavor es-7.17); then
        default_url=$ES_URL
        ES_URL=$furl
        run_suite python-es-7.17 "$python" spec/conformance/python_client.py
        ES_URL=$default_url
    else
        fail_line "python suite: espipe serve --flavor es-7.17 did not start"
    fi
fi
echo "# node @opensearch-project/opensearch client against --flavor opensearch-2"
if [ -d spec/node/node_modules/@opensearch-project/opensearch ]; then
    if furl=$(start_flavor opensearch-2); then
        OPENSEARCH_URL=$furl
        export OPENSEARCH_URL
        run_suite node-opensearch node --test --test-reporter=tap spec/conformance/opensearch_client.test.mjs
    else
        fail_line "opensearch suite: espipe serve --flavor opensearch-2 did not start"
    fi
else
    fail_line "opensearch suite: @opensearch-project/opensearch is not installed (npm install --prefix spec/node)"
fi

# Elasticsearch's own YAML REST tests, with their own server
echo "# Elasticsearch YAML REST tests (../shared/reference/es-rest-tests)"
if "$python" -c 'import yaml' 2>/dev/null; then
    run_suite yaml-rest "$python" spec/conformance/yaml_rest.py --tap
else
    fail_line "yaml-rest suite: /usr/bin/python3 cannot import yaml (apt-get install python3-yaml)"
fi

total=$(grep -c '^\(not \)\?ok ' "$results")
failed=$(grep -c '^not ok ' "$results")
echo "1..$total"
[ "$total" -gt 0 ] && [ "$failed" -eq 0 ]
