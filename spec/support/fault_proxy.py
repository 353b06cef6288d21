#!/usr/bin/python3
"""A fault-injecting HTTP/1.1 proxy for espipe's specs (loopback only).

Sits between a client and the dev server and, per request, applies the
first rule that matches and fires: reset, truncate, stall, delay, answer a
status itself, or fail chosen _bulk items inside an HTTP 200 without
forwarding them. See spec/support/fault_proxy.lua for the rule format.

Control endpoints (never forwarded):
  POST /__proxy/rules   body: JSON list of rules, replaces the rules
  GET  /__proxy/stats   counters, JSON

Bounded: exits after --max-seconds, and when --watch-pid (or, without it,
the parent process) is gone. Writes the port it bound to --port-file.
"""
import argparse
import fnmatch
import gzip
import json
import os
import random
import select
import socket
import struct
import sys
import threading
import time
import urllib.parse
import zlib

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "expect",
       "proxy-connection", "te", "upgrade"}
ACTIONS = {"reset_request", "reset_response", "truncate", "stall", "delay", "status",
           "bulk_items", "pass"}
STATUS_ERRORS = {
    429: ("es_rejected_execution_exception", "rejected execution (fault_proxy)"),
    503: ("unavailable_shards_exception", "primary shard is not active (fault_proxy)"),
}
TWO_LINE_OPS = {"index", "create", "update"}
BAD_BODY = (ValueError, TypeError, AttributeError, StopIteration, OSError, EOFError, zlib.error)


class Closed(Exception):
    """The peer closed the connection."""


class State:
    def __init__(self, seed):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.rules = []
        self.stats = {}

    def set_rules(self, rules):
        if isinstance(rules, dict) and not rules:
            rules = []
        if not isinstance(rules, list):
            raise ValueError("rules must be a list")
        for r in rules:
            if not isinstance(r, dict) or r.get("action") not in ACTIONS:
                raise ValueError("bad rule %r: action must be one of %s" % (r, sorted(ACTIONS)))
        with self.lock:
            self.rules = [dict(r, _matched=0, _fired=0) for r in rules]

    def bump(self, key, n=1):
        with self.lock:
            self.stats[key] = self.stats.get(key, 0) + n

    def snapshot(self):
        with self.lock:
            out = dict(self.stats)
            out["rules"] = [{"match": r.get("match", "*"), "action": r["action"],
                             "matched": r["_matched"], "fired": r["_fired"]} for r in self.rules]
            return out

    def choose(self, method, path):
        """The first rule that matches and fires, or None."""
        with self.lock:
            for r in self.rules:
                if not matches(r.get("match", "*"), method, path):
                    continue
                r["_matched"] += 1
                if "times" in r and r["_fired"] >= r["times"]:
                    continue
                if "nth" in r:
                    fire = r["_matched"] == r["nth"]
                elif "every" in r:
                    fire = r["_matched"] % r["every"] == 0
                else:
                    fire = self.rng.random() < r.get("p", 1)
                if fire:
                    r["_fired"] += 1
                    return dict(r)
            return None

    def random(self):
        with self.lock:
            return self.rng.random()


def matches(pattern, method, path):
    if pattern in ("*", "", None):
        return True
    want_method, _, sub = pattern.partition(" ")
    if sub:
        return method == want_method and sub in path
    if pattern.isupper() and pattern.isalpha():
        return method == pattern
    return pattern in path


# ---------------------------------------------------------------- HTTP framing

def read_line(f):
    line = f.readline(65537)
    if not line:
        raise Closed()
    return line


def read_headers(f):
    headers = []
    while True:
        line = read_line(f).rstrip(b"\r\n")
        if not line:
            return headers
        k, _, v = line.decode("latin-1").partition(":")
        headers.append((k.strip(), v.strip()))


def header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def read_body(f, headers, until_eof=False):
    te = header(headers, "transfer-encoding")
    if te and "chunked" in te.lower():
        out = []
        while True:
            size = int(read_line(f).split(b";")[0].strip(), 16)
            if size == 0:
                read_headers(f)  # trailers
                return b"".join(out)
            out.append(f.read(size))
            f.read(2)
    n = header(headers, "content-length")
    if n is not None:
        data = f.read(int(n))
        if len(data) < int(n):
            raise Closed()
        return data
    return f.read() if until_eof else b""


