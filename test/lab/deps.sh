#!/usr/bin/env bash
# Installs the Debian packages the lab, the tests and the benchmarks need, without starting any daemon
# in the root namespace (a policy-rc.d refuses service starts during the install).
set -euo pipefail
# sudo: become on the prod profile's proxies; systemd: systemd-analyze security (unit test); ansible-lint,
# yamllint: the lint step of npm test; bind9*: the lab's DNS (rproxy_dns, dns tests); prometheus: promtool
# checks the shipped alert rules; jq: the handbook's examples (docs/); libnginx-mod-http-lua, lua-resty-*,
# lua-cjson: the proxies' Lua data plane (role nginx_rproxy; the lab's proxies run this machine's nginx)
packages=(ansible-core nginx libnginx-mod-http-lua libnginx-mod-http-ndk lua-resty-core lua-resty-lrucache lua-cjson keepalived openssh-server openssh-client activemq iproute2 wrk curl openssl procps psmisc python3 sudo systemd ansible-lint yamllint bind9 bind9-utils bind9-dnsutils prometheus jq)
missing=()
for p in "${packages[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || { echo "deps: missing Debian packages (${missing[*]}); run as root to install them" >&2; exit 2; }
echo "deps: installing ${missing[*]}"
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; created_policy=1; fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
