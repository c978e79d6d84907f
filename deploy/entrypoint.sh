#!/bin/sh
# salvo-entrypoint: the container's role is its first argument, the rest goes to that binary.
#   producer ARGS...  -> salvo-producer ARGS...   (e.g. producer run /etc/salvo/schedule.yaml)
#   worker ARGS...    -> salvo-worker ARGS...     (e.g. worker run)
#   target ARGS...    -> salvo-target ARGS...     (the demo HTTP target, e.g. target --port 8088)
#   keygen FILE       -> write a new signing key to FILE (mode 0600) unless FILE already has one
#   help              -> this text
# exec, so the binary receives the stop signal itself (docker-compose adds an init for reaping).
set -eu

usage() {
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
}

role=${1:-help}
[ $# -eq 0 ] || shift
case $role in
producer | worker | target)
    exec "/usr/local/bin/salvo-$role" "$@"
    ;;
keygen)
    # salvo-producer keygen: "k1:base64(32 random bytes)", mode 0600, never overwriting.
    file=${1:?keygen needs a FILE}
    if [ -s "$file" ]; then
        echo "salvo-entrypoint: $file already holds a key; kept" >&2
        exit 0
    fi
    rm -f "$file" # empty: keygen never overwrites a file
    exec /usr/local/bin/salvo-producer keygen "$file" --key-id k1
    ;;
help | --help | -h)
    usage
    ;;
*)
    echo "salvo-entrypoint: unknown role '$role'" >&2
    usage >&2
    exit 2
    ;;
esac
