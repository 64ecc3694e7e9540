"""A kin pool worker in Python, using the stdlib-only helper in clients/python.

    kin pool -w 2 -- python3 examples/python-worker/worker.py < examples/tasks.jsonl
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
import kin_worker  # noqa: E402


def handle(data, task):
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return {
        "sha256": hashlib.sha256(text.encode()).hexdigest()[:16],
        "bytes": len(text.encode()),
        "pid": os.getpid(),
    }


kin_worker.serve(handle)
