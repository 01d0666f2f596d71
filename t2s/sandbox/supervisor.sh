# The t2s sandbox's supervisor: runs inside bubblewrap, as the sandbox's user, in the
# sandbox's work folder (an empty, size-limited tmpfs). t2s/sandbox/bwrap.py starts it as
#   bash --noprofile --norc -c "$(cat this)" t2s-sandbox IN OUT SECONDS AS FSIZE NPROC COMMAND...
# IN:      a file descriptor holding a tar of the host's work folder (copied in here);
# OUT:     a file descriptor for the result: one status line
#            "t2s-status <exit status> <timed out 0|1>"
#          then a tar of the work folder (t2s copies it back, trusting nothing in it);
# SECONDS: the time the command may take; then its whole process group is killed;
# AS, FSIZE, NPROC: per-process limits (KiB, KiB, count; "-" for none).
# When the command ends, every other process of the sandbox is killed (bubblewrap is
# PID 1 and reaps), so nothing runs on while the folder is copied out. The command
# never sees IN or OUT. Everything here is a bash builtin except tar, sleep and the
# command itself: each exec costs a few milliseconds per run.
set -u
in=$1 out=$2 secs=$3 as=$4 fsize=$5 nproc=$6
shift 6
# bash's own messages (e.g. "Killed" for the timer) go nowhere; the command's stderr
# and the supervisor's errors go to the real stderr.
exec {err}>&2 2>/dev/null
if [ "$EUID" -eq 0 ]; then
  echo "t2s sandbox: refusing to run code as root" >&"$err"
  exit 126
fi
umask 022
if ! tar -x -f - --no-same-owner --no-overwrite-dir <&"$in" 2>&"$err"; then
  echo "t2s sandbox: could not copy the work folder in (larger than the disk limit?)" >&"$err"
  exit 125
fi
exec {in}<&-

set -m  # the command gets a process group of its own (the timer kills that group)
exec {stdin}<&0
(
  echo 1000 > /proc/self/oom_score_adj  # the code, not this supervisor, is the OOM killer's choice
  ulimit -c 0
  [ "$as" = - ] || ulimit -v "$as"
  [ "$fsize" = - ] || ulimit -f "$fsize"
  [ "$nproc" = - ] || ulimit -u "$nproc"
  exec "$@"
) <&"$stdin" 2>&"$err" {stdin}<&- {out}>&- {err}>&- &
cmd=$!
exec {stdin}<&- 0</dev/null
( sleep "$secs"; kill -KILL -- -"$cmd"; exit 0 ) {out}>&- {err}>&- &
timer=$!
wait "$cmd"
status=$?
kill -KILL "$timer"
wait "$timer"
fired=$?
set +m
for _ in 1 2 3; do kill -KILL -1; done

printf 't2s-status %s %s\n' "$status" "$([ "$fired" -eq 0 ] && echo 1 || echo 0)" >&"$out"
tar -c -f - --format=gnu . >&"$out"
