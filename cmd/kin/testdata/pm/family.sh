# An app with children of its own, as a shell wrapper or a worker pool has:
# one that stops on SIGTERM and one that ignores it. Their pids go to
# $KINTEST_OUT.
sleep 1000 &
echo $! >> "$KINTEST_OUT"
(trap '' TERM; exec sleep 1001) &
echo $! >> "$KINTEST_OUT"
wait
