#!/usr/bin/env bash
# broker.sh: start, stop and control a private RabbitMQ node (Debian's rabbitmq-server) for salvo's
# integration tests, the benchmark and the local quick start. Never touches a system-wide node.
#
#   broker.sh start DIR [--nodename N] [--amqp-port P] [--mgmt-port P] [--dist-port P]
#                       [--tls CERTDIR] [--tls-port P] [--plugins a,b] [--heartbeat S]
#                       [--stats-ms MS] [--timeout S] [--no-trim] [--no-cli-check]
#                       (--plugins rabbitmq_prometheus: its port is PROM_PORT in broker.env)
#                       [--owner-pid PID]   (kill the node once PID is gone)
#                       [--listen ADDR]     (AMQP also on ADDR:amqp-port, e.g. a test bridge)
#                       [--cookie C]        (Erlang cookie: nodes that cluster share one)
#   broker.sh stop DIR [--kill] [--clean] [--timeout S]
#                     graceful (rabbitmqctl stop, ~6-9 s: the management agent takes 5 s to stop)
#                     then SIGKILL of the process group; --kill skips the graceful part (~1.5 s).
#                     Data and logs stay unless --clean; only broker.env/broker.pid go.
#   broker.sh ctl DIR ARGS...     rabbitmqctl against that node
#   broker.sh diag DIR ARGS...    rabbitmq-diagnostics against that node
#   broker.sh queues DIR ARGS...  rabbitmq-queues against that node (e.g. quorum_status Q)
#   broker.sh status DIR          exit 0 when the node answers, 1 otherwise
#
# Layout under DIR: broker.env (written once the node is ready; KEY=VALUE lines), broker.pid
# (process group of the node), startup.log (the server's stdout/stderr), node/ (everything the
# node writes: mnesia, log, its private HOME with the Erlang cookie, config).
# Ports not given are picked at random in 20000-32767 (below the ephemeral range, so outgoing
# connections never take them) and bind-tested; a restart of the same DIR reuses them so
# clients can reconnect to the same URL. Exit status: 0 ok, 1 failure, 2 usage.
set -euo pipefail

PROG=broker.sh
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
START_TIMEOUT=60     # seconds; a cold start takes ~5 s here, 60 s covers a loaded CI machine
STOP_TIMEOUT=30      # seconds for a graceful stop before the process group is killed
HEARTBEAT=10         # server heartbeat (s): short so a dead client is noticed within a test
STATS_MS=1000        # management stats interval: 1 s instead of 5 s so tests poll less
BASE_PLUGINS=rabbitmq_management

die() {
    echo "$PROG: $*" >&2
    exit 1
}
usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- the installed RabbitMQ -----------------------------------------------------------------

# Debian puts the real scripts, plugins and CLI escripts under one versioned directory.
find_rmq_root() {
    local d
    RMQ_ROOT=""
    for d in /usr/lib/rabbitmq/lib/rabbitmq_server-*; do
        [ -x "$d/sbin/rabbitmq-server" ] && RMQ_ROOT=$d
    done
    [ -n "$RMQ_ROOT" ] || die "rabbitmq-server is not installed (apt-get install rabbitmq-server)"
    command -v erl >/dev/null || die "erl not found on PATH (Erlang comes with rabbitmq-server)"
}

# As root, the node runs as the rabbitmq user (what Debian's wrapper would do); otherwise as the
# caller. Either way the node's files belong to that user.
# AS_NODE is a command prefix (not a function) so it also works after exec, setsid and timeout.
pick_node_user() {
    if [ "$(id -u)" -eq 0 ]; then
        id rabbitmq >/dev/null 2>&1 || die "running as root but there is no rabbitmq user"
        NODE_USER=rabbitmq
        AS_NODE=(setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups --)
    else
        NODE_USER=$(id -un)
        AS_NODE=()
    fi
}

# ---- paths and saved settings ---------------------------------------------------------------

set_paths() {
    DIR=$(cd "$1" 2>/dev/null && pwd) || die "no such directory: $1"
    N=$DIR/node
    LAUNCH=$DIR/.broker-launch
    ENVFILE=$DIR/broker.env
    PIDFILE=$DIR/broker.pid
    STARTLOG=$DIR/startup.log
}

