#!/usr/bin/env bash
# Fuzzes the admin API against its own OpenAPI document with Schemathesis
# (docs/TESTING.md): builds `cronmesh`, starts `cronmesh dev` with an admin
# token in a sandbox, and runs `st run .../v1/openapi.json` with every
# check (schemathesis.toml beside this script enables them and says why
# one is left out on a few operations).
# Exits non-zero when Schemathesis finds anything.
#
#   .ci/schemathesis/run.sh                      # the bounded CI run (about 2 minutes)
#   ST_MAX_TIME=600 ST_SEED=7 .ci/schemathesis/run.sh   # a longer run with another seed
#
# The sandbox: Schemathesis creates jobs, and a job may be a shell command
# or an HTTP call to any URL. So the node and Schemathesis run in network,
# mount and PID namespaces of their own (unshare): only a loopback
# interface exists, so no generated URL or webhook reaches another host;
# /tmp, /var/tmp and /dev/shm are fresh tmpfs mounts; and, when run as
# root, the node runs as `nobody`, so a generated command can write
# nowhere but those empty temporary directories and its data directory.
# Everything ends with the namespace.
set -euo pipefail
# From the repository's top, wherever it is called from.
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"

here=.ci/schemathesis
venv=target/schemathesis-venv
out=${ST_OUT:-target/schemathesis}
seed=${ST_SEED:-1}
max_time=${ST_MAX_TIME:-120}

if [ "${1:-}" != "--inside" ]; then
  # The tools: Schemathesis in a venv (pinned), the debug binary.
  if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$(sed -n 's/^schemathesis==//p' $here/requirements.txt)"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r $here/requirements.txt
  fi
  cargo build --locked -p cronmesh
  rm -rf "$out"
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  # Root gets new namespaces directly; anyone else through a user namespace.
  sandbox=(unshare --net --mount --pid --fork --kill-child --mount-proc)
  [ "$(id -u)" -eq 0 ] || sandbox=(unshare --user --map-root-user --net --mount --pid --fork --kill-child --mount-proc)
  ST_OUT=$out "${sandbox[@]}" "$0" --inside
  exit $?
fi

# Inside the sandbox.
repo=$(pwd)
ip link set lo up
# A checkout under one of the directories made empty below stays where it
# is: held on /mnt meanwhile, then bound again at its own path, so every
# absolute path into it (the venv's scripts, the output) still works.
held=""
for dir in /tmp /var/tmp /dev/shm; do
  case "$repo/" in "$dir"/*) held=yes ;; esac
done
[ -z "$held" ] || mount --bind "$repo" /mnt
for dir in /tmp /var/tmp /dev/shm; do mount -t tmpfs -o size=512m tmpfs "$dir"; done
if [ -n "$held" ]; then
  mkdir -p "$repo"
  mount --bind /mnt "$repo"
fi
data=$(mktemp -d)
port=17070
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
as_node=()
if [ "$(id -u)" -eq 0 ] && [ "$(cat /proc/self/uid_map | awk '{print $2}')" = 0 ]; then
  chown 65534:65534 "$data"
  as_node=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
# A copy of the binary on the fresh /tmp: the checkout may lie where
# `nobody` cannot reach (under /root, say).
tools=$(mktemp -d)
cp "$repo/target/debug/cronmesh" "$tools/cronmesh"
chmod 755 "$tools" "$tools/cronmesh"
(cd "$data" && HOME="$data" CRONMESH_ADMIN_TOKEN="$token" \
  "${as_node[@]}" "$tools/cronmesh" dev --data-dir "$data/data" \
  --http "127.0.0.1:$port" >"$out/node.log" 2>&1) &
node=$!
trap 'kill $node 2>/dev/null || true' EXIT

base="http://127.0.0.1:$port"
deadline=$((SECONDS + 60))
until curl -sf "$base/readyz" >/dev/null; do
  if [ $SECONDS -ge $deadline ] || ! kill -0 $node 2>/dev/null; then
    echo "cronmesh dev did not become ready; its log:" >&2
    cat "$out/node.log" >&2
    exit 1
  fi
  sleep 0.2
done

echo "schemathesis: seed $seed, at most $max_time s, against $base"
status=0
# From the output directory, where Schemathesis keeps its cache.
cd "$out"
"$repo/$venv/bin/st" --config-file "$repo/$here/schemathesis.toml" run "$base/v1/openapi.json" \
  --header "Authorization: Bearer $token" \
  --max-time "$max_time" \
  --seed "$seed" \
  --request-timeout 10 \
  --report junit --report-dir "$out" \
  --no-color || status=$?
if ! kill -0 $node 2>/dev/null; then
  echo "cronmesh dev died during the run; its log:" >&2
  tail -50 "$out/node.log" >&2
  status=1
fi
exit $status
