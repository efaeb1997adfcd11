#!/bin/bash
# Starts one Kafka broker of the scram-proxy fleet (apache/kafka image):
# fills in server.properties from the environment and the mounted secrets,
# formats the data directory on first start (creating the proxy's SCRAM
# user, which KRaft can only bootstrap at format time), then runs the broker.
#
# Environment:
#   NODE_ID                    node.id; default: the number after the last
#                              "-" of the host name (StatefulSet pod kafka-2 -> 2)
#   NODE_HOST                  host name the other brokers and the proxies'
#                              state-topic clients reach this broker by
#   CONTROLLER_QUORUM_VOTERS   id@host:9093 of every node, comma-separated
#   SECRETS_DIR                default /etc/kafka/fleet-secrets, holding
#                              cluster-id, kafka-password, proxy-password and
#                              delegation-token-secret-key (deploy/make-secrets.sh)
#   DATA_DIR                   default /var/lib/kafka/data
#   KAFKA_HOME                 default /opt/kafka
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
secrets=${SECRETS_DIR:-/etc/kafka/fleet-secrets}
data=${DATA_DIR:-/var/lib/kafka/data}
kafka=${KAFKA_HOME:-/opt/kafka}
host=${HOSTNAME:-$(hostname)}
node_id=${NODE_ID:-${host##*-}}
: "${NODE_HOST:?set NODE_HOST to the name other brokers reach this one by}"
: "${CONTROLLER_QUORUM_VOTERS:?set CONTROLLER_QUORUM_VOTERS (id@host:9093,...)}"

# secret NAME prints a secret file's first line. Secrets go into the
# properties file and the JAAS lines unescaped, so they must be plain
# tokens (make-secrets.sh writes hex).
secret() {
	local v
	v=$(head -n 1 "$secrets/$1")
	if [[ ! $v =~ ^[A-Za-z0-9_-]+$ ]]; then
		echo "start.sh: $secrets/$1 must hold letters, digits, '-' or '_' only" >&2
		exit 1
	fi
	printf '%s' "$v"
}
[[ $node_id =~ ^[0-9]+$ ]] || { echo "start.sh: node id '$node_id' is not a number; set NODE_ID" >&2; exit 1; }

# Read every secret first: a failure inside the sed or format command
# line below would not stop the script.
kafka_password=$(secret kafka-password)
proxy_password=$(secret proxy-password)
token_secret_key=$(secret delegation-token-secret-key)
cluster_id=$(secret cluster-id)

props=$(mktemp -d)/server.properties # private to this user (mktemp -d is 0700)
sed -e "s|@NODE_ID@|$node_id|g" \
	-e "s|@NODE_HOST@|$NODE_HOST|g" \
	-e "s|@CONTROLLER_QUORUM_VOTERS@|$CONTROLLER_QUORUM_VOTERS|g" \
	-e "s|@DATA_DIR@|$data|g" \
	-e "s|@KAFKA_PASSWORD@|$kafka_password|g" \
	-e "s|@DELEGATION_TOKEN_SECRET_KEY@|$token_secret_key|g" \
	"$here/server.properties" >"$props"

if [ ! -f "$data/meta.properties" ]; then
	"$kafka/bin/kafka-storage.sh" format --ignore-formatted \
		--cluster-id "$cluster_id" --config "$props" \
		--add-scram "SCRAM-SHA-512=[name=proxy,password=$proxy_password]" \
		--add-scram "SCRAM-SHA-256=[name=proxy,password=$proxy_password]"
fi
exec "$kafka/bin/kafka-server-start.sh" "$props"
