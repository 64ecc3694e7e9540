"""A worker written with the Python helper (clients/python). Each task's data
says what to do: {"op": "echo" | "fail" | "bad-result" | "progress" | "order"
| "block" | "env" | "cloexec", ...}."""

import fcntl
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import kin_worker  # noqa: E402

fd = int(os.environ.get("KIN_CHANNEL_FD") or os.environ.get("NODE_CHANNEL_FD") or -1)


def handle(data, task):
    op = data["op"]
    if op == "echo":
        return data["v"]
    if op == "fail":
        raise ValueError(data["msg"])
    if op == "bad-result":
        return {"x": float("nan")}  # not JSON
    if op == "progress":
        for i in range(data["n"]):
            task.progress(i)
        return "done"
    if op == "order":
        time.sleep(random.random() * 0.005)
        return {"i": data["i"], "id": task.id, "overlap": False}
    if op == "block":
        task.progress("started")
        time.sleep(0.2)  # then answer a parent that has gone away
        return None
    if op == "env":
        return [k for k in os.environ if "_CHANNEL_" in k]
    if op == "cloexec":
        return bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
    raise ValueError("unknown op " + op)


kin_worker.serve(handle)
