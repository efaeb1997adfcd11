#!/usr/bin/env bash
# Installs what the real-client integration tests (test/clients) need, when
# it is missing: kcat, kafka-python and confluent-kafka from Debian (apt), and
# kafkajs from npm, pinned by test/clients/kafkajs/package-lock.json (npm ci);
# Java 17 and Maven (apt), then the Apache Kafka jars pinned in
# test/kafkabed/pom.xml, resolved by Maven into ~/.cache/scram-proxy.
# Idempotent: prints one line per dependency, "present:" or "installing:".
# Needs a Debian-like system; root, or sudo, only when apt has work to do.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "install-test-deps: need root (or sudo) to run: $*" >&2
    return 1
  fi
}

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The Python drivers run with /usr/bin/python3: the Debian packages install
# into its dist-packages, whatever python3 comes first on PATH (e.g. pyenv).
py_has() { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import $1" 2>/dev/null; }

missing=()
if command -v kcat >/dev/null; then
  echo "present: kcat ($(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\).*librdkafka \([^ ]*\).*/\1, librdkafka \2/p'))"
else
  missing+=(kcat)
fi
if py_has kafka; then
  echo "present: python3-kafka ($(/usr/bin/python3 -c 'import kafka; print(kafka.__version__)'))"
else
  missing+=(python3-kafka)
fi
if py_has confluent_kafka; then
  echo "present: python3-confluent-kafka ($(/usr/bin/python3 -c 'import confluent_kafka as c; print(c.__version__ + ", librdkafka " + c.libversion()[0])'))"
else
  missing+=(python3-confluent-kafka)
fi
if ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
  missing+=(python3-venv)
fi
if ! command -v javac >/dev/null || ! java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])'; then
  missing+=(openjdk-17-jdk-headless)
fi
if ! command -v mvn >/dev/null; then
  missing+=(maven)
fi
if ! command -v node >/dev/null; then
  missing+=(nodejs)
fi
if ! command -v npm >/dev/null; then
  missing+=(npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  for p in "${missing[@]}"; do echo "installing: $p (apt)"; done
  apt_install "${missing[@]}"
  command -v kcat >/dev/null || { echo "install-test-deps: kcat still missing" >&2; exit 1; }
  py_has kafka || { echo "install-test-deps: /usr/bin/python3 cannot import kafka" >&2; exit 1; }
  py_has confluent_kafka || { echo "install-test-deps: /usr/bin/python3 cannot import confluent_kafka" >&2; exit 1; }
fi
echo "present: node $(node --version), npm $(npm --version)"

# kafkajs: node_modules must hold exactly the versions package-lock.json pins;
# otherwise (missing, or the lockfile changed since) reinstall from the lock.
js=test/clients/kafkajs
if (cd "$js" && node -e '
  const fs = require("fs")
  const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"))
  for (const [path, meta] of Object.entries(lock.packages || {})) {
    if (!path || meta.link) continue
    const pkg = JSON.parse(fs.readFileSync(path + "/package.json", "utf8"))
    if (pkg.version !== meta.version) process.exit(1)
  }' 2>/dev/null); then
  echo "present: kafkajs $(cd "$js" && node -p 'require("kafkajs/package.json").version') (node_modules matches package-lock.json)"
else
  echo "installing: kafkajs (npm ci in $js)"
  (cd "$js" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
fi

# Current kafka-python and confluent-kafka from PyPI, pinned by
# test/clients/requirements.txt, in a virtual environment that records the
# requirements it was made from (the tests check them).
cache="${KAFKABED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scram-proxy}"
venv="$cache/pyvenv"
req=test/clients/requirements.txt
if ! cmp -s "$req" "$venv/requirements.txt" || ! "$venv/bin/python" -c 'import kafka, confluent_kafka' 2>/dev/null; then
  echo "installing: $(grep -v '^#' "$req" | xargs) (PyPI, venv $venv)"
  rm -rf "$venv"
  mkdir -p "$cache"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-input -r "$req"
  cp "$req" "$venv/requirements.txt"
fi
echo "present: $("$venv/bin/python" -c 'import kafka, confluent_kafka as c; print("kafka-python " + kafka.__version__ + ", confluent-kafka " + c.__version__ + ", librdkafka " + c.libversion()[0])') (PyPI, $venv)"

# Apache Kafka (broker, tools, Java client) for the real-Kafka test bed.
echo "present: $(java -version 2>&1 | head -1), $(mvn -v 2>/dev/null | head -1 | sed 's/\x1b\[[0-9;]*m//g')"
"${GO:-go}" -C test run ./kafkabed/cmd/kafka-testbed -fetch-only | sed 's/^/present: /'
