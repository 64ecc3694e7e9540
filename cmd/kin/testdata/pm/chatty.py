# Prints 5000 lines of about 100 bytes (a few log rotations at 64K), one
# line on stderr, then "done"; prints a line on every SIGUSR2.
import os, signal, sys, time

signal.signal(signal.SIGUSR2, lambda *_: print("SIGUSR2", os.getpid(), flush=True))
for i in range(5000):
    print(f"line {i:04d} " + "x" * 88)
print("oops on stderr", file=sys.stderr, flush=True)
print("done", flush=True)
while True:
    time.sleep(60)