def decoded(body, headers):
    enc = (header(headers, "content-encoding") or "").lower()
    if enc == "gzip":
        return gzip.decompress(body)
    if enc == "deflate":
        return zlib.decompress(body)
    return body


ES_HEADERS = [("Content-Type", "application/json"), ("X-Elastic-Product", "Elasticsearch")]


def serialize_response(status, reason, headers, body, keep_alive):
    lines = ["HTTP/1.1 %d %s" % (status, reason)]
    lines += ["%s: %s" % (k, v) for k, v in headers if k.lower() not in HOP]
    lines.append("Content-Length: %d" % len(body))
    lines.append("Connection: " + ("keep-alive" if keep_alive else "close"))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head, body


def close(sock, f, rst=False):
    """Close for real (a socket's fd stays open while its file object
    lives); with rst, by RST (SO_LINGER 0) instead of FIN."""
    try:
        if rst:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    f.close()
    sock.close()


# ---------------------------------------------------------------- upstream

class Upstream:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or u.hostname != "127.0.0.1" or not u.port:
            raise SystemExit("fault_proxy: upstream must be http://127.0.0.1:PORT, not %r" % url)
        self.host, self.port = u.hostname, u.port

    def send(self, method, target, headers, body):
        """One request on a fresh connection; the whole response, parsed."""
        s = socket.create_connection((self.host, self.port), timeout=300)
        f = s.makefile("rb")
        try:
            lines = ["%s %s HTTP/1.1" % (method, target), "Host: %s:%d" % (self.host, self.port)]
            lines += ["%s: %s" % (k, v) for k, v in headers
                      if k.lower() not in HOP and k.lower() != "host"]
            if body or method in ("POST", "PUT"):
                lines.append("Content-Length: %d" % len(body))
            lines.append("Connection: close")
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            while True:
                status_line = read_line(f).decode("latin-1").rstrip("\r\n")
                parts = status_line.split(" ", 2)
                status = int(parts[1])
                reason = parts[2] if len(parts) > 2 else ""
                rheaders = read_headers(f)
                if status != 100:
                    break
            no_body = method == "HEAD" or status in (204, 304)
            return status, reason, rheaders, b"" if no_body else read_body(f, rheaders, until_eof=True)
        finally:
            f.close()
            s.close()


# ---------------------------------------------------------------- filter_path

def fp_match(seg, key):
    if seg == "*":
        return True
    if "*" not in seg:
        return seg == key
    return fnmatch.fnmatchcase(key, seg)


def fp_advance(paths, key):
    out = []
    for p in paths:
        if p[0] == "**":
            out.append(p)
            if len(p) == 1:
                out.append([])
            elif fp_match(p[1], key):
                out.append(p[2:])
        elif fp_match(p[0], key):
            out.append(p[1:])
    return out


def fp_filter(node, paths):
    """Elasticsearch's inclusive filter_path; None when nothing matches."""
    if any(len(p) == 0 for p in paths):
        return node
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            sub = fp_advance(paths, k)
            if sub:
                fv = fp_filter(v, sub)
                if fv is not None:
                    out[k] = fv
        return out or None
    if isinstance(node, list):
        out = [x for x in (fp_filter(v, paths) for v in node) if x is not None]
        return out or None
    return None


def apply_filter_path(doc, filter_path):
    paths = [p.strip().split(".") for p in filter_path.split(",") if p.strip() and not p.startswith("-")]
    if not paths:
        return doc
    out = fp_filter(doc, paths)
    return {} if out is None else out


# ---------------------------------------------------------------- bulk_items

def bulk_items(body, url_index):
    """The items of an NDJSON _bulk body: (op, meta, [lines])."""
    items, lines, i = [], body.split(b"\n"), 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        action = json.loads(line)
        op = next(iter(action))
        meta = action[op] or {}
        item_lines = [line]
        if op in TWO_LINE_OPS and i < len(lines):
            item_lines.append(lines[i])
            i += 1
        items.append((op, meta, item_lines, meta.get("_index", url_index)))
    return items


