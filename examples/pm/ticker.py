# A long-running Python app for the process-manager examples: prints a line
# every second and stops cleanly on SIGTERM.
import os, signal, sys, time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("ticker", os.environ.get("KIN_INSTANCE"), "starts; GREETING =", os.environ.get("GREETING"), flush=True)
n = 0
while True:
    time.sleep(1)
    n += 1
    print("tick", n, flush=True)
