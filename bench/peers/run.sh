#!/usr/bin/env bash
# Runs courier's W1 and W2 side by side with NATS JetStream, River and Asynq
# on this machine, and prints one Markdown table with the ratios (see
# README.md). Arguments go to the Go program: --count, --size, --producers,
# --consumers, --batch, --concurrency, --only, --json FILE, … (--help).
#
# It installs what it needs and is missing (Debian's redis-server and
# PostgreSQL, as root), builds courier from this repository, and starts and
# stops every server itself on loopback, in temporary directories.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# redis-server for Asynq. The package's service is not used (nor started:
# nothing runs in the background here); the program starts its own servers.
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "run.sh: installing redis-server (Debian package)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  else
    echo "run.sh: redis-server is missing; install it (Debian: apt-get install redis-server)" >&2
    exit 1
  fi
fi
# PostgreSQL's server binaries for River and courier's PostgreSQL store,
# the way the project's own tests get them.
bash "$root/.ci/ensure-postgres"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "run.sh: building courier and the peers program" >&2
(cd "$root" && go build -o "$tmp/courier" ./cmd/courier)
(cd "$here" && go build -o "$tmp/peers" .)
"$tmp/peers" --courier "$tmp/courier" "$@"
