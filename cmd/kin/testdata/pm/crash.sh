# Crashes at once, after appending the time (ns) to $KINTEST_OUT.
date +%s%N >> "$KINTEST_OUT"
exit 1
