"""Test-only: an independent reading of a JSON file, as sorted lines of
path, type and value, for spec/json/roundtrip_spec.lua to compare against
espipe.json. Usage: python3 listing.py int|num FILE
  int: Lua 5.3+ rules (int64 integers exact, beyond -> nearest float)
  num: Lua 5.1/5.2/LuaJIT rules (every number a double)
"""
import json
import sys

INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def hexs(s):
    return s.encode("utf-8").hex()


def number(v, mode):
    if isinstance(v, int) and mode == "int" and INT64_MIN <= v <= INT64_MAX:
        return "int %d" % v
    x = float(v)
    if mode == "num" and x == 0:
        x = 0.0  # the sign of zero is checked elsewhere; Python reads -0 as int 0
    return ("float " if mode == "int" else "num ") + "%.17g" % x


def walk(v, path, out, mode):
    if v is None:
        out.append(path + " null")
    elif v is True or v is False:
        out.append(path + (" true" if v else " false"))
    elif isinstance(v, (int, float)):
        out.append(path + " " + number(v, mode))
    elif isinstance(v, str):
        out.append(path + " string " + hexs(v))
    elif isinstance(v, list):
        out.append(path + " array %d" % len(v))
        for i, x in enumerate(v):
            walk(x, path + "/%d" % (i + 1), out, mode)
    else:
        out.append(path + " object %d" % len(v))
        for k, x in v.items():
            walk(x, path + "/k" + hexs(k), out, mode)


def main():
    mode, name = sys.argv[1], sys.argv[2]
    with open(name, "rb") as f:
        value = json.loads(f.read().decode("utf-8"))
    out = []
    walk(value, "$", out, mode)
    for line in sorted(out):
        print(line)


main()
