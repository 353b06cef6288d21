#!/usr/bin/python3
"""Test oracle for spec/routing/routing_spec.lua: Elasticsearch's routing hash
(Murmur3 x86_32, seed 0, over UTF-16LE code units) written independently in
Python. Reads UTF-8 lines from argv[1], prints one signed hash per line."""
import sys

MASK = 0xFFFFFFFF


def rotl(x, r):
    return ((x << r) | (x >> (32 - r))) & MASK


def murmur3_32(data, seed=0):
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed
    full = len(data) - len(data) % 4
    for i in range(0, full, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = rotl((k * c1) & MASK, 15) * c2 & MASK
        h = (rotl(h ^ k, 13) * 5 + 0xE6546B64) & MASK
    tail = data[full:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = rotl((k * c1) & MASK, 15) * c2 & MASK
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


with open(sys.argv[1], "rb") as f:
    for line in f.read().split(b"\n")[:-1]:
        print(murmur3_32(line.decode("utf-8").encode("utf-16-le")))
