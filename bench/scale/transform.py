# bench/scale/transform.lua's work in Python: the same text hashed the same
# ROUNDS times, the same path rebuilt (same fingerprint and path_key).
ROUNDS = 7
FIELDS = ("request_id", "@timestamp", "host", "path", "country", "user", "status", "bytes")


def text_of(doc):
    return "|".join(str(doc.get(k)) for k in FIELDS)


def hash_text(s, rounds):
    h = 2166136261
    data = s.encode()
    for _ in range(rounds):
        for b in data:
            h = (h * 31 + b) % 4294967296
    return h


def rebuilt_path(path):
    return "/" + "/".join(seg.upper()[::-1] for seg in str(path).split("/") if seg)


def transform(doc):
    doc["fingerprint"] = "%08x" % hash_text(text_of(doc), ROUNDS)
    doc["path_key"] = rebuilt_path(doc["path"])
    return doc
