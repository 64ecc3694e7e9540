# Holds about 100 MiB of touched memory.
import os, time

held = b"\x01" * (100 << 20)
print("holding", len(held) >> 20, "MiB in", os.getpid(), flush=True)
while True:
    time.sleep(60)
