#!/usr/bin/env bash
# mkcerts.sh: make a throwaway CA, a server certificate for "localhost" and a client certificate
# in OUTDIR, with the file names `broker.sh start --tls OUTDIR` expects (tls-gen's names).
#
#   mkcerts.sh OUTDIR [CLIENT_CN]
#
# Files: ca_certificate.pem ca_key.pem server_certificate.pem server_key.pem
#        client_certificate.pem client_key.pem. Valid for 30 days; for tests only.
# The server certificate carries DNS:localhost (rabbitmq-c 0.11 checks DNS names only, so clients
# connect to "localhost") and IP:127.0.0.1 for other clients.
set -euo pipefail

[ $# -ge 1 ] || {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
out=$1
client_cn=${2:-salvo-client}
mkdir -p "$out"
cd "$out"
command -v openssl >/dev/null || {
    echo "mkcerts.sh: openssl not found" >&2
    exit 1
}

days=30
quiet() { "$@" >/dev/null 2>&1 || { "$@" >&2; exit 1; }; }

quiet openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -subj "/CN=salvo test CA" \
    -keyout ca_key.pem -out ca_certificate.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

# sign NAME CN EXT: key + CSR + certificate signed by the CA above.
sign() {
    local name=$1 cn=$2 ext=$3
    quiet openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" \
        -keyout "${name}_key.pem" -out "$name.csr"
    printf '%s\n' "$ext" >"$name.ext"
    quiet openssl x509 -req -in "$name.csr" -CA ca_certificate.pem -CAkey ca_key.pem \
        -CAcreateserial -days "$days" -extfile "$name.ext" -out "${name}_certificate.pem"
    rm -f "$name.csr" "$name.ext"
}
sign server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth
basicConstraints=CA:FALSE"
sign client "$client_cn" "extendedKeyUsage=clientAuth
basicConstraints=CA:FALSE"
rm -f ca_certificate.srl
chmod 600 ./*_key.pem
echo "mkcerts.sh: CA, server (localhost) and client ($client_cn) certificates in $PWD"
