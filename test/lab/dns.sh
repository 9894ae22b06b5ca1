#!/usr/bin/env bash
# The lab's DNS: BIND (named) in the root namespace (the broker host), listening only on 198.51.100.1:53; the
# client netns resolves through it (/etc/netns/rpclient/resolv.conf), so `ip netns exec rpclient curl
# http://shop-acme.apps.example.com/` reaches a gear by name. The machine's own resolver and /etc/bind are never
# touched: everything lives under .lab/dns/ (removed by lab.sh down, which also stops named through its pid file).
#
# It serves:
#   apps.example.com   the cloud domain (cloud_domain of .lab/config.yml), by the rproxy_dns role of site.yml (bind mode: the role writes the zone
#                      and its statement under .lab/dns/rproxy/ and includes it from .lab/dns/named.conf.local)
#   example.com, example.org   the application owners' zones (aliases), dynamic with the TSIG key lab-owners
#
# Usage: dns.sh up            write the configuration, keys and zones, start named, point the client at it, write
#                             the role's lab settings (.lab/inventory/group_vars/brokers/rproxy_dns.yml)
#        dns.sh mode bind     the cloud domain is served by the role's zone (the lab's default)
#        dns.sh mode dynamic  the lab's BIND plays "the operator's DNS server": apps.example.com becomes an empty
#                             dynamic zone where the TSIG key rproxy-lab may change *.apps.example.com A/AAAA only
#        dns.sh reload        named reloads its configuration and zones (SIGHUP; the role's reload command here)
#        dns.sh check         exit 0 when named runs and answers
#        dns.sh owners FILE   apply an nsupdate batch (without key) to the owners' zones, signed with lab-owners
set -euo pipefail

LAB_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$LAB_SCRIPT_DIR/../.." && pwd)"
LAB="$REPO/.lab"
D="$LAB/dns"
NET=198.51.100
DNS_IP=$NET.1
# the lab profile's cloud domain, config file and inventory (CLOUD_DOMAIN, CONFIG_FILE, INVENTORY), from lab.sh
eval "$(bash "$LAB_SCRIPT_DIR/lab.sh" profile-env)"
CLIENT_NS=rpclient

die() { printf '\033[31mdns: %s\033[0m\n' "$*" >&2; exit 1; }
info() { printf '          %s\n' "$*"; }

