#!/usr/bin/env bash
# services.sh makes the services that Redline's integration tests need answer on loopback:
#
#   PostgreSQL  127.0.0.1:5432  user postgres, trust auth on loopback
#   Redis       127.0.0.1:6379
#   NATS        127.0.0.1:4222  with JetStream
#   etcd        127.0.0.1:2379
#   promtool    on PATH (Prometheus itself is not started)
#   prometheus-alertmanager  on PATH (tests start their own)
#
# It installs what is missing with apt-get, starts what is not answering (directly, not
# through systemd: test machines and containers have none), waits for each, and prints one
# status line per service. It is idempotent: services that already answer are left alone.
# Debian, as root or with sudo.
#
# Tests find the services at these addresses by default; REDLINE_TEST_POSTGRES,
# REDLINE_TEST_REDIS and REDLINE_TEST_NATS point them elsewhere (or say "skip").
#
# This is for test machines only: it opens PostgreSQL to every local user without a password.
set -euo pipefail

readonly PG_PORT=5432 REDIS_PORT=6379 NATS_PORT=4222 ETCD_PORT=2379 ETCD_PEER_PORT=2380
readonly LOG_DIR=/var/log/redline
readonly NATS_DIR=/var/lib/redline-nats ETCD_DIR=/var/lib/redline-etcd
readonly WAIT_SECONDS=30

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null || { echo "services.sh: run as root, or install sudo" >&2; exit 1; }
	SUDO=(sudo)
fi

die() { echo "services.sh: $*" >&2; exit 1; }
status() { printf '%-10s %-8s %s\n' "$1" "$2" "$3"; }

apt_updated=0
# apt_install PACKAGE... installs packages, running apt-get update once per run first.
apt_install() {
	if [[ $apt_updated -eq 0 ]]; then
		"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		apt_updated=1
	fi
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# need BINARY PACKAGE installs PACKAGE when BINARY is not on PATH.
need() {
	command -v "$1" >/dev/null || apt_install "$2"
	command -v "$1" >/dev/null || die "$2 installed, but $1 is still not on PATH"
}

# wait_for WHAT LOG COMMAND... runs COMMAND until it succeeds, for at most WAIT_SECONDS.
wait_for() {
	local what=$1 log=$2
	shift 2
	local deadline=$((SECONDS + WAIT_SECONDS))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "$what did not answer within ${WAIT_SECONDS}s; log: $log"
		sleep 0.5
	done
}

# start_daemon LOG COMMAND... starts COMMAND detached from this script, appending to LOG.
start_daemon() {
	local log=$1
	shift
	"${SUDO[@]}" mkdir -p "$(dirname "$log")"
	# A session of its own, forked off: it outlives this script and whatever runs it. The
	# redirections happen inside, so they have the same rights as the daemon.
	"${SUDO[@]}" setsid -f sh -c 'exec "$@" >>"$0" 2>&1 </dev/null' "$log" "$@"
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- PostgreSQL -------------------------------------------------------------------------

pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }
pg_trusts() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -w -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; }

ensure_postgres() {
	if ! command -v pg_ctlcluster >/dev/null || ! command -v psql >/dev/null; then
		apt_install postgresql postgresql-client
	fi
	local version
	version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1 || true)
	if [[ -z $version ]]; then
		# Packages installed without a cluster (or a cluster removed): make the default one.
		version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1 || true)
		[[ -n $version ]] || die "postgresql: no server version under /usr/lib/postgresql"
		"${SUDO[@]}" pg_createcluster "$version" main >/dev/null
	fi
	local conf=/etc/postgresql/$version/main
	local log=/var/log/postgresql/postgresql-$version-main.log
	local how="running"
	if ! pg_ready; then
		"${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
			die "postgresql $version/main failed to start; log: $log"
		how="started"
	fi
	wait_for "postgresql on 127.0.0.1:$PG_PORT" "$log" pg_ready
	if ! pg_trusts; then
		# Debian's pg_hba.conf asks for a password over TCP (scram). Tests connect as postgres
		# without one, with the documented default DSN, so trust loopback instead of inventing a
		# password every developer and CI must know. The first matching line wins: put ours first.
		local hba=$conf/pg_hba.conf marker="# added by redline scripts/services.sh"
		if ! "${SUDO[@]}" grep -qF "$marker" "$hba"; then
			"${SUDO[@]}" sed -i "1i $marker\nhost all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust" "$hba"
		fi
		"${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" main reload
		wait_for "postgresql trust auth for postgres@127.0.0.1 (see $hba)" "$log" pg_trusts
		how="$how, trust on loopback"
	fi
	status postgres ok "127.0.0.1:$PG_PORT ($how, cluster $version/main)"
}