# Settings of the last start (name, ports): a restart keeps them unless flags override.
load_launch() {
    [ -f "$LAUNCH" ] || return 0
    local k v
    while IFS='=' read -r k v; do
        case $k in
        NODENAME) : "${NODENAME:=$v}" ;;
        AMQP_PORT) : "${AMQP_PORT:=$v}" ;;
        MGMT_PORT) : "${MGMT_PORT:=$v}" ;;
        DIST_PORT) : "${DIST_PORT:=$v}" ;;
        TLS_PORT) : "${TLS_PORT:=$v}" ;;
        PROM_PORT) : "${PROM_PORT:=$v}" ;;
        esac
    done <"$LAUNCH"
}

# The environment every node-side command (server, rabbitmqctl, diagnostics) runs with: nothing
# inherited but PATH, so a caller's RABBITMQ_* or /etc/rabbitmq/rabbitmq-env.conf cannot leak in.
node_env() {
    NODE_ENV=(env -i "PATH=$PATH" "HOME=$N/home" LANG=C.UTF-8 LC_ALL=C.UTF-8
        "RABBITMQ_NODENAME=$NODENAME" "RABBITMQ_DIST_PORT=$DIST_PORT"
        "RABBITMQ_MNESIA_BASE=$N/mnesia" "RABBITMQ_LOG_BASE=$N/log"
        "RABBITMQ_ENABLED_PLUGINS_FILE=$N/enabled_plugins"
        "RABBITMQ_CONFIG_FILE=$N/rabbitmq.conf" "RABBITMQ_CONF_ENV_FILE=$N/rabbitmq-env.conf"
        "RABBITMQ_ADVANCED_CONFIG_FILE=$N/advanced.config" "RABBITMQ_PID_FILE=$N/rabbit.pid"
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
        "ERL_CRASH_DUMP=$N/log/erl_crash.dump")
    if [ -d "$N/rmq/sbin" ]; then
        NODE_ENV+=("RABBITMQ_SCRIPTS_DIR=$N/rmq/sbin")
        SBIN=$N/rmq/sbin
    else
        SBIN=$RMQ_ROOT/sbin
    fi
}

# ---- ports ----------------------------------------------------------------------------------

# Bind-test on 0.0.0.0, the strictest address: it fails if anything listens on the port on any
# address. SO_REUSEADDR as RabbitMQ's own listeners use it, so connections of a previous run of
# the node lingering in TIME_WAIT do not block a restart on the same ports.
port_free() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("0.0.0.0", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}
pick_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % 12768))
        case " ${TAKEN:-} " in *" $p "*) continue ;; esac
        if port_free "$p"; then
            TAKEN="${TAKEN:-} $p"
            echo "$p"
            return 0
        fi
    done
    die "no free port found in 20000-32767"
}
choose_ports() {
    local var p prom=""
    TAKEN=""
    [ -n "$TLS_DIR" ] || TLS_PORT=""
    # rabbitmq_prometheus listens on 15692 unless told otherwise: a private port per node.
    case ",$PLUGINS," in
    *,rabbitmq_prometheus,*) prom=PROM_PORT ;;
    *) PROM_PORT="" ;;
    esac
    for var in AMQP_PORT MGMT_PORT DIST_PORT ${TLS_DIR:+TLS_PORT} $prom; do
        p=${!var:-}
        if [ -n "$p" ]; then
            port_free "$p" || die "$var $p is in use (by another process or node)"
            TAKEN="$TAKEN $p"
        else
            p=$(pick_port)
            TAKEN="$TAKEN $p"
            printf -v "$var" '%s' "$p"
        fi
    done
    : "${NODENAME:=salvo-$AMQP_PORT@localhost}"
}

# ---- node directory -------------------------------------------------------------------------