named_pid() { local p; p=$(cat "$D/named.pid" 2>/dev/null || true); [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"; }

answers() { dig +time=1 +tries=1 +short @"$DNS_IP" example.com SOA >/dev/null 2>&1 && [ -n "$(dig +time=1 +tries=1 +short @"$DNS_IP" example.com SOA)" ]; }

tsig_secret() { sed -n 's/.*secret "\(.*\)";.*/\1/p' "$1"; }

zone_head() { # DOMAIN NS-NAME
  cat <<EOF
\$TTL 60
@	IN	SOA	$2. hostmaster.$1. ( 1 3600 900 1209600 60 )
@	IN	NS	$2.
EOF
}

write_config() {
  mkdir -p "$D/data" "$D/rproxy" "$D/dyn"
  [ -f "$D/lab-owners.key" ] || tsig-keygen -a hmac-sha256 lab-owners > "$D/lab-owners.key"
  [ -f "$D/rproxy-lab.key" ] || tsig-keygen -a hmac-sha256 rproxy-lab > "$D/rproxy-lab.key"
  chmod 600 "$D"/*.key
  cat > "$D/named.conf" <<EOF
// The lab's DNS server (test/lab/dns.sh); removed by lab.sh down. Only 198.51.100.1:53. It is the lab client's
// resolver too (recursion, so a CNAME into another zone is followed), but it is authoritative for the root zone:
// every question is answered from the lab's own zones and no query ever leaves the machine.
options {
    directory "$D/data";
    pid-file "$D/named.pid";
    session-keyfile "$D/data/session.key";
    managed-keys-directory "$D/data";
    listen-on port 53 { $DNS_IP; };
    listen-on-v6 { none; };
    recursion yes;
    allow-recursion { $NET.0/24; };
    allow-query { any; };
    dnssec-validation no;
    notify no;
};
controls { };
logging {
    channel lab { file "$D/named.log" versions 2 size 1m; print-time yes; severity info; };
    category default { lab; };
    category lame-servers { null; };
};
zone "." { type primary; file "$D/data/db.root"; };
include "$D/lab-owners.key";
include "$D/rproxy-lab.key";
// the application owners' zones: their aliases (updated by the tests with the key lab-owners)
zone "example.com" { type primary; file "$D/data/db.example.com"; allow-update { key "lab-owners"; }; };
zone "example.org" { type primary; file "$D/data/db.example.org"; allow-update { key "lab-owners"; }; };
// the cloud domain: the rproxy_dns role's include line (bind mode), or the dynamic zone of "dns.sh mode dynamic"
include "$D/named.conf.local";
EOF
  : > "$D/named.conf.local"
  printf '$TTL 60\n@\tIN\tSOA\ta.root.lab. hostmaster.root.lab. ( 1 3600 900 1209600 60 )\n@\tIN\tNS\ta.root.lab.\na.root.lab.\tIN\tA\t%s\n' "$DNS_IP" \
    > "$D/data/db.root"
  {
    zone_head example.com ns1.example.com
    echo "ns1	IN	A	$DNS_IP"
    echo "; the demo's aliases, as their owners would point them: a CNAME to the application's name"
    echo "www	IN	CNAME	shop-acme.$CLOUD_DOMAIN."
    echo "secure	IN	CNAME	shop-acme.$CLOUD_DOMAIN."
  } > "$D/data/db.example.com"
  {
    zone_head example.org ns1.example.com
    echo "blog	IN	CNAME	blog-acme.$CLOUD_DOMAIN."
  } > "$D/data/db.example.org"
  named-checkconf -z "$D/named.conf" >/dev/null || die "named-checkconf refused $D/named.conf: $(named-checkconf -z "$D/named.conf" 2>&1 | tail -3)"
}

write_role_vars() { # the rproxy_dns role's settings in the lab (bind mode, BIND run by this script)
  [ -d "$INVENTORY" ] || die "no lab inventory ($INVENTORY): run lab.sh up first"
  mkdir -p "$INVENTORY/group_vars/brokers"
  local secret tsig; secret=$(tsig_secret "$D/rproxy-lab.key")
  if [ "$LAB_PROFILE" = prod ]; then
    # the prod profile keeps every secret of the operator's inventory vaulted (inline, with the lab's vault password)
    tsig=$(printf %s "$secret" | ansible-vault encrypt_string --vault-password-file "$LAB/vault-pass" \
      --stdin-name rproxy_dns_tsig_key_secret 2>/dev/null) || die "ansible-vault encrypt_string failed"
  else
    tsig="rproxy_dns_tsig_key_secret: $secret"
  fi
  cat > "$INVENTORY/group_vars/brokers/rproxy_dns.yml" <<EOF
# The lab's DNS settings for roles/rproxy_dns (written by test/lab/dns.sh). bind mode: the broker host (root
# netns) is authoritative for $CLOUD_DOMAIN through the lab's named, which this script runs (no systemd): the
# role writes its files under .lab/dns/rproxy/, includes them from .lab/dns/named.conf.local, reloads with SIGHUP.
rproxy_dns_mode: bind
rproxy_dns_install: false
rproxy_dns_ttl: 60
rproxy_dns_cli_config: $CONFIG_FILE
rproxy_dns_nameservers:
  - {name: ns1.$CLOUD_DOMAIN, addresses: [$DNS_IP]}
rproxy_dns_soa_email: dns-admin@example.com
rproxy_dns_bind_named_conf: $D/named.conf
rproxy_dns_bind_include_file: $D/named.conf.local
rproxy_dns_bind_conf_file: $D/rproxy/named.conf.paas-rproxy
rproxy_dns_bind_zone_dir: $D/rproxy
rproxy_dns_bind_manage_service: false
rproxy_dns_bind_reload_command: [bash, $LAB_SCRIPT_DIR/dns.sh, reload]
rproxy_dns_bind_verify_server: $DNS_IP
# nsupdate mode (-e rproxy_dns_mode=nsupdate after "dns.sh mode dynamic"): the lab's BIND as the operator's server
rproxy_dns_nsupdate_server: $DNS_IP
rproxy_dns_tsig_key_name: rproxy-lab
rproxy_dns_tsig_key_algorithm: hmac-sha256
$tsig
EOF
}

start() {
  [ -z "$(named_pid)" ] || return 0
  grep -q " $DNS_IP/" <<< "$(ip -o addr show 2>/dev/null)" || die "$DNS_IP is not configured (the lab's bridge): run lab.sh up first"
  setsid nohup named -f -c "$D/named.conf" > "$D/named.out" 2>&1 < /dev/null &
  local i
  for ((i = 0; i < 100; i++)); do
    answers && { info "named ready on $DNS_IP:53 (pid $(named_pid), log .lab/dns/named.log)"; return 0; }
    sleep 0.1
  done
  die "named does not answer on $DNS_IP:53: $(tail -5 "$D/named.out" "$D/named.log" 2>/dev/null)"
}

client_resolver() {
  mkdir -p "/etc/netns/$CLIENT_NS"
  printf '# the lab client resolves through the lab DNS (test/lab/dns.sh)\nnameserver %s\noptions timeout:1 attempts:2\n' "$DNS_IP" \
    > "/etc/netns/$CLIENT_NS/resolv.conf"
}

reload() {
  local p; p=$(named_pid) || die "named is not running"
  kill -HUP "$p"
}

mode() {
  case "${1:-}" in
    bind)
      : > "$D/named.conf.local"
      ;;
    dynamic)
      rm -rf "$D/dyn" && mkdir -p "$D/dyn"
      { zone_head "$CLOUD_DOMAIN" "ns1.$CLOUD_DOMAIN"; echo "ns1	IN	A	$DNS_IP"; } > "$D/dyn/db.$CLOUD_DOMAIN"
      # least privilege, as roles/rproxy_dns/README.md recommends: the key may change the wildcard's A/AAAA only
      echo "zone \"$CLOUD_DOMAIN\" { type primary; file \"$D/dyn/db.$CLOUD_DOMAIN\"; update-policy { grant rproxy-lab name *.$CLOUD_DOMAIN. A AAAA; }; };" > "$D/named.conf.local"
      ;;
    *) die "usage: dns.sh mode bind|dynamic" ;;
  esac
  named-checkconf -z "$D/named.conf" >/dev/null || die "named-checkconf refused the configuration: $(named-checkconf -z "$D/named.conf" 2>&1 | tail -3)"
  reload
  # the reload is asynchronous: wait until the cloud domain's own zone is (dynamic) or is not (bind) served, i.e.
  # until its SOA is (or is not) in the answer
  local i want; [ "$1" = dynamic ] && want=1 || want=0
  for ((i = 0; i < 100; i++)); do
    local got=0
    grep -qE "^${CLOUD_DOMAIN//./\\.}\.[[:space:]].*SOA" <<< "$(dig +time=1 +tries=1 +norec +noall +answer @"$DNS_IP" "$CLOUD_DOMAIN" SOA)" && got=1
    [ "$got" = "$want" ] && return 0
    sleep 0.1
  done
  die "named did not switch $CLOUD_DOMAIN to mode $1"
}

cmd=${1:-}
shift || true
case "$cmd" in
  up)
    [ "$(id -u)" = 0 ] || die "needs root"
    command -v named >/dev/null || die "named is missing: run test/lab/deps.sh"
    write_config
    start
    client_resolver
    write_role_vars
    ;;
  start) start ;;
  reload) reload ;;
  mode) mode "$@" ;;
  check) [ -n "$(named_pid)" ] && answers ;;
  owners)
    [ $# -eq 1 ] || die "usage: dns.sh owners BATCH-FILE"
    nsupdate -v -k "$D/lab-owners.key" "$1"
    ;;
  *)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] || [ "$cmd" = help ] || exit 2
    ;;
esac