def bulk_answer(res, n_items):
    """The decoded 200 answer to a _bulk request with n_items, or None."""
    status, _, rh, rb = res
    if status != 200:
        return None
    try:
        resp = json.loads(decoded(rb, rh))
    except BAD_BODY:
        return None
    ok = isinstance(resp, dict) and isinstance(resp.get("items"), list) and len(resp["items"]) == n_items
    return resp if ok else None


def failed_item(op, meta, index, rule):
    status = int(rule.get("status", 429))
    etype, reason = STATUS_ERRORS.get(status, ("fault_proxy_exception", "injected by fault_proxy"))
    item = {"_index": index, "status": status,
            "error": {"type": rule.get("error_type", etype), "reason": reason}}
    if "_id" in meta:
        item["_id"] = meta["_id"]
    return {op: item}


# ---------------------------------------------------------------- connections

class Handler:
    def __init__(self, state, upstream, sock):
        self.state, self.upstream, self.sock = state, upstream, sock
        self.f = sock.makefile("rb")

    def run(self):
        try:
            while self.one():
                pass
        except (Closed, OSError, ValueError):
            pass
        finally:
            close(self.sock, self.f)

    def one(self):
        """One request; False when the connection is done."""
        line = read_line(self.f).decode("latin-1").rstrip("\r\n")
        if not line:
            return True
        method, target, version = line.split(" ", 2)
        headers = read_headers(self.f)
        keep = version == "HTTP/1.1" and (header(headers, "connection") or "").lower() != "close"
        path = target.split("?", 1)[0]
        if path.startswith("/__proxy/"):
            return self.control(method, path, headers, keep)
        self.state.bump("requests")
        rule = self.state.choose(method, path) or {"action": "pass"}
        action = rule["action"]
        if action == "reset_request":
            self.f.read(int(rule.get("after_bytes", 0)))  # > 0: mid-body
            self.state.bump("resets")
            self.state.bump("reset_requests")
            close(self.sock, self.f, rst=True)
            return False
        if (header(headers, "expect") or "").lower() == "100-continue":
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = read_body(self.f, headers)
        if action == "stall":
            self.state.bump("stalls")
            self.stall(rule.get("seconds"))
            return False
        if action == "status":
            self.state.bump("statuses")
            self.answer_status(rule, keep)
            return keep
        if action == "delay":
            self.state.bump("delays")
            time.sleep(float(rule.get("seconds", 1)))
        if action == "bulk_items" and "_bulk" in path:
            return self.bulk(rule, method, target, headers, body, keep)
        res = self.upstream.send(method, target, headers, body)
        self.state.bump("forwarded")
        if action in ("reset_response", "truncate"):
            return self.cut(rule, res)
        return self.relay(res, keep)

    def cut(self, rule, res):
        """Send part of the answer (default: head + half the body), then
        RST (reset_response) or FIN (truncate)."""
        status, reason, rh, rb = res
        head, rb = serialize_response(status, reason, rh, rb, False)
        n = rule.get("after_bytes")
        self.sock.sendall((head + rb)[:len(head) + len(rb) // 2 if n is None else int(n)])
        if rule["action"] == "truncate":
            self.state.bump("truncations")
        else:
            self.state.bump("resets")
            self.state.bump("reset_responses")
        close(self.sock, self.f, rst=rule["action"] == "reset_response")
        return False

    def stall(self, seconds):
        deadline = time.time() + float(seconds) if seconds is not None else None
        while deadline is None or time.time() < deadline:
            r, _, _ = select.select([self.sock], [], [], 0.2)
            if r and not self.sock.recv(65536):
                break  # the client gave up

    def answer_status(self, rule, keep):
        status = int(rule.get("status", 503))
        etype, reason = STATUS_ERRORS.get(status, ("fault_proxy_exception", "injected by fault_proxy"))
        cause = {"type": rule.get("error_type", etype), "reason": reason}
        body = json.dumps({"error": {"root_cause": [cause], "type": cause["type"], "reason": reason},
                           "status": status}).encode()
        head, body = serialize_response(status, "Fault", ES_HEADERS, body, keep)
        self.sock.sendall(head + body)

    def bulk(self, rule, method, target, headers, body, keep):
        """Forward all but the chosen items; answer 429 (or rule.status)
        for those in their places, in the client's filter_path shape."""
        path, _, query = target.partition("?")
        params = urllib.parse.parse_qsl(query, keep_blank_values=True)
        filter_path = next((v for k, v in params if k == "filter_path"), None)
        rest = [(k, v) for k, v in params if k != "filter_path"]
        segs = [s for s in path.split("/") if s]
        try:
            items = bulk_items(decoded(body, headers), urllib.parse.unquote(segs[0]) if len(segs) > 1 else None)
        except BAD_BODY:
            items = None  # not a body to pick items from: the server says what is wrong
        if not items:
            return self.relay(self.upstream.send(method, target, headers, body), keep)
        chosen = self.choose_items(len(items), float(rule.get("fraction", 0.2)))
        forward = [ln for i, it in enumerate(items) if i not in chosen for ln in it[2]]
        resp, rh = {"took": 0, "errors": False, "items": []}, ES_HEADERS
        if forward:
            fheaders = [(k, v) for k, v in headers if k.lower() != "content-encoding"]
            res = self.upstream.send(method, path + ("?" + urllib.parse.urlencode(rest) if rest else ""),
                                     fheaders, b"\n".join(forward) + b"\n")
            self.state.bump("forwarded")
            resp, rh = bulk_answer(res, len(items) - len(chosen)), res[2]
            if resp is None:
                return self.relay(res, keep)  # no bulk answer to merge into: as it is
        theirs = iter(resp["items"])
        resp["items"] = [failed_item(op, meta, index, rule) if i in chosen else next(theirs)
                         for i, (op, meta, _, index) in enumerate(items)]
        resp["errors"] = resp.get("errors", False) or bool(chosen)
        self.state.bump("items_failed", len(chosen))
        self.state.bump("bulk_faulted")
        if filter_path:
            resp = apply_filter_path(resp, filter_path)
        rh = [(k, v) for k, v in rh if k.lower() != "content-encoding"]
        head, out = serialize_response(200, "OK", rh, json.dumps(resp, separators=(",", ":")).encode(), keep)
        self.sock.sendall(head + out)
        return keep

    def choose_items(self, n, fraction):
        """fraction x n positions, rounded at random so the mean is exact."""
        k = min(n, int(fraction * n + self.state.random()))
        return set(random.Random(self.state.random()).sample(range(n), k))

    def relay(self, res, keep):
        status, reason, rh, rb = res
        head, rb = serialize_response(status, reason, rh, rb, keep)
        self.sock.sendall(head + rb)
        return keep

    def control(self, method, path, headers, keep):
        body = read_body(self.f, headers)
        if method == "POST" and path == "/__proxy/rules":
            try:
                self.state.set_rules(json.loads(body or b"[]"))
                status, out = 200, {"ok": True}
            except ValueError as e:
                status, out = 400, {"error": str(e)}
        elif method == "GET" and path == "/__proxy/stats":
            status, out = 200, self.state.snapshot()
        else:
            status, out = 404, {"error": "unknown control endpoint " + path}
        head, b = serialize_response(status, "X", [("Content-Type", "application/json")],
                                     json.dumps(out).encode(), keep)
        self.sock.sendall(head + b)
        return keep


# ---------------------------------------------------------------- main

def alive(pid):
    """True while pid runs (a zombie is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rules-file")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--max-seconds", type=float, default=600)
    ap.add_argument("--watch-pid", type=int)
    a = ap.parse_args()
    upstream = Upstream(a.upstream)
    state = State(a.seed)
    if a.rules_file:
        with open(a.rules_file, "rb") as f:
            state.set_rules(json.loads(f.read() or b"[]"))
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(512)
    srv.settimeout(0.5)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.rename(tmp, a.port_file)
    parent = os.getppid()
    deadline = time.time() + a.max_seconds
    while time.time() < deadline:
        if a.watch_pid and not alive(a.watch_pid) or not a.watch_pid and os.getppid() != parent:
            break
        try:
            c, _ = srv.accept()
        except socket.timeout:
            continue
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=Handler(state, upstream, c).run, daemon=True).start()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
