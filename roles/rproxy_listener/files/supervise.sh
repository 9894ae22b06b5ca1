#!/usr/bin/env bash
# paas-rproxy listener supervisor for hosts without systemd (role rproxy_listener): restarts the listener
# when it exits (backoff 2 s doubling to 60 s, reset after 60 s of uptime), forwards SIGTERM and stops.
# Usage: supervise.sh start|stop|restart|status NAME RUN_DIR LOG_FILE -- COMMAND...
set -euo pipefail
# the log and the pid files are the listener's business: no other local user reads them (as UMask=0027 under systemd)
umask 027
action=$1 name=$2 run_dir=$3 log=$4; shift 4; [ "${1:-}" = "--" ] && shift
sup_pid="$run_dir/$name.supervisor.pid" child_pid="$run_dir/$name.pid"
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
case "$action" in
  status) alive "$sup_pid" && { echo "running (supervisor $(cat "$sup_pid"), listener $(cat "$child_pid" 2>/dev/null))"; exit 0; }; echo stopped; exit 3 ;;
  stop)
    if alive "$sup_pid"; then
      kill -TERM "$(cat "$sup_pid")"
      for _ in $(seq 1 "${STOP_TIMEOUT:-60}"); do alive "$sup_pid" || break; sleep 1; done
      alive "$sup_pid" && { kill -KILL "$(cat "$sup_pid")" 2>/dev/null || true; alive "$child_pid" && kill -KILL "$(cat "$child_pid")" || true; }
    fi
    rm -f "$sup_pid" "$child_pid"; exit 0 ;;
  restart) "$0" stop "$name" "$run_dir" "$log"; exec "$0" start "$name" "$run_dir" "$log" -- "$@" ;;
  start)
    alive "$sup_pid" && { echo "already running"; exit 0; }
    mkdir -p "$run_dir" "$(dirname "$log")"
    [ -f "$log" ] && chmod o-rwx "$log"  # a log an earlier version left world-readable
    # detach: new session, stdio to the log
    setsid "$0" run "$name" "$run_dir" "$log" -- "$@" >>"$log" 2>&1 < /dev/null &
    for _ in $(seq 1 50); do alive "$sup_pid" && exit 0; sleep 0.1; done
    echo "supervisor did not start (see $log)" >&2; exit 1 ;;
  run)
    echo $$ > "$sup_pid"
    stopping=0 delay=2 child=0
    trap 'stopping=1; [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null || true' TERM INT
    while [ "$stopping" = 0 ]; do
      started=$(date +%s)
      "$@" & child=$!
      echo "$child" > "$child_pid"
      wait "$child" || true
      # `wait` returns early when a trapped signal arrives: wait for the child to really end
      while kill -0 "$child" 2>/dev/null; do wait "$child" || true; done
      rc=$?
      [ "$stopping" = 1 ] && break
      [ $(( $(date +%s) - started )) -ge 60 ] && delay=2
      printf '{"time":"%s","level":"error","event":"supervisor_restart","name":"%s","delay_s":%d}\n' "$(date -u +%FT%TZ)" "$name" "$delay"
      sleep "$delay" & wait $! || true
      delay=$(( delay * 2 > 60 ? 60 : delay * 2 ))
    done
    rm -f "$sup_pid" "$child_pid" ;;
  *) echo "usage: $0 start|stop|restart|status NAME RUN_DIR LOG_FILE -- COMMAND..." >&2; exit 2 ;;
esac
