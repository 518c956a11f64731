"""Peers that share a KVP pool file with EGS, behaving as the real writers do.

daemon POOL N     -- like hv_kvp_daemon: fcntl (lockf) write lock, read the whole file,
                     check every record, add key daemon-<i>, rewrite the whole file in place
                     (after a short pause, as a busy daemon might take). Prints the number
                     of torn or undecodable reads seen.
cloud-init POOL N -- like cloud-init's reporter: flock, append record ci-<i>.
"""
import fcntl
import sys
import time

RECORD = 2560


def record(key, value):
    return key.encode().ljust(512, b"\0") + value.encode().ljust(2048, b"\0")


def decode(data):
    if len(data) % RECORD:
        raise ValueError("torn file of %d bytes" % len(data))
    out = []
    for i in range(0, len(data), RECORD):
        k = data[i:i + 512].split(b"\0", 1)[0].decode()
        v = data[i + 512:i + RECORD].split(b"\0", 1)[0].decode()
        out.append((k, v))
    return out


def daemon(path, n):
    bad = 0
    with open(path, "r+b") as f:
        for i in range(n):
            fcntl.lockf(f, fcntl.LOCK_EX)
            f.seek(0)
            data = f.read()
            try:
                records = decode(data)
            except ValueError:
                bad += 1
                records = None
            if records is not None:
                records.append(("daemon-%d" % i, str(i)))
                time.sleep(0.0005)
                f.seek(0)
                f.write(b"".join(record(k, v) for k, v in records))
                f.truncate()
                f.flush()
            fcntl.lockf(f, fcntl.LOCK_UN)
    print(bad)


def cloud_init(path, n):
    for i in range(n):
        with open(path, "ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(record("ci-%d" % i, "event %d" % i))
            f.flush()
            fcntl.flock(f, fcntl.LOCK_UN)
    print(0)


{"daemon": daemon, "cloud-init": cloud_init}[sys.argv[1]](sys.argv[2], int(sys.argv[3]))