# Only the applications the enabled plugins need are put on the code path: the node loads and
# scans every module of every application it can see at boot, and with Debian's 66 applications
# that costs ~4 s of the ~9 s cold start; the ~26 it needs start in ~5 s.
app_deps() {
    local app=$1 dir
    dir=$(ls -d "$RMQ_ROOT/plugins/$app"-[0-9]* 2>/dev/null | tail -n 1)
    [ -n "$dir" ] || return 0
    basename "$dir"
    tr -d ' \n\t' <"$dir/ebin/$app.app" |
        grep -oE '\{(included_)?applications,\[[^]]*\]' |
        sed -E 's/.*\[//; s/\]//' | tr ',' '\n'
}
trimmed_plugins() {
    local todo=(rabbit rabbitmq_prelaunch ${PLUGINS//,/ }) seen=" " app line
    while [ ${#todo[@]} -gt 0 ]; do
        app=${todo[0]}
        todo=("${todo[@]:1}")
        case $seen in *" $app "*) continue ;; esac
        seen="$seen$app "
        while read -r line; do
            [ -n "$line" ] || continue
            case $line in
            *-[0-9]*) echo "$line" ;;
            *) todo+=("$line") ;;
            esac
        done < <(app_deps "$app")
    done
}
make_code_dir() {
    rm -rf "$N/rmq"
    [ "$TRIM" = 1 ] || return 0
    mkdir -p "$N/rmq/plugins"
    ln -s "$RMQ_ROOT/sbin" "$N/rmq/sbin"
    ln -s "$RMQ_ROOT/escript" "$N/rmq/escript"
    local a
    for a in $(trimmed_plugins); do
        ln -s "$RMQ_ROOT/plugins/$a" "$N/rmq/plugins/$a"
    done
}

write_config() {
    {
        echo "# generated by $PROG; rewritten at every start"
        echo "listeners.tcp.default = 127.0.0.1:$AMQP_PORT"
        [ -z "$LISTEN" ] || echo "listeners.tcp.extra = $LISTEN:$AMQP_PORT"
        echo "management.tcp.ip = 127.0.0.1"
        echo "management.tcp.port = $MGMT_PORT"
        echo "loopback_users.guest = true"
        echo "heartbeat = $HEARTBEAT"
        echo "collect_statistics_interval = $STATS_MS"
        echo "# as deploy/rabbitmq/rabbitmq.conf: 256 KiB jobs, results up to 6 x 64 KiB escaped"
        echo "max_message_size = 524288"
        if [ -n "${PROM_PORT:-}" ]; then
            echo "prometheus.tcp.ip = 127.0.0.1"
            echo "prometheus.tcp.port = $PROM_PORT"
        fi
        if [ -n "$TLS_DIR" ]; then
            echo "listeners.ssl.default = 127.0.0.1:$TLS_PORT"
            echo "ssl_options.cacertfile = $N/tls/ca_certificate.pem"
            echo "ssl_options.certfile = $N/tls/server_certificate.pem"
            echo "ssl_options.keyfile = $N/tls/server_key.pem"
            echo "ssl_options.verify = verify_peer"
            echo "ssl_options.fail_if_no_peer_cert = false"
            echo "ssl_options.versions.1 = tlsv1.3"
            echo "ssl_options.versions.2 = tlsv1.2"
        fi
    } >"$N/rabbitmq.conf"
    # Test-speed settings that rabbitmq.conf cannot express. Quorum queues report stats on their
    # own tick (5 s by default), and the management API keeps samples at 5 s granularity: with
    # both, a test waited ~10 s to see a quorum queue's depth change.
    local sec=$(((STATS_MS + 999) / 1000))
    cat >"$N/advanced.config" <<EOF
[{rabbit, [{quorum_tick_interval, $STATS_MS}]},
 {rabbitmq_management, [{sample_retention_policies,
     [{global, [{605, $sec}]}, {basic, [{605, $sec}]}, {detailed, [{10, $sec}]}]}]}].
EOF
    echo "[${PLUGINS}]." >"$N/enabled_plugins"
    : >"$N/rabbitmq-env.conf"
}

copy_tls() {
    [ -n "$TLS_DIR" ] || return 0
    local f
    mkdir -p "$N/tls"
    for f in ca_certificate.pem server_certificate.pem server_key.pem; do
        [ -r "$TLS_DIR/$f" ] || die "--tls: $TLS_DIR/$f missing (see tests/lib/mkcerts.sh)"
        cp "$TLS_DIR/$f" "$N/tls/$f"
    done
    chmod 600 "$N/tls/server_key.pem"
}

# The cookie lives in the node's private HOME, so the node and our rabbitmqctl calls agree on it
# without reading or writing /var/lib/rabbitmq/.erlang.cookie.
make_cookie() {
    mkdir -p "$N/home"
    if [ -n "$COOKIE" ]; then # a cluster: every node and CLI call must present the same one
        rm -f "$N/home/.erlang.cookie"
        printf '%s' "$COOKIE" >"$N/home/.erlang.cookie"
        chmod 400 "$N/home/.erlang.cookie"
        return 0
    fi
    [ -s "$N/home/.erlang.cookie" ] && return 0
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$N/home/.erlang.cookie"
    chmod 400 "$N/home/.erlang.cookie"
}

prepare_node_dir() {
    chmod 755 "$DIR"
    mkdir -p "$N/mnesia" "$N/log" "$N/run"
    make_cookie
    make_code_dir
    write_config
    copy_tls
    chown -R "$NODE_USER:" "$N" 2>/dev/null || chown -R "$NODE_USER" "$N"
    "${AS_NODE[@]}" test -w "$N/run" || die "user $NODE_USER cannot reach $N: every parent directory \
must be traversable by it (chmod 755 a mktemp -d parent)"
}

# ---- liveness and readiness -----------------------------------------------------------------

group_alive() {
    local pg
    [ -f "$PIDFILE" ] || return 1
    pg=$(cat "$PIDFILE")
    [ -n "$pg" ] && kill -0 -- "-$pg" 2>/dev/null
}

# The management API must answer with *our* node name: a port taken over by another broker
# between the bind test and our listener would otherwise pass for ready.
mgmt_is_ours() {
    local out
    out=$(curl -fsS -m 2 -u guest:guest \
        "http://127.0.0.1:$MGMT_PORT/api/overview?columns=node" 2>/dev/null) || return 1
    [[ "$out" == *"\"node\":\"$NODENAME\""* ]]
}

# A real AMQP 0-9-1 handshake: send the protocol header, expect a method frame (type 1).
amqp_answers() {
    local fd b
    exec {fd}<>"/dev/tcp/127.0.0.1/$AMQP_PORT" 2>/dev/null || return 1
    printf 'AMQP\000\000\011\001' >&"$fd"
    LC_ALL=C IFS= read -r -t 2 -N 1 -u "$fd" b || b=""
    exec {fd}>&-
    [ "$b" = $'\001' ]
}
tls_port_open() {
    [ -n "${TLS_PORT:-}" ] || return 0
    local fd
    exec {fd}<>"/dev/tcp/127.0.0.1/$TLS_PORT" 2>/dev/null || return 1
    exec {fd}>&-
}

# The first error lines usually name the cause; the tails show where the node got to.
show_logs() {
    echo "---- $STARTLOG (first errors)" >&2
    grep -m 12 -E '\[error\]|[Ee]rror:' "$STARTLOG" >&2 2>/dev/null || true
    echo "---- $STARTLOG (tail)" >&2
    tail -n 30 "$STARTLOG" >&2 2>/dev/null || true
    echo "---- $N/log/${NODENAME}.log (tail)" >&2
    tail -n 60 "$N/log/${NODENAME}.log" >&2 2>/dev/null || true
}

wait_ready() {
    local deadline=$(($(now_ms) + START_TIMEOUT * 1000))
    while :; do
        if mgmt_is_ours && amqp_answers && tls_port_open; then
            return 0
        fi
        if ! group_alive; then
            show_logs
            die "node $NODENAME exited during startup"
        fi
        if [ "$(now_ms)" -ge "$deadline" ]; then
            show_logs
            kill -KILL -- "-$(cat "$PIDFILE")" 2>/dev/null || true
            die "node $NODENAME not ready after ${START_TIMEOUT}s (killed)"
        fi
        sleep 0.1
    done
}

# One CLI round trip proves the cookie and distribution work, which `ctl` relies on.
cli_check() {
    [ "$CLI_CHECK" = 1 ] || return 0
    if ! (cd "$N/run" && "${AS_NODE[@]}" "${NODE_ENV[@]}" "$SBIN/rabbitmq-diagnostics" -q \
        -n "$NODENAME" check_port_connectivity) >/dev/null 2>"$N/log/cli-check.err"; then
        cat "$N/log/cli-check.err" >&2
        show_logs
        die "rabbitmq-diagnostics check_port_connectivity failed for $NODENAME"
    fi
}

write_env() {
    local tmp=$ENVFILE.tmp
    {
        echo "NODENAME=$NODENAME"
        echo "AMQP_PORT=$AMQP_PORT"
        echo "MGMT_PORT=$MGMT_PORT"
        echo "DIST_PORT=$DIST_PORT"
        echo "AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT/"
        echo "MGMT_URL=http://127.0.0.1:$MGMT_PORT/"
        if [ -n "${TLS_PORT:-}" ]; then
            echo "TLS_PORT=$TLS_PORT"
            echo "AMQPS_URL=amqps://guest:guest@localhost:$TLS_PORT/"
        fi
        [ -z "${PROM_PORT:-}" ] || echo "PROM_PORT=$PROM_PORT"
        echo "BROKER_DIR=$DIR"
        echo "BROKER_PGID=$(cat "$PIDFILE")"
        echo "BROKER_PID=$(cat "$N/rabbit.pid" 2>/dev/null || true)"
    } >"$tmp"
    mv "$tmp" "$ENVFILE"
}

# A detached watcher kills the node once the owner (the test process) is gone, even when the
# owner was SIGKILLed (ctest timeout) and could run no cleanup. It leaves on its own when the
# node is stopped normally (broker.pid removed).
start_watcher() {
    [ -n "$OWNER_PID" ] || return 0
    kill -0 "$OWNER_PID" 2>/dev/null || die "--owner-pid $OWNER_PID: no such process"
    (
        exec 9>&-
        cd /
        exec setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -f "$2/broker.pid" ]; do
                sleep 1
            done
            [ -f "$2/broker.pid" ] && exec "$3" stop "$2" --kill' \
            watcher "$OWNER_PID" "$DIR" "$SELF"
    ) >/dev/null 2>&1 </dev/null &
}

