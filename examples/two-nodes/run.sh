#!/usr/bin/env bash
# Two federating shanliao nodes on this machine: alpha.test (port 18443) and beta.test (port
# 18444). Makes a certificate for each, starts both, registers alice@alpha.test and
# bob@beta.test, has alice open a direct conversation with bob and send a message, and shows
# bob's copy of it, fetched from beta. Needs curl. Everything lives in ./work; rerunning
# starts from scratch.
set -euo pipefail
cd "$(dirname "$0")"
root=../..
bin=$root/target/release/chat-node
[ -x "$bin" ] || (cd $root && cargo build --release --bin chat-node)

rm -rf work && mkdir -p work
"$bin" dev-cert --domain alpha.test --out work/alpha >/dev/null
"$bin" dev-cert --domain beta.test --out work/beta >/dev/null

"$bin" --config alpha.toml >work/alpha.log 2>&1 &
alpha=$!
"$bin" --config beta.toml >work/beta.log 2>&1 &
beta=$!
trap 'kill $alpha $beta 2>/dev/null; wait $alpha $beta 2>/dev/null || true' EXIT

# api NODE METHOD PATH [TOKEN] [JSON]
api() {
  local node=$1 method=$2 path=$3 token=${4:-} body=${5:-}
  local port=18443; [ "$node" = beta.test ] && port=18444
  local args=(-sS --fail-with-body --cacert "work/${node%%.*}/cert.pem"
              --resolve "$node:$port:127.0.0.1" -X "$method" -H 'content-type: application/json')
  [ -n "$token" ] && args+=(-H "authorization: Bearer $token")
  [ -n "$body" ] && args+=(-d "$body")
  curl "${args[@]}" "https://$node:$port$path"
}
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

for n in alpha.test beta.test; do
  for _ in $(seq 50); do api $n GET /health >/dev/null 2>&1 && break; sleep 0.1; done
done
echo "both nodes are up"

policy=$(api alpha.test GET /api/v1/policy | field version)
api alpha.test POST /api/v1/accounts "" \
  "{\"phone\":\"+8613800000001\",\"handle\":\"alice\",\"password\":\"alice-password\",\"nickname\":\"Alice\",\"accept_policy\":\"$policy\"}" >/dev/null
api beta.test POST /api/v1/accounts "" \
  "{\"phone\":\"+8613800000002\",\"handle\":\"bob\",\"password\":\"bob-password\",\"nickname\":\"Bob\",\"accept_policy\":\"$policy\"}" >/dev/null
alice=$(api alpha.test POST /api/v1/sessions "" '{"login":"alice","password":"alice-password"}' | field token)
bob=$(api beta.test POST /api/v1/sessions "" '{"login":"bob","password":"bob-password"}' | field token)

echo "alice looks up bob@beta.test (asked of beta.test, signed):"
api alpha.test GET /api/v1/users/bob@beta.test "$alice"; echo
conv=$(api alpha.test POST /api/v1/conversations "$alice" '{"kind":"direct","with":"bob@beta.test"}' | field id)
echo "alice opened $conv"
api alpha.test POST "/api/v1/conversations/$conv/messages" "$alice" \
  '{"txn_id":"hello-1","body":{"type":"text","text":"Hello Bob, from alpha!"}}' >/dev/null

for _ in $(seq 50); do
  got=$(api beta.test GET "/api/v1/conversations/$conv/messages" "$bob" 2>/dev/null || true)
  case "$got" in *"Hello Bob"*) break ;; esac
  sleep 0.1
done
echo "bob's copy on beta.test:"
echo "$got"
case "$got" in *"Hello Bob"*) echo "OK: the message crossed from alpha.test to beta.test" ;;
  *) echo "FAILED: the message did not arrive (see work/*.log)"; exit 1 ;; esac