# --- Redis ------------------------------------------------------------------------------

redis_ready() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

ensure_redis() {
	need redis-server redis-server
	need redis-cli redis-tools
	local log=$LOG_DIR/redis.log how="running"
	if ! redis_ready; then
		"${SUDO[@]}" mkdir -p "$LOG_DIR"
		"${SUDO[@]}" redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
			--save "" --appendonly no --logfile "$log" ||
			die "redis-server failed to start; log: $log"
		how="started"
	fi
	wait_for "redis on 127.0.0.1:$REDIS_PORT" "$log" redis_ready
	status redis ok "127.0.0.1:$REDIS_PORT ($how)"
}

# --- NATS -------------------------------------------------------------------------------

# nats_jetstream reads the INFO line a NATS server sends on connect and checks that it
# announces JetStream.
nats_jetstream() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT" || exit 1
		read -r -t 5 info <&3 || exit 1
		[[ $info == *'"jetstream":true'* ]]
	) 2>/dev/null
}

ensure_nats() {
	need nats-server nats-server
	local log=$LOG_DIR/nats.log how="running"
	if ! tcp_open "$NATS_PORT"; then
		"${SUDO[@]}" mkdir -p "$NATS_DIR"
		start_daemon "$log" nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$NATS_DIR"
		how="started"
	fi
	wait_for "nats on 127.0.0.1:$NATS_PORT" "$log" tcp_open "$NATS_PORT"
	nats_jetstream || die "the NATS server on 127.0.0.1:$NATS_PORT runs without JetStream (-js); stop it or restart it with -js"
	status nats ok "127.0.0.1:$NATS_PORT ($how, JetStream on)"
}

# --- etcd -------------------------------------------------------------------------------

etcd_ready() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'; }

ensure_etcd() {
	need curl curl
	need etcd etcd-server
	local log=$LOG_DIR/etcd.log how="running"
	if ! etcd_ready; then
		tcp_open "$ETCD_PORT" && die "something on 127.0.0.1:$ETCD_PORT is not a healthy etcd"
		"${SUDO[@]}" mkdir -p "$ETCD_DIR"
		start_daemon "$log" etcd --data-dir "$ETCD_DIR" \
			--listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
			--advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
			--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT"
		how="started"
	fi
	wait_for "etcd on 127.0.0.1:$ETCD_PORT" "$log" etcd_ready
	status etcd ok "127.0.0.1:$ETCD_PORT ($how)"
}

# --- promtool ---------------------------------------------------------------------------

ensure_promtool() {
	# The prometheus package is the only one with promtool; the server it also holds is not
	# started here.
	need promtool prometheus
	status promtool ok "$(command -v promtool) ($(promtool --version 2>&1 | head -1))"
}

# --- Alertmanager ------------------------------------------------------------------------

ensure_alertmanager() {
	# sre/incident's integration test starts its own Alertmanager on a free port.
	need prometheus-alertmanager prometheus-alertmanager
	status alertmanager ok "$(command -v prometheus-alertmanager) ($(prometheus-alertmanager --version 2>&1 | head -1))"
}

ensure_postgres
ensure_redis
ensure_nats
ensure_etcd
ensure_promtool
ensure_alertmanager
