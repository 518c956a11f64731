"""Loads each document of a JSON list with PyYAML's safe_load and prints one canonical,
typed rendering per line (the Rust side renders its own result the same way)."""
import datetime
import json
import sys

import yaml


def canon(v):
    if v is None:
        return "N"
    if isinstance(v, bool):
        return "B:" + ("true" if v else "false")
    if isinstance(v, int):
        return "I:" + str(v)
    if isinstance(v, float):
        return "F:" + repr(v)
    if isinstance(v, str):
        return "S:" + json.dumps(v, ensure_ascii=False)
    if isinstance(v, bytes):
        return "Y:" + v.hex()
    if isinstance(v, datetime.datetime):
        return "T:" + v.isoformat()
    if isinstance(v, datetime.date):
        return "D:" + v.isoformat()
    if isinstance(v, list):
        return "L[" + ",".join(canon(x) for x in v) + "]"
    if isinstance(v, tuple):
        return "P[" + ",".join(canon(x) for x in v) + "]"
    if isinstance(v, dict):
        return "M{" + ",".join(canon(k) + "=>" + canon(x) for k, x in v.items()) + "}"
    if isinstance(v, set):
        return "E{" + ",".join(sorted(canon(x) for x in v)) + "}"
    return "?" + type(v).__name__


def main():
    sys.setrecursionlimit(10000)
    docs = json.load(open(sys.argv[1], encoding="utf-8"))
    out = []
    for d in docs:
        try:
            out.append(canon(yaml.safe_load(d)))
        except Exception:  # PyYAML also raises ValueError, KeyError, ... on bad scalars
            out.append("ERR")
    sys.stdout.write(json.dumps(out, ensure_ascii=False))


main()
