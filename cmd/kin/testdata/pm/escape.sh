# An app with children that leave its process group and session (setsid),
# as daemons do: one stays its child; the other is double-forked, so that
# its parent exits at once and it is orphaned. Their pids go to
# $KINTEST_OUT, the orphan's second.
setsid sleep 1002 &
echo $! >> "$KINTEST_OUT"
(setsid sleep 1003 & echo $! >> "$KINTEST_OUT")
wait
