# Shared by tests/api/*.sh: a real `drover serve` on loopback in a temporary directory, stopped
# (SIGTERM, up to 10 s for its orderly shutdown, then SIGKILL) and cleaned up when the script
# exits. Source it after `cd` to the repository root; it sets `work`, `server_pid` and `base`.

work=$(mktemp -d)
server_pid=
base=
stop_server() {
  if [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop_server EXIT

# start_server DROVER: serves $work/serve.yaml on 127.0.0.1:0 with state $work/state.db, and
# waits (at most 10 s) for its `listening on` line; sets `base` to the URL.
start_server() {
  : > "$work/serve.log"
  "$1" --state "$work/state.db" serve --config "$work/serve.yaml" --listen 127.0.0.1:0 \
    2> "$work/serve.log" &
  server_pid=$!
  for _ in $(seq 1 100); do
    base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/serve.log" | head -n 1)
    [ -n "$base" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "drover serve did not start:" >&2
  cat "$work/serve.log" >&2
  exit 1
}
