# An app whose child leaves its process group and session (setsid), as a
# daemonizing child does. The child's pid goes to $KINTEST_OUT.
setsid sleep 1002 &
echo $! >> "$KINTEST_OUT"
wait