# ---- commands -------------------------------------------------------------------------------

launch() {
    {
        echo "NODENAME=$NODENAME"
        echo "AMQP_PORT=$AMQP_PORT"
        echo "MGMT_PORT=$MGMT_PORT"
        echo "DIST_PORT=$DIST_PORT"
        [ -z "${TLS_PORT:-}" ] || echo "TLS_PORT=$TLS_PORT"
        [ -z "${PROM_PORT:-}" ] || echo "PROM_PORT=$PROM_PORT"
    } >"$LAUNCH"
    # setsid: the node gets its own session and process group, so `stop` can kill exactly it,
    # and a Ctrl-C in the caller's terminal does not reach it. The cwd is the node's own run
    # directory because a crash dump is written to the working directory.
    (cd "$N/run" && exec setsid "${AS_NODE[@]}" "${NODE_ENV[@]}" "$SBIN/rabbitmq-server") \
        >"$STARTLOG" 2>&1 </dev/null 9>&- &
    echo $! >"$PIDFILE"
}

cmd_start() {
    local t0 t_up
    t0=$(now_ms)
    exec 9>"$DIR/.broker.lock"
    flock -w $((START_TIMEOUT + 30)) 9 || die "another $PROG holds $DIR/.broker.lock"
    load_launch
    if group_alive; then
        [ -n "${NODENAME:-}" ] || die "a node runs under $DIR but $LAUNCH is missing"
        node_env
        wait_ready
        write_env
        start_watcher
        echo "$PROG: $NODENAME already running (amqp $AMQP_PORT, mgmt $MGMT_PORT)"
        return 0
    fi
    rm -f "$ENVFILE"
    choose_ports
    prepare_node_dir
    node_env
    launch
    start_watcher
    wait_ready
    t_up=$(now_ms)
    cli_check
    write_env
    echo "$PROG: $NODENAME ready in $(($(now_ms) - t0)) ms (answering after $((t_up - t0)) ms;" \
        "amqp $AMQP_PORT, mgmt $MGMT_PORT, dist $DIST_PORT${TLS_PORT:+, tls $TLS_PORT})"
}

