#!/bin/sh
# seqlog: print {"seq":N,"s":"o"|"e","boot":B} lines for the pytest-livecluster Docker tests.
#   SEQ_COUNT  lines per stream (default 100; -1 prints forever)
#   SEQ_RATE   lines per second per stream (default 0: as fast as possible)
#   SEQ_STREAM o (stdout), e (stderr) or oe (both at once, each counting from 0)
#   SEQ_SIZE   pad every line to this many bytes (default 0: no padding)
#   SEQ_SIZES  space-separated line sizes: one line of each size, then stop
#   SEQ_DELAY  seconds of silence before the first line (default 0)
#   SEQ_AFTER  exit (default) or hold (stay running, silent)
#   SEQ_EXIT   exit status when done (default 0)
#   SEQ_TEXT   print this text instead of the JSON line (the same line every time)
# B is the number of earlier starts of this container, kept in its writable layer.
trap 'exit 0' TERM INT
f=/var/seqlog.boot
b=$(cat "$f" 2>/dev/null || echo 0)
echo $((b + 1)) >"$f"

line() { # seq stream size
  if [ "$3" -gt 0 ]; then
    head="{\"seq\":$1,\"s\":\"$2\",\"boot\":$b,\"p\":\""
    n=$(($3 - ${#head} - 2))
    [ "$n" -ge 0 ] || n=0
    printf '%s%s"}\n' "$head" "$(head -c "$n" /dev/zero | tr '\0' x)"
  else
    printf '{"seq":%d,"s":"%s","boot":%d}\n' "$1" "$2" "$b"
  fi
}

writer() { # stream
  s=$1
  if [ -n "${SEQ_SIZES:-}" ]; then
    i=0
    for z in $SEQ_SIZES; do line "$i" "$s" "$z"; i=$((i + 1)); done
    return
  fi
  count=${SEQ_COUNT:-100}
  rate=${SEQ_RATE:-0}
  size=${SEQ_SIZE:-0}
  if [ "$size" -gt 0 ]; then
    head="{\"seq\":0,\"s\":\"$s\",\"boot\":$b,\"p\":\""
    pad=$(head -c $((size - ${#head} - 2)) /dev/zero | tr '\0' x)
  fi
  batch=$((rate / 10))
  [ "$batch" -gt 0 ] || batch=1
  i=0
  while [ "$count" -lt 0 ] || [ "$i" -lt "$count" ]; do
    if [ -n "${SEQ_TEXT:-}" ]; then
      printf '%s\n' "$SEQ_TEXT"
    elif [ "$size" -gt 0 ]; then
      printf '{"seq":%d,"s":"%s","boot":%d,"p":"%s"}\n' "$i" "$s" "$b" "$pad"
    else
      printf '{"seq":%d,"s":"%s","boot":%d}\n' "$i" "$s" "$b"
    fi
    i=$((i + 1))
    if [ "$rate" -gt 0 ] && [ $((i % batch)) -eq 0 ]; then
      if [ "$rate" -ge 10 ]; then sleep 0.1; else sleep $((1 / rate)).$((10 / rate % 10)); fi
    fi
  done
}

sleep "${SEQ_DELAY:-0}"
case "${SEQ_STREAM:-o}" in
  o) writer o ;;
  e) writer e >&2 ;;
  # Both writers in the background: a child exiting while the shell itself writes to a
  # full pipe interrupts that write (SIGCHLD), and busybox drops what was not written.
  oe) writer e >&2 & writer o & wait ;;
esac
if [ "${SEQ_AFTER:-exit}" = hold ]; then
  while :; do sleep 1; done
fi
exit "${SEQ_EXIT:-0}"
