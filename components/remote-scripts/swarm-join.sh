#!/usr/bin/env bash
# swarmcloud: join the swarm
# Joins as a worker (roles are set from a manager, so a role change never needs a rejoin).
# stdin: "<cluster id> <worker token>". Inputs: NODE_NAME, ADVERTISE_ADDR, MANAGER_ADDRS.
# Prints the node's swarm ID. A node already in this swarm is left alone; a node in another
# swarm is refused with its name. The join is the request `docker swarm join --token T
# --advertise-addr A M:2377` makes, sent to this node's Docker Engine API by curl over
# /var/run/docker.sock with the body on curl's stdin, so the token is on no command line (`ps`).
set -euo pipefail
: "${NODE_NAME:?}" "${ADVERTISE_ADDR:?}" "${MANAGER_ADDRS:?}"
read -r cluster_id token

# One `docker info` answers everything below (it is slow on a busy manager).
swarm_info() {
  docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}} {{if .Swarm.Cluster}}{{.Swarm.Cluster.ID}}{{else}}-{{end}} {{range .Swarm.RemoteManagers}}{{.Addr}} {{end}}'
}
read -r state control node_id current_cluster remote_managers <<<"$(swarm_info)"

for _ in $(seq 1 150); do
  [ "$state" = pending ] || break
  sleep 0.2
  read -r state control node_id current_cluster remote_managers <<<"$(swarm_info)"
done

in_this_swarm() {
  if [ "$control" = true ]; then
    [ "$current_cluster" = "$cluster_id" ]
    return
  fi
  local addr manager
  for addr in $remote_managers; do
    for manager in $MANAGER_ADDRS; do
      [ "${addr%:*}" = "$manager" ] && return 0
    done
  done
  return 1
}

if [ "$state" = active ]; then
  if ! in_this_swarm; then
    fatal "$NODE_NAME is already part of another swarm; run 'docker swarm leave --force' on it or remove it from swarmcloud:nodes"
  fi
  echo "$node_id"
  exit 0
fi

# json_string TEXT: TEXT as a JSON string, quotes included (backslashes and quotes escaped; an
# address or a token holds no control characters). Shell only: TEXT is in no command line.
json_string() {
  local text=${1//\\/\\\\}
  printf '"%s"' "${text//\"/\\\"}"
}

# join_body MANAGER: what `docker swarm join` sends to /swarm/join (its ListenAddr default
# included), printed by printf, a builtin: the token is in no process's arguments.
join_body() {
  printf '{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":%s,"RemoteAddrs":[%s],"JoinToken":%s}\n' \
    "$(json_string "$ADVERTISE_ADDR")" "$(json_string "$1:2377")" "$(json_string "$token")"
}

# join_at MANAGER: POST /swarm/join through the Docker socket, the body on curl's stdin. On
# failure, the API's message (or curl's own error) is left in $failure, the token cut out.
join_at() {
  local code
  rm -f "$tmp/response" "$tmp/curl-error"
  code=$(join_body "$1" | curl -sS --unix-socket /var/run/docker.sock -X POST \
    "http://localhost/v$api/swarm/join" -H 'Content-Type: application/json' --data-binary @- \
    -o "$tmp/response" -w '%{http_code}' 2>"$tmp/curl-error") || true
  [ "$code" = 200 ] && return 0
  failure=$(sed -n 's/^.*"message":"\(.*\)".*$/\1/p' "$tmp/response" 2>/dev/null || true)
  [ -n "$failure" ] || failure="HTTP ${code:-000}: $(cat "$tmp/curl-error" "$tmp/response" 2>/dev/null || true)"
  failure=${failure//"$token"/[join token]}
  return 1
}

if docker_gossip_stale; then
  info "$NODE_NAME: dockerd still holds the gossip port of a swarm it left (moby/moby#31913); restarting Docker before the join"
  docker_restart
fi

# The API version this Docker Engine speaks, asked, not assumed (1.41 for Debian 12's docker.io
# 20.10, 1.45 for Debian 13's 26.1): the path /v<version>/ pins the request to it.
api=$(docker version --format '{{.Server.APIVersion}}') || fatal "Docker on $NODE_NAME does not answer"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failure=""
for _ in 1 2 3; do
  for manager in $MANAGER_ADDRS; do
    if join_at "$manager"; then
      docker info --format '{{.Swarm.NodeID}}'
      exit 0
    fi
  done
  sleep 2
done
fatal "$NODE_NAME could not join any manager of $MANAGER_ADDRS:" "$failure"