wait_group_gone() {
    local deadline=$(($(now_ms) + $1 * 1000))
    while group_alive; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

cmd_stop() {
    exec 9>"$DIR/.broker.lock"
    flock -w $((STOP_TIMEOUT + 30)) 9 || die "another $PROG holds $DIR/.broker.lock"
    load_launch
    if group_alive; then
        local pg
        pg=$(cat "$PIDFILE")
        if [ "$KILL" = 0 ] && [ -n "${NODENAME:-}" ]; then
            node_env
            (cd "$N/run" && timeout "$STOP_TIMEOUT" "${AS_NODE[@]}" "${NODE_ENV[@]}" \
                "$SBIN/rabbitmqctl" -q -n "$NODENAME" stop) >/dev/null 2>&1 || true
            wait_group_gone "$STOP_TIMEOUT" || true
        fi
        if group_alive; then
            kill -KILL -- "-$pg" 2>/dev/null || true
            wait_group_gone 10 || die "process group $pg survived SIGKILL"
        fi
        echo "$PROG: ${NODENAME:-node} stopped"
    fi
    rm -f "$ENVFILE" "$PIDFILE"
    if [ "$CLEAN" = 1 ]; then
        rm -rf "$N" "$LAUNCH" "$STARTLOG" "$DIR/.broker.lock"
        rmdir "$DIR" 2>/dev/null || true
    fi
}

cmd_cli() {
    local tool=$1
    shift
    load_launch
    [ -n "${NODENAME:-}" ] || die "no node was started under $DIR"
    node_env
    cd "$N/run"
    exec "${AS_NODE[@]}" "${NODE_ENV[@]}" "$SBIN/$tool" -n "$NODENAME" "$@"
}

cmd_status() {
    load_launch
    [ -n "${NODENAME:-}" ] || return 1
    group_alive && mgmt_is_ours
}

parse_start_flags() {
    NODENAME="" AMQP_PORT="" MGMT_PORT="" DIST_PORT="" TLS_PORT="" TLS_DIR="" PROM_PORT=""
    PLUGINS=$BASE_PLUGINS TRIM=1 CLI_CHECK=1 OWNER_PID="" LISTEN="" COOKIE=""
    while [ $# -gt 0 ]; do
        case $1 in
        --nodename) NODENAME=${2:?}; [[ $NODENAME == *@* ]] || NODENAME="$NODENAME@localhost" ;;
        --amqp-port) AMQP_PORT=${2:?} ;;
        --mgmt-port) MGMT_PORT=${2:?} ;;
        --dist-port) DIST_PORT=${2:?} ;;
        --tls) TLS_DIR=$(cd "${2:?}" && pwd) || die "no such directory: $2" ;;
        --tls-port) TLS_PORT=${2:?} ;;
        --plugins) PLUGINS="$BASE_PLUGINS,${2:?}" ;;
        --heartbeat) HEARTBEAT=${2:?} ;;
        --stats-ms) STATS_MS=${2:?} ;;
        --timeout) START_TIMEOUT=${2:?} ;;
        --no-trim) TRIM=0; shift; continue ;;
        --no-cli-check) CLI_CHECK=0; shift; continue ;;
        --owner-pid) OWNER_PID=${2:?} ;;
        --listen) LISTEN=${2:?} ;;
        --cookie) COOKIE=${2:?} ;;
        *) usage ;;
        esac
        shift 2
    done
}

main() {
    [ $# -ge 2 ] || usage
    local cmd=$1
    find_rmq_root
    pick_node_user
    if [ "$cmd" = start ]; then
        mkdir -p "$2"
    elif [ "$cmd" = stop ] && [ ! -d "$2" ]; then
        exit 0 # already stopped and cleaned
    fi
    set_paths "$2"
    shift 2
    case $cmd in
    start)
        parse_start_flags "$@"
        cmd_start
        ;;
    stop)
        KILL=0 CLEAN=0
        while [ $# -gt 0 ]; do
            case $1 in
            --kill) KILL=1 ;;
            --clean) CLEAN=1 ;;
            --timeout) STOP_TIMEOUT=${2:?}; shift ;;
            *) usage ;;
            esac
            shift
        done
        cmd_stop
        ;;
    ctl) cmd_cli rabbitmqctl "$@" ;;
    diag) cmd_cli rabbitmq-diagnostics "$@" ;;
    queues) cmd_cli rabbitmq-queues "$@" ;;
    status) cmd_status ;;
    *) usage ;;
    esac
}

main "$@"
