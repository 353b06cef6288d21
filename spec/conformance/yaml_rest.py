#!/usr/bin/env python3
"""Elasticsearch's YAML REST tests against `espipe serve`.

Reads every test file under the given directory (default
../shared/reference/es-rest-tests/ beside the checkout), maps each `do` to
an HTTP request with the API definitions in its api/ folder, and checks the
assertions as Elasticsearch's own runner does (README.asciidoc of
rest-api-spec). Starts its own dev server on a free loopback port unless
--url is given, and stops it by its pid.

Prints PASS/FAIL/SKIP per test (a failure with its first failed assertion),
a per-API summary and "N passed, N failed, N skipped". With --tap it writes
TAP instead: a passed test is `ok`, a skipped one `ok # SKIP`, a failed one
`not ok`, and one last test line says whether the pass rate reaches
--threshold percent of the tests not skipped.
"""
import argparse
import glob
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SERVER_VERSION = (8, 15, 0)

# runner features this runner implements (skip.features / requires.test_runner_features)
FEATURES = {
    "headers", "allowed_warnings", "allowed_warnings_regex", "contains", "close_to",
    "stash_in_path", "stash_path_replace", "stash_in_key", "arbitrary_key", "yaml",
    "capabilities", "default_shards", "node_selector", "exists", "catch_unauthorized",
}
CATCHES = {
    "bad_request": (400,), "unauthorized": (401,), "forbidden": (403,), "missing": (404,),
    "request_timeout": (408,), "conflict": (409,), "unavailable": (503,),
}


class Failure(Exception):
    pass


class Skip(Exception):
    pass


class ParamError(Exception):
    """what a client raises before sending: `catch: param`"""


def parse_version(s):
    s = s.strip()
    if s in ("", "current"):
        return None
    parts = re.findall(r"\d+", s)
    return tuple(int(p) for p in (parts + ["0", "0", "0"])[:3])


def version_in(spec):
    spec = str(spec).strip()
    if spec == "all":
        return True
    for rng in spec.split(","):
        lo, _, hi = rng.partition("-")
        lo, hi = parse_version(lo), parse_version(hi)
        if (lo is None or SERVER_VERSION >= lo) and (hi is None or SERVER_VERSION <= hi):
            return True
    return False


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def has_cluster_feature(name):
    """the server reports no feature of its own; historical gte_vX.Y.Z ones by version"""
    m = re.match(r"^gte_v(\d+\.\d+\.\d+)$", name)
    return bool(m) and SERVER_VERSION >= parse_version(m.group(1))


class Api:
    def __init__(self, api_dir):
        self.specs = {}
        for f in glob.glob(os.path.join(api_dir, "*.json")):
            with open(f) as fh:
                for name, spec in json.load(fh).items():
                    self.specs[name] = spec

    def request(self, name, args, has_body):
        spec = self.specs.get(name)
        if spec is None:
            raise Skip("no API definition for [%s]" % name)
        params = dict(args)
        best = None
        for p in spec["url"]["paths"]:
            parts = p.get("parts", {})
            if all(k in params for k in parts) and (best is None or len(parts) > len(best.get("parts", {}))):
                best = p
        if best is None:
            raise ParamError("no path of [%s] takes the parts %s" % (name, sorted(params)))
        path = best["path"]
        for part in best.get("parts", {}):
            value = encode_param(params.pop(part))
            # as the clients do: everything but ',' and '*' percent-encoded
            path = path.replace("{%s}" % part, urllib.parse.quote(value, safe=",*" if part != "id" else ""))
        known = set(spec.get("params", {})) | {"error_trace", "filter_path", "human", "pretty", "ignore"}
        for k in params:
            if k not in known:
                raise ParamError("[%s] does not take the parameter [%s]" % (name, k))
        methods = best["methods"]
        method = methods[0]
        if has_body and "POST" in methods and method == "GET":
            method = "POST"
        ignore = as_list(params.pop("ignore", None))
        query = urllib.parse.urlencode([(k, encode_param(v)) for k, v in params.items()])
        return method, path + ("?" + query if query else ""), [int(i) for i in ignore]


