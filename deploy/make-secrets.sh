#!/bin/bash
# Creates the secrets of the scram-proxy fleet examples, once:
#
#   deploy/make-secrets.sh OUT HOST...
#
# OUT/secrets/   what the containers mount (kept private to you: 0700)
#   ca.crt, tls.crt, tls.key       a private CA and the proxies' certificate for HOST...
#   users.yaml                     SCRAM users admin (a super user) and alice
#   proxy-password                 the proxies' own SCRAM password at the brokers (User:proxy)
#   kafka-password                 the brokers' password among themselves (User:kafka)
#   delegation-token-secret-key    the brokers' delegation.token.secret.key (the proxies' token key)
#   cluster-id                     the KRaft cluster id
#   state-key                      the key sealing the shared state topic's records (id s1)
# OUT/client/    what a client needs: ca.crt and admin.properties,
#                alice.properties (Java client settings with the passwords)
#
# Existing files are kept, so running it again changes nothing. Needs
# openssl and scram-proxy (set SCRAM_PROXY to its path if it is not on PATH;
# `go build -o scram-proxy ./cmd/scram-proxy` builds it).
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 OUT HOST... (e.g. $0 deploy/compose localhost)" >&2
	exit 2
fi
out=$1
shift
scram_proxy=${SCRAM_PROXY:-scram-proxy}
s=$out/secrets
c=$out/client
mkdir -p "$s" "$c"
chmod 700 "$s" "$c"

# The containers run as other users (the proxy as uid 65532, the broker as
# 1000) and bind-mount single files, so the files are world-readable inside
# the private directories.
umask 022

hex() { openssl rand -hex 24; }
once() { # once FILE COMMAND...: write COMMAND's output to FILE unless it exists
	local f=$1
	shift
	[ -s "$f" ] || "$@" >"$f"
}
state_key() { # state.kafka.key_file: "<id> <32 bytes, base64>"
	echo "s1 $(openssl rand -base64 32)"
}
cluster_id() { # 16 random bytes, base64url without padding, not starting with '-'
	local id=-
	while [[ $id == -* ]]; do
		id=$(openssl rand 16 | openssl base64 -A | tr '+/' '-_' | tr -d '=')
	done
	echo "$id"
}

once "$s/proxy-password" hex
once "$s/kafka-password" hex
once "$s/delegation-token-secret-key" hex
once "$s/cluster-id" cluster_id
once "$s/state-key" state_key

if [ ! -s "$s/tls.crt" ]; then
	san=
	for h in "$@"; do
		san="$san${san:+,}DNS:$h"
	done
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 825 \
		-subj "/CN=scram-proxy fleet example CA" -keyout "$tmp/ca.key" -out "$s/ca.crt" 2>/dev/null
	openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-subj "/CN=$1" -keyout "$s/tls.key" -out "$tmp/tls.csr" 2>/dev/null
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$tmp/ext"
	openssl x509 -req -in "$tmp/tls.csr" -CA "$s/ca.crt" -CAkey "$tmp/ca.key" -CAserial "$tmp/ca.srl" -CAcreateserial \
		-days 825 -extfile "$tmp/ext" -out "$s/tls.crt" 2>/dev/null
fi
cp "$s/ca.crt" "$c/ca.crt"

for user in admin alice; do
	[ -s "$c/$user-password" ] && continue
	hex >"$c/$user-password"
	"$scram_proxy" users add --file "$s/users.yaml" --name "$user" --mechanism SCRAM-SHA-512 <"$c/$user-password" >/dev/null
	"$scram_proxy" users add --file "$s/users.yaml" --name "$user" --mechanism SCRAM-SHA-256 <"$c/$user-password" >/dev/null
	cat >"$c/$user.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$user" password="$(cat "$c/$user-password")";
ssl.truststore.type=PEM
ssl.truststore.location=$(cd "$c" && pwd)/ca.crt
PROPS
	chmod 600 "$c/$user-password" "$c/$user.properties"
done
chmod 644 "$s"/*
echo "secrets in $s, client settings in $c"