def encode_param(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ",".join(encode_param(x) for x in v)
    return str(v)


class Stash:
    def __init__(self):
        self.values = {}

    def lookup(self, key):
        name = key[1:].strip("{}") if key.startswith("$") else key
        if name == "body":
            return self.values.get("$body")
        path = name.split(".", 1)
        if path[0] not in self.values:
            raise Failure("stash has no [%s]" % name)
        v = self.values[path[0]]
        return get_path(v, path[1], self) if len(path) > 1 else v

    def replace(self, v):
        if isinstance(v, str):
            if re.fullmatch(r"\$\{?[A-Za-z_][\w.]*\}?", v) and v != "$":
                return self.lookup(v)
            return re.sub(r"\$\{([A-Za-z_][\w.]*)\}", lambda m: str(self.lookup("$" + m.group(1))), v)
        if isinstance(v, list):
            return [self.replace(x) for x in v]
        if isinstance(v, dict):
            return {self.replace(k) if isinstance(k, str) and k.startswith("$") else k: self.replace(x)
                    for k, x in v.items()}
        return v


def split_path(path):
    parts, cur, i = [], "", 0
    while i < len(path):
        c = path[i]
        if c == "\\" and i + 1 < len(path) and path[i + 1] == ".":
            cur += "."
            i += 2
            continue
        if c == ".":
            parts.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    parts.append(cur)
    return parts


MISSING = object()


def get_path(value, path, stash):
    if path in ("", "$body"):
        return value
    for part in split_path(path):
        if part.startswith("$"):
            part = str(stash.lookup(part))
        if isinstance(value, list):
            if not re.fullmatch(r"\d+", part) or int(part) >= len(value):
                return MISSING
            value = value[int(part)]
        elif isinstance(value, dict):
            if part == "_arbitrary_key_":
                if not value:
                    return MISSING
                return next(iter(value))
            if part not in value:
                return MISSING
            value = value[part]
        else:
            return MISSING
    return value


def is_regex(v):
    return isinstance(v, str) and len(v) > 1 and v.strip().startswith("/") and v.strip().endswith("/")


def same(expected, actual):
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual or (type(expected) == type(actual) and expected == actual)
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return expected == actual
    if isinstance(expected, dict) and isinstance(actual, dict):
        return set(expected) == set(actual) and all(same(expected[k], actual[k]) for k in expected)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(same(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, str) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return expected == str(actual)
    return expected == actual


def truthy(v):
    return not (v is MISSING or v is None or v is False or v in ("", "false", "0") or v == 0)


def short(v, n=200):
    s = json.dumps(v, ensure_ascii=False) if v is not MISSING else "<missing>"
    return s if len(s) <= n else s[:n] + "..."


class Server:
    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="espipe-yaml-rest.")
        self.pidfile = os.path.join(self.work, "serve.pid")
        env = dict(os.environ, TMPDIR=self.work)
        # two nodes, as Elasticsearch's test cluster: one replica can be assigned (green)
        for _ in range(20):
            self.port = free_port_pair()
            r = subprocess.run(["lua5.4", "bin/espipe", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                "--nodes", "2", "--daemon", "--pid-file", self.pidfile], cwd=ROOT, env=env,
                               capture_output=True, text=True)
            if r.returncode == 0 or "Address already in use" not in (r.stderr + r.stdout):
                break
        if r.returncode != 0:
            self.stop()
            raise RuntimeError("espipe serve did not start: " + (r.stderr or r.stdout).strip())

    def stop(self):
        try:
            if os.path.exists(self.pidfile):
                with open(self.pidfile) as f:
                    pid = int(f.read().strip() or 0)
                subprocess.run(["lua5.4", "bin/espipe", "serve", "--stop", "--pid-file", self.pidfile], cwd=ROOT,
                               env=dict(os.environ, TMPDIR=self.work), capture_output=True)
                if pid and alive(pid):
                    os.kill(pid, 15)
                    deadline = time.time() + 5
                    while alive(pid) and time.time() < deadline:
                        time.sleep(0.05)
        finally:
            shutil.rmtree(self.work, ignore_errors=True)


def free_port_pair():
    """a loopback port p with p + 1 free too (at the time of asking)"""
    while True:
        a = socket.socket()
        a.bind(("127.0.0.1", 0))
        p = a.getsockname()[1]
        b = socket.socket()
        try:
            b.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
        finally:
            a.close()
            b.close()


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


class Client:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.conn = None

    def send(self, method, url, body=None, headers=None):
        h = {"Content-Type": "application/json"} if body is not None else {}
        for k, v in (headers or {}).items():
            h[k] = str(v)
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.conn.request(method, url, body=body, headers=h)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, data.decode("utf-8", "replace"), resp
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise


def encode_body(api, body):
    if body is None:
        return None
    ndjson = api in ("bulk", "msearch", "msearch_template")
    if isinstance(body, str):
        return body if not ndjson or body.endswith("\n") else body + "\n"
    if ndjson and isinstance(body, list):
        return "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in body)
    return json.dumps(body)


class Runner:
    def __init__(self, client, api, skiplist):
        self.client, self.api, self.skiplist = client, api, skiplist

    def check_skip(self, step, kind):
        """skip: {version, features, cluster_features}; requires: {test_runner_features, cluster_features}"""
        if kind == "skip":
            for f in as_list(step.get("features")):
                if f not in FEATURES:
                    raise Skip("runner feature [%s] not supported" % f)
            if "version" in step and version_in(step["version"]):
                raise Skip("version %s: %s" % (step["version"], step.get("reason", "")))
            for f in as_list(step.get("cluster_features")):
                if has_cluster_feature(f):
                    raise Skip("cluster feature [%s]: %s" % (f, step.get("reason", "")))
            for cap in as_list(step.get("capabilities")):
                if self.capable(cap):
                    raise Skip("capability %s" % short(cap))
        else:
            for f in as_list(step.get("test_runner_features")):
                if f not in FEATURES:
                    raise Skip("runner feature [%s] not supported" % f)
            for f in as_list(step.get("cluster_features")):
                if not has_cluster_feature(f):
                    raise Skip("needs cluster feature [%s]" % f)
            for cap in as_list(step.get("capabilities")):
                if not self.capable(cap):
                    raise Skip("needs capability %s" % short(cap))

    def capable(self, cap):
        q = urllib.parse.urlencode({"method": cap.get("method", "GET"), "path": cap["path"],
                                    "parameters": ",".join(as_list(cap.get("parameters"))),
                                    "capabilities": ",".join(as_list(cap.get("capabilities")))})
        status, text, _ = self.client.send("GET", "/_capabilities?" + q)
        if status != 200:
            return False
        try:
            return json.loads(text).get("supported") is True
        except ValueError:
            return False

    def run_steps(self, steps, stash, state):
        for step in steps or []:
            (kind, arg), = step.items()
            if kind in ("skip", "requires"):
                self.check_skip(arg, kind)
            elif kind == "do":
                self.do(arg, stash, state)
            else:
                self.assertion(kind, arg, stash, state)

    def do(self, arg, stash, state):
        arg = dict(arg)
        catch = arg.pop("catch", None)
        headers = stash.replace(arg.pop("headers", None) or {})
        for k in ("warnings", "allowed_warnings", "allowed_warnings_regex", "node_selector", "warnings_regex"):
            arg.pop(k, None)
        (name, params), = arg.items()
        params = stash.replace(params or {})
        body = params.pop("body", None)
        try:
            method, url, ignore = self.api.request(name, params, body is not None)
        except ParamError as e:
            if catch == "param":
                return
            raise Failure("do %s: %s" % (name, e))
        if catch == "param":
            raise Failure("do %s: expected a parameter error, the request was valid" % name)
        status, text, resp = self.client.send(method, url, encode_body(name, body), headers)
        state["status"], state["headers"] = status, resp
        if method == "HEAD":
            value = 200 <= status < 300
        else:
            try:
                value = json.loads(text) if text else ""
            except ValueError:
                value = text
        state["body"] = value
        stash.values["$body"] = value
        where = "do %s %s %s" % (name, method, url)
        if catch is None:
            if status >= 400 and status not in ignore and not (method == "HEAD" and status == 404):
                raise Failure("%s: status %d: %s" % (where, status, short(value, 300)))
            return
        if catch in CATCHES:
            if status not in CATCHES[catch]:
                raise Failure("%s: expected catch %s, got status %d: %s" % (where, catch, status, short(value)))
        elif catch == "request":
            if status < 400 or status in (400, 401, 403, 404, 408, 409):
                raise Failure("%s: expected catch request, got status %d" % (where, status))
        elif is_regex(catch):
            if status < 400:
                raise Failure("%s: expected an error matching %s, got status %d" % (where, catch, status))
            # as ES's DoSection: the regex (no flags) is found in the error object's Java toString()
            error = value.get("error") if isinstance(value, dict) else None
            if error is None:
                raise Failure("%s: expected an error matching %s, the response has none: %s"
                              % (where, catch, short(text, 300)))
            if not re.search(catch.strip()[1:-1], java_str(error)):
                raise Failure("%s: error does not match %s: %s" % (where, catch, short(java_str(error), 300)))
        else:
            raise Failure("%s: unknown catch [%s]" % (where, catch))

    def assertion(self, kind, arg, stash, state):
        body = state.get("body")
        if kind in ("is_true", "is_false", "exists", "not_exists"):
            path = arg if isinstance(arg, str) else next(iter(arg))
            path = stash.replace(path) if path.startswith("$") and path != "$body" else path
            v = get_path(body, path, stash)
            ok = {"is_true": truthy, "is_false": lambda x: not truthy(x),
                  "exists": lambda x: x is not MISSING, "not_exists": lambda x: x is MISSING}[kind](v)
            if not ok:
                raise Failure("%s: %s was %s" % (kind, path, short(v)))
            return
        if kind == "set":
            for path, name in arg.items():
                v = get_path(body, path, stash)
                if v is MISSING:
                    raise Failure("set: %s is missing" % path)
                stash.values[name] = v
            return
        if kind == "transform_and_set":
            raise Skip("transform_and_set is not supported")
        for path, expected in arg.items():
            expected = stash.replace(expected)
            v = get_path(body, path, stash)
            if kind == "match":
                if is_regex(expected):
                    if v is MISSING or not re.search(expected.strip()[1:-1], v if isinstance(v, str) else
                                                     json.dumps(v), re.X):
                        raise Failure("match: %s = %s does not match %s" % (path, short(v), expected))
                elif not same(expected, v):
                    raise Failure("match: %s = %s, expected %s" % (path, short(v), short(expected)))
            elif kind == "length":
                if not isinstance(v, (list, dict, str)) or len(v) != expected:
                    raise Failure("length: %s = %s, expected length %s" % (path, short(v), expected))
            elif kind in ("gt", "gte", "lt", "lte"):
                ops = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
                       "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
                if not isinstance(v, (int, float)) or not ops[kind](v, expected):
                    raise Failure("%s: %s = %s, expected %s %s" % (kind, path, short(v), kind, expected))
            elif kind == "contains":
                if not contains(v, expected):
                    raise Failure("contains: %s = %s does not contain %s" % (path, short(v), short(expected)))
            elif kind == "close_to":
                if not isinstance(v, (int, float)) or abs(v - expected["value"]) > expected["error"]:
                    raise Failure("close_to: %s = %s, expected %s" % (path, short(v), short(expected)))
            else:
                raise Failure("unknown assertion [%s]" % kind)


def java_str(v):
    """a value as Java's Map/List toString() writes it"""
    if isinstance(v, dict):
        return "{" + ", ".join("%s=%s" % (k, java_str(x)) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(java_str(x) for x in v) + "]"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def contains(actual, expected):
    if isinstance(actual, list):
        return any(contains(a, expected) for a in actual) or any(same(expected, a) for a in actual)
    if isinstance(actual, dict) and isinstance(expected, dict):
        return all(k in actual and (same(v, actual[k]) or contains(actual[k], v)) for k, v in expected.items())
    return same(expected, actual)


class Loader(yaml.SafeLoader):
    """YAML as Elasticsearch's runner reads it: dates stay strings"""


Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def load_file(path):
    with open(path) as f:
        docs = [d for d in yaml.load_all(f, Loader=Loader) if d]
    setup, teardown, tests = [], [], []
    for d in docs:
        for name, steps in d.items():
            if name == "setup":
                setup = steps
            elif name == "teardown":
                teardown = steps
            else:
                tests.append((name, steps))
    return setup, teardown, tests


def read_skiplist(path):
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, reason = line.partition("\t")
            if not reason.strip():
                raise SystemExit("%s: no reason given for [%s]" % (path, key))
            out[key.strip()] = reason.strip()
    return out


def wipe(client):
    """what Elasticsearch's runner does after every test: nothing survives it"""
    client.send("DELETE", "/_search/scroll/_all")
    client.send("DELETE", "/*?expand_wildcards=all")
    client.send("DELETE", "/_index_template/*")
    client.send("DELETE", "/_component_template/*")
    client.send("DELETE", "/_template/*")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=os.path.join(ROOT, "..", "shared", "reference", "es-rest-tests"))
    ap.add_argument("--url", help="test this server instead of starting one")
    ap.add_argument("--tap", action="store_true")
    ap.add_argument("--threshold", type=float, default=95.0)
    ap.add_argument("--skip-list", default=os.path.join(HERE, "yaml_skip.txt"))
    ap.add_argument("only", nargs="*", help="files or folders under --dir to run (default: all)")
    a = ap.parse_args()

    out = sys.stdout
    if not os.path.isdir(a.dir):
        if a.tap:
            print("ok 1 - es-rest-tests # SKIP no YAML REST tests at %s" % a.dir)
            print("1..1")
        else:
            print("SKIP all: no YAML REST tests at %s" % a.dir)
        return 0
    files = sorted(glob.glob(os.path.join(a.dir, "*", "*.yml")))
    if a.only:
        files = [f for f in files if any(os.path.relpath(f, a.dir).startswith(o.rstrip("/")) for o in a.only)]
    api = Api(os.path.join(a.dir, "api"))
    skiplist = read_skiplist(a.skip_list)

    server = None
    if a.url:
        u = urllib.parse.urlparse(a.url)
        host, port = u.hostname, u.port or 9200
    else:
        server = Server()
        host, port = "127.0.0.1", server.port
    client = Client(host, port)
    if a.tap:
        print("TAP version 13")
    results = []  # (api, status)
    n = 0
    try:
        for f in files:
            rel = os.path.relpath(f, a.dir)
            group = rel.split(os.sep)[0]
            try:
                setup, teardown, tests = load_file(f)
            except yaml.YAMLError as e:
                tests, setup, teardown = [("<file>", None)], [], []
                load_error = str(e)
            else:
                load_error = None
            for name, steps in tests:
                key = "%s :: %s" % (rel, name)
                n += 1
                status, detail = "PASS", ""
                if load_error:
                    status, detail = "FAIL", "cannot read the file: " + load_error
                elif key in skiplist:
                    status, detail = "SKIP", skiplist[key]
                else:
                    runner = Runner(client, api, skiplist)
                    stash, state = Stash(), {}
                    try:
                        # a test's own skip comes first, before setup runs
                        for step in steps or []:
                            (kind, arg), = step.items()
                            if kind in ("skip", "requires"):
                                runner.check_skip(arg, kind)
                            else:
                                break
                        for step in setup or []:
                            (kind, arg), = step.items()
                            if kind in ("skip", "requires"):
                                runner.check_skip(arg, kind)
                        runner.run_steps(setup, stash, state)
                        runner.run_steps(steps, stash, state)
                    except Skip as e:
                        status, detail = "SKIP", str(e)
                    except Failure as e:
                        status, detail = "FAIL", str(e)
                    except Exception as e:  # a bug in a test or in this runner: report, go on
                        status, detail = "FAIL", "runner error: %s: %s" % (type(e).__name__, e)
                    finally:
                        try:
                            Runner(client, api, skiplist).run_steps(teardown, stash, {})
                        except (Failure, Skip):
                            pass
                        wipe(client)
                results.append((group, status))
                detail1 = detail.replace("\n", " ")
                if a.tap:
                    if status == "PASS":
                        print("ok %d - %s" % (n, key))
                    elif status == "SKIP":
                        print("ok %d - %s # SKIP %s" % (n, key, detail1))
                    else:  # every test that ran is counted: a failure is a failure
                        print("not ok %d - %s: %s" % (n, key, detail1))
                else:
                    print("%s %s%s" % (status, key, (": " + detail1) if detail1 else ""))
                out.flush()
    finally:
        if server:
            server.stop()

    passed = sum(1 for _, s in results if s == "PASS")
    failed = sum(1 for _, s in results if s == "FAIL")
    skipped = sum(1 for _, s in results if s == "SKIP")
    rate = 100.0 * passed / (passed + failed) if passed + failed else 100.0
    groups = sorted({g for g, _ in results})
    prefix = "# " if a.tap else ""
    print(prefix + "per API:")
    for g in groups:
        p = sum(1 for x, s in results if x == g and s == "PASS")
        fl = sum(1 for x, s in results if x == g and s == "FAIL")
        sk = sum(1 for x, s in results if x == g and s == "SKIP")
        print(prefix + "  %-24s %3d passed, %3d failed, %3d skipped" % (g, p, fl, sk))
    print(prefix + "pass rate %.1f%% of %d tests not skipped" % (rate, passed + failed))
    if a.tap:
        n += 1
        verdict = "ok" if rate >= a.threshold else "not ok"
        print("%s %d - es-rest-tests: %d of %d not skipped pass (%.1f%%, needs %.0f%%)"
              % (verdict, n, passed, passed + failed, rate, a.threshold))
        print("1..%d" % n)
        return 0 if rate >= a.threshold else 1
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
