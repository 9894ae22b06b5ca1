#!/usr/bin/env bash
# The lab: real "hosts" as network namespaces on one bridge, reached by Ansible over real SSH.
# Address plan (other tools rely on it; see test/lab/README.md and docs/ARCHITECTURE.md):
#   bridge rplab0 198.51.100.1/24 (root ns = broker host: ActiveMQ, listener, Ansible controller)
#   proxies rp1 198.51.100.11, rp2 198.51.100.12 (further ones .13, .14 ...), interface eth0 in each
#   VIPs 198.51.100.201, 198.51.100.202; gears (netns rpgears) 198.51.100.31-39; client netns rpclient .100
#   STOMP 198.51.100.1:61613 and 127.0.0.1:61613 (routinginfo/routinginfopasswd); cloud domain apps.example.com
#   (the prod profile differs: see "Profiles" below and test/lab/README.md)
#
# Usage: lab.sh up [--infra] [--profile default|prod]   bring the lab up (--infra: hosts, gears, ActiveMQ, inventory only)
#        lab.sh down           remove everything (safe after a crash, safe twice)
#        lab.sh status         what is running
#        lab.sh check          exit 0 when the infrastructure is up (and "provisioned" when site.yml ran)
#        lab.sh test-up        for the integration tests: reuse a running lab of the profile, else build, infra, site.yml
#        lab.sh ssh HOST [CMD] ssh into a lab host as Ansible does
#        lab.sh demo           (re)run the demo on a running lab
#        lab.sh host rpN       add a bare proxy host (netns + sshd) without touching the inventory
#        lab.sh host-del rpN   remove such a host (its processes, netns, /etc/netns/rpN, known_hosts line)
#        lab.sh profile-env    the profile's settings as shell assignments (CLOUD_DOMAIN, CONFIG_FILE, INVENTORY, ...)
# Profiles (--profile or PAAS_RPROXY_LAB_PROFILE; a running lab keeps the one it was built with, .lab/profile):
#   default  2 proxies, 2 VIPs, apps.example.com, root SSH, multicast VRRP on eth0, everything under .lab/,
#            the listener in place from the checkout (the developer's lab)
#   prod     every operator setting differs from its default: 3 proxies and 3 VIPs, paas.example.net with a
#            wildcard certificate (lab CA), STOMP credentials in ansible-vault (password file .lab/vault-pass),
#            SSH as rpadmin with sudo (become), unicast VRRP on ens4, the listener installed in /opt/paas-rproxy
#            running as the unprivileged user paas-rproxy (owner of /var/lib/paas-rproxy and its SSH key) over
#            STOMP+TLS (CA verified), configuration and inventory in /etc/paas-rproxy
set -euo pipefail

LAB_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$LAB_SCRIPT_DIR/../.." && pwd)"
LAB="$REPO/.lab"

BR=rplab0
NET=198.51.100
BR_IP=$NET.1
GEARS_NS=rpgears
GEAR_FIRST=31
GEAR_LAST=39
GEAR_PORTS=8080,35531-35580
CLIENT_NS=rpclient
CLIENT_IP=$NET.100
STOMP_PORT=61613
STOMP_LOGIN=routinginfo

# ------------------------------------------------------------------------------- profile settings (all here)
# The profile: --profile NAME anywhere in the arguments, else a running lab's, else PAAS_RPROXY_LAB_PROFILE.
LAB_ARGS=()
LAB_PROFILE_ARG=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) LAB_PROFILE_ARG=${2:-}; shift 2 || shift ;;
    --profile=*) LAB_PROFILE_ARG=${1#--profile=}; shift ;;
    *) LAB_ARGS+=("$1"); shift ;;
  esac
done
set -- "${LAB_ARGS[@]+"${LAB_ARGS[@]}"}"
LAB_PROFILE_RUNNING=$(cat "$LAB/profile" 2>/dev/null || true)
LAB_PROFILE=${LAB_PROFILE_ARG:-${LAB_PROFILE_RUNNING:-${PAAS_RPROXY_LAB_PROFILE:-default}}}

profile_settings() {
  case "$LAB_PROFILE" in
    default)
      PROXIES=(rp1 rp2)
      VIPS=($NET.201 $NET.202)
      CLOUD_DOMAIN=apps.example.com
      PROXY_IF=eth0              # the proxies' interface (VIPs, VRRP)
      VRRP_UNICAST=false
      SSH_USER=root              # Ansible's ansible_user on the proxies
      STOMP_PASSCODE=routinginfopasswd             # OpenShift's public default (allowed in this lab only)
      LISTENER_STOMP_PASSCODE=paas-rproxy-lab
      STOMP_TLS_PORT=""          # no STOMP+TLS
      CONFIG_FILE=$LAB/config.yml
      INVENTORY=$LAB/inventory
      STATE_DIR=$LAB/var
      LISTENER_USER=root          # in place from the checkout (which may not be readable by anyone else)
      LISTENER_DIR=$LAB/listener  # config, supervisor pid files and log
      INSTALL_DIR=$REPO
      SSH_KEY=$LAB/ssh/id_ed25519
      KNOWN_HOSTS=$LAB/ssh/known_hosts
      ;;
    prod)
      PROXIES=(rp1 rp2 rp3)
      VIPS=($NET.201 $NET.202 $NET.203)
      CLOUD_DOMAIN=paas.example.net
      PROXY_IF=ens4
      VRRP_UNICAST=true
      SSH_USER=rpadmin
      STOMP_PASSCODE=""           # generated, kept in the vault
      LISTENER_STOMP_PASSCODE=""
      STOMP_TLS_PORT=61614
      CONFIG_FILE=/etc/paas-rproxy/config.yml
      INVENTORY=/etc/paas-rproxy/inventory
      STATE_DIR=/var/lib/paas-rproxy
      LISTENER_USER=paas-rproxy
      LISTENER_DIR=/etc/paas-rproxy
      INSTALL_DIR=/opt/paas-rproxy
      SSH_KEY=$STATE_DIR/.ssh/id_ed25519
      KNOWN_HOSTS=$STATE_DIR/.ssh/known_hosts
      ;;
    *) echo "lab: unknown profile '$LAB_PROFILE' (default, prod)" >&2; exit 2 ;;
  esac
  declare -gA PROXY_IP=()
  local h
  for h in "${PROXIES[@]}"; do PROXY_IP[$h]=$NET.$((10 + ${h#rp})); done
}
profile_settings
# Paths outside .lab/ that the prod profile creates (removed by `down` when its marker is there)
PROD_PATHS=(/etc/paas-rproxy /var/lib/paas-rproxy /opt/paas-rproxy /var/log/paas-rproxy /run/paas-rproxy)
PROD_MARKER=/etc/paas-rproxy/.rplab
PROD_USERS=(paas-rproxy rpadmin)

T0=$(date +%s.%N)
step() { printf '\033[1m[lab %6.1fs]\033[0m %s\n' "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" "$*"; }
info() { printf '          %s\n' "$*"; }
die() { printf '\033[31mlab: %s\033[0m\n' "$*" >&2; exit 1; }

proxy_ip() { # HOST -> address (rpN -> .(10+N))
  local h=$1
  if [ -n "${PROXY_IP[$h]:-}" ]; then echo "${PROXY_IP[$h]}"; return; fi
  [[ $h =~ ^rp([0-9]+)$ ]] || die "not a proxy host name: $h (rp1, rp2, ...)"
  echo "$NET.$((10 + BASH_REMATCH[1]))"
}

lab_ns_list() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^(rp[0-9]+|rpclient|rpgears)$' || true; }

# ---------------------------------------------------------------------------------------------- checks
require_root() {
  [ "$(id -u)" = 0 ] || die "the lab needs root (network namespaces, bridge, mounts): run it as root (sudo npm run lab)"
}

require_netns() {
  command -v ip >/dev/null || die "'ip' (iproute2) is missing: run test/lab/deps.sh"
  command -v unshare >/dev/null || die "'unshare' (util-linux) is missing"
  local probe=rplabprobe$$
  if ! ip netns add "$probe" 2>/tmp/rplab-netns-err.$$; then
    local err; err=$(cat /tmp/rplab-netns-err.$$); rm -f /tmp/rplab-netns-err.$$
    die "network namespaces are not permitted here (ip netns add: $err). The lab needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN (a privileged container or a VM)."
  fi
  rm -f /tmp/rplab-netns-err.$$
  if ! ip netns exec "$probe" unshare --mount --propagation private true 2>/dev/null; then
    ip netns del "$probe" || true
    die "mount namespaces are not permitted here (unshare --mount failed inside a netns)"
  fi
  if ! ip link add rplabprobe0 type bridge 2>/dev/null; then
    ip netns del "$probe" || true
    die "creating a bridge is not permitted here (ip link add type bridge failed)"
  fi
  ip link del rplabprobe0
  ip netns del "$probe"
}

# ---------------------------------------------------------------------------------------------- network
flush_neigh() { # ADDRESS: forget its MAC everywhere (a host re-created with the same address has a new one)
  local a=$1 ns
  ip neigh flush to "$a" dev "$BR" 2>/dev/null || true
  for ns in $(lab_ns_list); do ip -n "$ns" neigh flush to "$a" 2>/dev/null || true; done
}

add_ns() { # NAME IFNAME ADDRESS... : netns with lo up and IFNAME (veth to the bridge) holding the addresses
  local ns=$1 ifname=$2; shift 2
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "rpl-$ns" type veth peer name "$ifname" netns "$ns"
  ip link set "rpl-$ns" master "$BR" up
  local a
  for a in "$@"; do ip -n "$ns" addr add "$a/24" dev "$ifname"; flush_neigh "$a"; done
  ip -n "$ns" link set "$ifname" up
}

net_up() {
  step "bridge $BR $BR_IP/24"
  ip link add "$BR" type bridge
  ip addr add "$BR_IP/24" dev "$BR"
  ip link set "$BR" up
  # no netfilter on bridged frames (VRRP multicast and ARP must flow freely between the namespaces)
  if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
    ip link set "$BR" type bridge nf_call_iptables 0 nf_call_arptables 0 2>/dev/null || true
  fi
  step "client netns $CLIENT_NS ($CLIENT_IP)"
  add_ns "$CLIENT_NS" eth0 "$CLIENT_IP"
  step "gears netns $GEARS_NS ($NET.$GEAR_FIRST-$GEAR_LAST)"
  local gear_addrs=() i
  for ((i = GEAR_FIRST; i <= GEAR_LAST; i++)); do gear_addrs+=("$NET.$i"); done
  add_ns "$GEARS_NS" eth0 "${gear_addrs[@]}"
}

# ---------------------------------------------------------------------------------------------- ssh
ssh_setup() {
  mkdir -p "$LAB/ssh"
  chmod 700 "$LAB/ssh"
  if [ "$LAB_PROFILE" = prod ]; then
    prod_users_setup
  elif [ ! -f "$SSH_KEY" ]; then
    ssh-keygen -q -t ed25519 -N '' -C "paas-rproxy-lab" -f "$SSH_KEY"
  fi
  if [ "$LAB_PROFILE" = prod ]; then
    # as recommended for real proxies (README "On real hosts"): the listener's key works from the broker only
    printf 'from="%s",no-agent-forwarding,no-port-forwarding,no-X11-forwarding %s\n' "$BR_IP" "$(cat "$SSH_KEY.pub")" > "$LAB/ssh/authorized_keys"
  else
    cp "$SSH_KEY.pub" "$LAB/ssh/authorized_keys"
  fi
  chmod 644 "$LAB/ssh/authorized_keys"
  : > "$KNOWN_HOSTS"
  [ "$LAB_PROFILE" = prod ] && chown "$LISTENER_USER:$LISTENER_USER" "$KNOWN_HOSTS" && chmod 644 "$KNOWN_HOSTS"
  {
    echo "# ssh -F $LAB/ssh/config rp1   (written by test/lab/lab.sh)"
    echo "Host *"
    echo "  User $SSH_USER"
    echo "  IdentityFile $SSH_KEY"
    echo "  IdentitiesOnly yes"
    echo "  UserKnownHostsFile $KNOWN_HOSTS"
    echo "  StrictHostKeyChecking yes"
    echo "  ConnectTimeout 5"
    echo "  LogLevel ERROR"
  } > "$LAB/ssh/config"
}

ssh_opts() { echo "-F $LAB/ssh/config"; }

lab_ssh() { # HOST CMD... : as root on the host (sudo when the profile's SSH user is not root)
  local h=$1; shift
  local cmd="$*"
  [ "$SSH_USER" = root ] || cmd="sudo -n sh -c $(printf '%q' "$cmd")"
  # shellcheck disable=SC2046
  ssh $(ssh_opts) -o BatchMode=yes "$SSH_USER@$(proxy_ip "$h")" "$cmd"
}

# prod profile: the listener's user owns its key (the proxies accept it for rpadmin, who may sudo), as an
# operator sets it up before the first site.yml (README "On real hosts"); the role would create both too.
prod_users_setup() {
  id -u "$LISTENER_USER" >/dev/null 2>&1 || useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
    --shell /usr/sbin/nologin "$LISTENER_USER"
  id -u "$SSH_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$SSH_USER"
  mkdir -p /etc/paas-rproxy "$STATE_DIR/.ssh"
  date -u +%FT%TZ > "$PROD_MARKER"
  chown "$LISTENER_USER:$LISTENER_USER" "$STATE_DIR" "$STATE_DIR/.ssh"
  chmod 750 "$STATE_DIR"; chmod 700 "$STATE_DIR/.ssh"
  [ -f "$SSH_KEY" ] || setpriv --reuid="$LISTENER_USER" --regid="$LISTENER_USER" --init-groups \
    ssh-keygen -q -t ed25519 -N '' -C "$LISTENER_USER@broker" -f "$SSH_KEY"
}

# ---------------------------------------------------------------------------------------------- proxies
# A proxy host: its own netns, /etc/nginx and /etc/keepalived (ip netns exec binds /etc/netns/HOST/x over
# /etc/x), a private /run (tmpfs), /var/log and /var/lib/nginx; sshd listening on the host's address.
proxy_up() { # HOST
  local h=$1 ip; ip=$(proxy_ip "$h")
  local hd="$LAB/hosts/$h"
  step "proxy $h ($ip): netns, /etc/netns/$h/{nginx,keepalived}, sshd ($SSH_USER, interface $PROXY_IF)"
  add_ns "$h" "$PROXY_IF" "$ip"
  mkdir -p "$hd/log" "$hd/lib-nginx" "$hd/ssh" "$hd/root-home"
  # root's own home on the proxy, as on a real host: this machine's /root/.bashrc (its image's pyenv init)
  # would run in every SSH session (0.6 s each) and put pyenv's python3 on the modules' PATH
  cp -a /etc/skel/. "$hd/root-home/"
  chmod 0700 "$hd/root-home"
  # same directory tree as /var/log (packages expect their log dirs), empty files
  (cd /var/log && find . -mindepth 1 -type d -print0) | (cd "$hd/log" && xargs -0 -r mkdir -p)
  chown root:adm "$hd/log/nginx" 2>/dev/null || true
  rm -rf "/etc/netns/$h"
  mkdir -p "/etc/netns/$h"
  cp -a /etc/nginx "/etc/netns/$h/nginx"
  mkdir -p /etc/keepalived
  cp -a /etc/keepalived "/etc/netns/$h/keepalived"
  rm -f "/etc/netns/$h/keepalived/keepalived.conf"
  if [ "$SSH_USER" != root ]; then
    # sudo for the SSH user on the proxies only (bound over /etc/sudoers.d inside the host's netns)
    cp -a /etc/sudoers.d "/etc/netns/$h/sudoers.d"
    echo "$SSH_USER ALL=(ALL:ALL) NOPASSWD: ALL" > "/etc/netns/$h/sudoers.d/rplab-$SSH_USER"
    chmod 440 "/etc/netns/$h/sudoers.d/rplab-$SSH_USER"
  fi
  ssh-keygen -q -t ed25519 -N '' -C "root@$h" -f "$hd/ssh/ssh_host_ed25519_key"
  if ! grep -qx "Host $h" "$LAB/ssh/config"; then
    # host entries must come before "Host *" to win: rewrite the file with the new entry first
    { echo "Host $h"; echo "  HostName $ip"; cat "$LAB/ssh/config"; } > "$LAB/ssh/config.new"
    mv "$LAB/ssh/config.new" "$LAB/ssh/config"
  fi
  cat > "$hd/start.sh" <<EOF
#!/bin/sh
# runs inside: ip netns exec $h unshare --mount --propagation private
set -e
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd /run/lock
chmod 0755 /run/sshd
mount --bind "$hd/log" /var/log
mount --bind "$hd/lib-nginx" /var/lib/nginx
mount --bind "$hd/root-home" /root
echo $h > /run/rplab-host
# sshd's StrictModes refuses an authorized_keys file below a group/world-writable directory (a checkout
# under /tmp): the host's private /run is root-owned 0755.
install -m 0644 "$LAB/ssh/authorized_keys" /run/rplab-authorized_keys
exec /usr/sbin/sshd -D -e \\
  -o ListenAddress=$ip \\
  -o PidFile=/run/sshd.pid \\
  -o HostKey=$hd/ssh/ssh_host_ed25519_key \\
  -o AuthorizedKeysFile=/run/rplab-authorized_keys \\
  -o PermitRootLogin=$([ "$SSH_USER" = root ] && echo prohibit-password || echo no) \\
  -o PasswordAuthentication=no \\
  -o UseDNS=no \\
  -o MaxStartups=100:30:200 \\
  -o MaxSessions=100
EOF
  chmod 755 "$hd/start.sh"
  setsid nohup ip netns exec "$h" unshare --mount --propagation private "$hd/start.sh" \
    > "$hd/sshd.log" 2>&1 < /dev/null &
  echo $! > "$hd/sshd.pid"
}

proxy_wait_ssh() { # HOST
  local h=$1 ip i; ip=$(proxy_ip "$h")
  for ((i = 0; i < 100; i++)); do
    if ip netns exec "$h" bash -c "echo > /dev/tcp/$ip/22" 2>/dev/null; then break; fi
    kill -0 "$(cat "$LAB/hosts/$h/sshd.pid")" 2>/dev/null || die "sshd of $h died: $(tail -5 "$LAB/hosts/$h/sshd.log")"
    sleep 0.1
  done
  [ "$i" -lt 100 ] || die "sshd of $h does not answer on $ip:22"
  local line="" k
  for ((k = 0; k < 5 && ${#line} == 0; k++)); do
    line=$(ssh-keyscan -T 3 -t ed25519 "$ip" 2>/dev/null | grep -v '^#' | head -1 || true)
  done
  [ -n "$line" ] || die "ssh-keyscan $ip returned nothing"
  # known_hosts: by name and by address, the host's real key
  echo "$h,$ip ${line#* }" >> "$KNOWN_HOSTS"
  local got
  got=$(lab_ssh "$h" "cat /run/rplab-host; id -un; ip -o -4 addr show dev $PROXY_IF | awk '{print \$4}'" | tr '\n' ' ')
  [ "$got" = "$h root $ip/24 " ] || die "ssh to $h reached the wrong host or no root: '$got'"
  info "ssh $SSH_USER@$ip ok$([ "$SSH_USER" = root ] || echo ", sudo to root") (host key in $KNOWN_HOSTS)"
}

# ---------------------------------------------------------------------------------------------- gears
gears_up() {
  step "gear servers in $GEARS_NS on $NET.$GEAR_FIRST-$GEAR_LAST ports $GEAR_PORTS"
  setsid nohup ip netns exec "$GEARS_NS" node "$LAB_SCRIPT_DIR/gear.mjs" \
    --addresses "$NET.$GEAR_FIRST-$GEAR_LAST" --ports "$GEAR_PORTS" \
    > "$LAB/gears.log" 2>&1 < /dev/null &
  echo $! > "$LAB/gears.pid"
  local i
  for ((i = 0; i < 100; i++)); do
    grep -q 'gears ready' "$LAB/gears.log" 2>/dev/null && break
    kill -0 "$(cat "$LAB/gears.pid")" 2>/dev/null || die "gear server died: $(tail -5 "$LAB/gears.log")"
    sleep 0.1
  done
  [ "$i" -lt 100 ] || die "gear server not ready: $(tail -5 "$LAB/gears.log")"
  local out
  out=$(ip netns exec "$CLIENT_NS" curl -s -m 3 "http://$NET.$GEAR_FIRST:8080/" || true)
  out=${out%%$'\n'*}
  [ "$out" = "gear $NET.$GEAR_FIRST:8080" ] || die "gear not reachable from $CLIENT_NS: '$out'"
  info "$(head -1 "$LAB/gears.log")"
}

# ---------------------------------------------------------------------------------------------- ActiveMQ
activemq_config() {
  local base="$LAB/activemq"
  mkdir -p "$base/conf" "$base/data" "$base/tmp"
  local sample=/etc/activemq/instances-available/main
  [ -f "$sample/log4j2.properties" ] && cp "$sample/log4j2.properties" "$base/conf/"
  # Debian's 5.17 build logs through log4j 1.2: give it a file appender (conf/ is on the classpath)
  cat > "$base/conf/log4j.properties" <<'EOF2'
log4j.rootLogger=INFO, logfile
log4j.logger.org.apache.activemq.spring=WARN
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.logfile=org.apache.log4j.RollingFileAppender
log4j.appender.logfile.file=${activemq.data}/activemq.log
log4j.appender.logfile.maxFileSize=1024KB
log4j.appender.logfile.maxBackupIndex=3
log4j.appender.logfile.append=true
log4j.appender.logfile.layout=org.apache.log4j.PatternLayout
log4j.appender.logfile.layout.ConversionPattern=%d | %-5p | %m | %c | %t%n
EOF2
  cat > "$base/conf/activemq.xml" <<EOF
<!-- The lab's broker (written by test/lab/lab.sh from the Debian package's sample instance).
     STOMP on the lab bridge and on loopback; user routinginfo as OpenShift's broker configures it. -->
<beans
  xmlns="http://www.springframework.org/schema/beans"
  xmlns:amq="http://activemq.apache.org/schema/core"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">

    <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>

    <broker xmlns="http://activemq.apache.org/schema/core"
            useJmx="false"
            brokerName="rplab"
            dataDirectory="\${activemq.data}">
$(activemq_users_xml)
        <persistenceAdapter>
            <kahaDB directory="\${activemq.data}/kahadb"/>
        </persistenceAdapter>

        <transportConnectors>
$(activemq_connectors_xml)
        </transportConnectors>

    </broker>

</beans>
EOF
}

# default: the PaaS broker's existing ActiveMQ already has OpenShift's routinginfo user (public password) and
# STOMP on every lab address. prod: no user yet (the role adds both, with the vault's passwords), plain STOMP on
# loopback only for the PaaS broker's plug-in; the role adds STOMP+TLS on the bridge for the listener.
activemq_users_xml() {
  [ "$LAB_PROFILE" = prod ] && return 0
  cat <<EOF2

        <plugins>
            <simpleAuthenticationPlugin>
                <users>
                    <authenticationUser username="$STOMP_LOGIN" password="$STOMP_PASSCODE" groups="routinginfo,everyone"/>
                </users>
            </simpleAuthenticationPlugin>
        </plugins>
EOF2
}

activemq_connectors_xml() {
  [ "$LAB_PROFILE" = prod ] || echo "            <transportConnector name=\"stomp\" uri=\"stomp://$BR_IP:$STOMP_PORT\"/>"
  echo "            <transportConnector name=\"stomp-loopback\" uri=\"stomp://127.0.0.1:$STOMP_PORT\"/>"
}

activemq_start() {
  local base="$LAB/activemq"
  step "ActiveMQ (STOMP $([ "$LAB_PROFILE" = prod ] || echo "$BR_IP:$STOMP_PORT and ")127.0.0.1:$STOMP_PORT), base $base"
  if bash -c "echo > /dev/tcp/127.0.0.1/$STOMP_PORT" 2>/dev/null; then
    die "something already listens on 127.0.0.1:$STOMP_PORT (another ActiveMQ?); stop it first"
  fi
  rm -f "$base/activemq.pid"
  # The Debian script backgrounds java itself and writes java's pid to ACTIVEMQ_PIDFILE.
  ACTIVEMQ_BASE="$base" ACTIVEMQ_CONF="$base/conf" ACTIVEMQ_DATA="$base/data" ACTIVEMQ_TMP="$base/tmp" \
    ACTIVEMQ_PIDFILE="$base/activemq.pid" ACTIVEMQ_USER=root \
    setsid nohup activemq console "xbean:file:$base/conf/activemq.xml" > "$base/console.log" 2>&1 < /dev/null &
  local i
  for ((i = 0; i < 10; i++)); do [ -s "$base/activemq.pid" ] && break; sleep 0.2; done
}

activemq_wait() {
  local base="$LAB/activemq" i
  for ((i = 0; i < 600; i++)); do
    if bash -c "echo > /dev/tcp/127.0.0.1/$STOMP_PORT" 2>/dev/null && { [ "$LAB_PROFILE" = prod ] || bash -c "echo > /dev/tcp/$BR_IP/$STOMP_PORT" 2>/dev/null; }; then
      info "ActiveMQ ready (pid $(cat "$base/activemq.pid" 2>/dev/null), log $base/data/activemq.log)"
      return 0
    fi
    if [ -s "$base/activemq.pid" ] && ! kill -0 "$(cat "$base/activemq.pid")" 2>/dev/null; then
      die "ActiveMQ died: $(tail -20 "$base/data/activemq.log" 2>/dev/null || tail -20 "$base/console.log")"
    fi
    sleep 0.2
  done
  die "ActiveMQ did not open STOMP port $STOMP_PORT within 120 s (see $base/data/activemq.log)"
}

# ---------------------------------------------------------------------------------------------- inventory
# prod: a lab CA signs the wildcard certificate of the cloud domain (in the operator's inventory) and ActiveMQ's
# STOMP+TLS certificate (PKCS#12 keystore for its sslContext); the listener verifies it against the CA.
prod_tls_setup() {
  local d=$LAB/tls inv_tls=$INVENTORY/tls
  mkdir -p "$d" "$inv_tls"
  chmod 700 "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=paas-rproxy lab CA" -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  sign() { # NAME CN SAN -> $d/NAME.{key,crt}
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$d/$1.key" -out "$d/$1.csr" 2>/dev/null
    printf 'subjectAltName=%s\n' "$3" > "$d/$1.ext"
    openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 30 -extfile "$d/$1.ext" -out "$d/$1.crt" 2>/dev/null
  }
  sign "wildcard.$CLOUD_DOMAIN" "*.$CLOUD_DOMAIN" "DNS:*.$CLOUD_DOMAIN"
  sign activemq "broker.$CLOUD_DOMAIN" "IP:$BR_IP,DNS:broker.$CLOUD_DOMAIN"
  cat "$d/activemq.crt" "$d/ca.crt" > "$d/activemq.chain.crt"
  openssl pkcs12 -export -in "$d/activemq.chain.crt" -inkey "$d/activemq.key" -name activemq -out "$d/activemq.p12" \
    -passout "pass:$KEYSTORE_PASSWORD"
  cp "$d/wildcard.$CLOUD_DOMAIN.crt" "$d/wildcard.$CLOUD_DOMAIN.key" "$d/ca.crt" "$inv_tls/"
  chmod 640 "$inv_tls"/*.key
}

# prod: the secrets, generated now and kept with ansible-vault in the brokers' group_vars (only the broker
# play needs them; the listener's proxies-only runs never decrypt them). Password file: .lab/vault-pass.
prod_vault_setup() {
  local vf=$INVENTORY/group_vars/brokers/vault.yml
  mkdir -p "$(dirname "$vf")"
  STOMP_PASSCODE=$(openssl rand -hex 16); LISTENER_STOMP_PASSCODE=$(openssl rand -hex 16); KEYSTORE_PASSWORD=$(openssl rand -hex 16)
  (umask 077; openssl rand -hex 24 > "$LAB/vault-pass")
  (umask 077; printf 'STOMP_PASSCODE=%s\nLISTENER_STOMP_PASSCODE=%s\n' "$STOMP_PASSCODE" "$LISTENER_STOMP_PASSCODE" > "$LAB/stomp.env")
  {
    echo "# STOMP and keystore secrets of the lab (ansible-vault; password file .lab/vault-pass)"
    echo "vault_activemq_routinginfo_password: $STOMP_PASSCODE"
    echo "vault_activemq_routinginfo_listener_password: $LISTENER_STOMP_PASSCODE"
    echo "vault_activemq_routinginfo_tls_keystore_password: $KEYSTORE_PASSWORD"
  } > "$vf"
  ansible-vault encrypt --vault-password-file "$LAB/vault-pass" "$vf" >/dev/null
}

write_inventory() {
  step "inventory $INVENTORY/hosts.yml and config ($LAB_PROFILE profile)"
  mkdir -p "$INVENTORY/group_vars/proxies" "$LAB"
  [ "$LAB_PROFILE" = prod ] || mkdir -p "$STATE_DIR"
  if [ "$LAB_PROFILE" = prod ]; then
    prod_vault_setup
    prod_tls_setup
  fi
  {
    echo "# The lab's inventory, $LAB_PROFILE profile (written by test/lab/lab.sh; removed by npm run lab:down)."
    echo "# Proxies are network namespaces reached over real SSH; host keys are checked against"
    echo "# $KNOWN_HOSTS. The broker is the root namespace (local connection)."
    echo "all:"
    echo "  vars:"
    echo "    ansible_user: $SSH_USER"
    echo "    ansible_ssh_private_key_file: $SSH_KEY"
    echo "    ansible_ssh_common_args: >-"
    echo "      -o UserKnownHostsFile=$KNOWN_HOSTS -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
    echo "    ansible_host_key_checking: true"
    echo "    ansible_python_interpreter: /usr/bin/python3"
    echo "    rproxy_cloud_domain: $CLOUD_DOMAIN"
    echo "    rproxy_state_dir: $STATE_DIR"
    echo "  children:"
    echo "    brokers:"
    echo "      hosts:"
    echo "        broker:"
    echo "          ansible_connection: local"
    echo "          ansible_user: root"
    echo "          ansible_host: $BR_IP"
    echo "          # the lab's ActiveMQ is not a service: its own base under .lab/activemq"
    echo "          activemq_routinginfo_config_file: $LAB/activemq/conf/activemq.xml"
    echo "          activemq_routinginfo_service_name: ''"
    echo "          activemq_routinginfo_restart_command: bash $LAB_SCRIPT_DIR/lab.sh restart-activemq"
    if [ "$LAB_PROFILE" = prod ]; then
      echo "          activemq_routinginfo_password: \"{{ vault_activemq_routinginfo_password }}\""
      echo "          activemq_routinginfo_listener_password: \"{{ vault_activemq_routinginfo_listener_password }}\""
      echo "          activemq_routinginfo_stomp_address: 127.0.0.1"
      echo "          activemq_routinginfo_stomp_tls_address: $BR_IP"
      echo "          activemq_routinginfo_stomp_tls_port: $STOMP_TLS_PORT"
      echo "          activemq_routinginfo_tls_keystore: $LAB/tls/activemq.p12"
      echo "          activemq_routinginfo_tls_keystore_password: \"{{ vault_activemq_routinginfo_tls_keystore_password }}\""
      echo "          # the listener: installed in /opt/paas-rproxy, runs as paas-rproxy (role defaults), over STOMP+TLS"
      echo "          rproxy_listener_stomp_brokers: [{host: $BR_IP, port: $STOMP_TLS_PORT, tls: true}]"
      echo "          rproxy_listener_stomp_ca_file: $INVENTORY/tls/ca.crt"
      echo "          rproxy_listener_log_file: /var/log/paas-rproxy/listener.log"
    else
      echo "          activemq_routinginfo_listener_password: $LISTENER_STOMP_PASSCODE"
      echo "          # OpenShift's public default password: accepted in this lab only"
      echo "          activemq_routinginfo_allow_public_password: true"
      echo "          # OpenShift's routing daemon may run beside this lab (benchmarks) and reads the topic as routinginfo"
      echo "          activemq_routinginfo_topic_read_groups: [paas-rproxy, routinginfo]"
      echo "          # the listener runs from the checkout as root, supervised (no systemd), everything under .lab/"
      echo "          rproxy_listener_user: root"
      echo "          rproxy_listener_group: root"
      echo "          rproxy_listener_create_user: false"
      echo "          rproxy_listener_ssh_key_file: $SSH_KEY"
      echo "          rproxy_listener_install_dir: $REPO"
      echo "          rproxy_listener_config_dir: $LISTENER_DIR"
      echo "          rproxy_listener_run_dir: $LISTENER_DIR/run"
      echo "          rproxy_listener_log_file: $LISTENER_DIR/listener.log"
    fi
    echo "    proxies:"
    echo "      hosts:"
    local h
    for h in "${PROXIES[@]}"; do
      echo "        $h:"
      echo "          ansible_host: $(proxy_ip "$h")"
    done
    echo "      vars:"
    if [ "$SSH_USER" != root ]; then
      echo "        ansible_become: true"
    fi
    if [ "$LAB_PROFILE" = prod ]; then
      echo "        nginx_rproxy_wildcard_cert_file: $INVENTORY/tls/wildcard.$CLOUD_DOMAIN.crt"
      echo "        nginx_rproxy_wildcard_key_file: $INVENTORY/tls/wildcard.$CLOUD_DOMAIN.key"
    else
      echo "        nginx_rproxy_cloud_domain: $CLOUD_DOMAIN"
    fi
    echo "        keepalived_vrrp_interface: $PROXY_IF"
    echo "        keepalived_vrrp_unicast: $VRRP_UNICAST"
    echo "        keepalived_vrrp_vips:"
    local v
    for v in "${VIPS[@]}"; do echo "          - $v"; done
  } > "$INVENTORY/hosts.yml"
  if [ "$LAB_PROFILE" = prod ]; then
    # the listener reads the operator's inventory and edits hosts.yml when it onboards a proxy
    chown -R "root:$LISTENER_USER" /etc/paas-rproxy
    chmod -R g+rwX,o-rwx "$INVENTORY"
    chmod 750 /etc/paas-rproxy
    chmod 640 "$INVENTORY"/tls/*.key
  else
    {
      echo "# The lab's paas-rproxy configuration (written by test/lab/lab.sh):"
      echo "#   PAAS_RPROXY_CONFIG=.lab/config.yml npm run --silent cli -- routes"
      echo "cloud_domain: $CLOUD_DOMAIN"
      echo "inventory_dir: ./inventory"
      echo "state_dir: ./var"
      echo "stomp:"
      echo "  brokers: [{host: 127.0.0.1, port: $STOMP_PORT}]"
      echo "  login: paas-rproxy"
      echo "  passcode: $LISTENER_STOMP_PASSCODE"
    } > "$CONFIG_FILE"
  fi
}

write_ready() {
  {
    echo "paas-rproxy lab ($LAB_PROFILE profile): up since $(date -u +%FT%TZ) (test/lab/lab.sh)"
    echo "inventory: $INVENTORY   (hosts.yml; nothing generated in it)"
    echo "state:     $STATE_DIR   (routing state in routes/)"
    if [ "$LAB_PROFILE" = prod ]; then
      echo "config:    $CONFIG_FILE (written by site.yml; the CLI reads it by default: run it as $LISTENER_USER)"
      echo "cli:       setpriv --reuid=$LISTENER_USER --regid=$LISTENER_USER --init-groups env HOME=$STATE_DIR node $INSTALL_DIR/dist/cli/main.js status"
      echo "ansible:   ANSIBLE_CONFIG=$REPO/ansible/ansible.cfg ansible-playbook -i $INVENTORY --vault-password-file $LAB/vault-pass $REPO/ansible/site.yml"
    else
      echo "config:    $CONFIG_FILE  (PAAS_RPROXY_CONFIG=.lab/config.yml npm run --silent cli -- routes)"
      echo "ansible:   ANSIBLE_CONFIG=$REPO/ansible/ansible.cfg ansible-playbook -i $INVENTORY $REPO/ansible/site.yml"
    fi
    echo "ssh:       ssh -F $LAB/ssh/config rp1   (or: bash test/lab/lab.sh ssh rp1 CMD)"
    echo "           user $SSH_USER, key $SSH_KEY, known_hosts $KNOWN_HOSTS"
    local h
    for h in "${PROXIES[@]}"; do
      echo "proxy:     $h $(proxy_ip "$h") (netns $h, $PROXY_IF; /etc/nginx = /etc/netns/$h/nginx, /etc/keepalived = /etc/netns/$h/keepalived; service nginx|keepalived start)"
    done
    echo "vips:      ${VIPS[*]}"
    echo "gears:     netns $GEARS_NS, $NET.$GEAR_FIRST-$GEAR_LAST ports $GEAR_PORTS (test/lab/gear.mjs)"
    echo "client:    ip netns exec $CLIENT_NS curl --resolve shop-acme.$CLOUD_DOMAIN:80:${VIPS[0]} http://shop-acme.$CLOUD_DOMAIN/"
    if [ "$LAB_PROFILE" = prod ]; then
      echo "stomp:     127.0.0.1:$STOMP_PORT (publisher $STOMP_LOGIN), stomp+ssl $BR_IP:$STOMP_TLS_PORT (listener); passwords in the vault, base $LAB/activemq"
    else
      echo "stomp:     $BR_IP:$STOMP_PORT and 127.0.0.1:$STOMP_PORT ($STOMP_LOGIN/$STOMP_PASSCODE), base $LAB/activemq"
    fi
  } > "$LAB/READY"
}

# ---------------------------------------------------------------------------------------------- up/down
infra_up() {
  require_root
  if [ -f "$LAB/READY" ] && infra_healthy; then
    step "infrastructure already up (.lab/READY)"
    return 0
  fi
  require_netns
  if [ -n "$(lab_ns_list)" ] || ip link show "$BR" >/dev/null 2>&1 || [ -d "$LAB" ] || [ -e "$PROD_MARKER" ]; then
    step "leftovers of an earlier lab found: cleaning up first"
    down
  fi
  mkdir -p "$LAB"
  date +%s.%N > "$LAB/started-at"
  echo "$LAB_PROFILE" > "$LAB/profile"
  step "profile $LAB_PROFILE: ${#PROXIES[@]} proxies, VIPs ${VIPS[*]}, $CLOUD_DOMAIN, SSH as $SSH_USER, VRRP on $PROXY_IF"
  # ActiveMQ takes ~20 s: start it first (it only needs the bridge address), wait for it last
  net_up
  activemq_config
  activemq_start
  ssh_setup
  local h
  for h in "${PROXIES[@]}"; do proxy_up "$h"; done
  for h in "${PROXIES[@]}"; do proxy_wait_ssh "$h"; done
  gears_up
  write_inventory
  step "DNS: named on $BR_IP:53, client resolver (test/lab/dns.sh)"; bash "$LAB_SCRIPT_DIR/dns.sh" up
  activemq_wait
  write_ready
  step "infrastructure up: $(cat "$LAB/READY" | head -1)"
}

infra_healthy() {
  local h
  ip link show "$BR" >/dev/null 2>&1 || return 1
  local netns; netns=$(ip netns list)
  for h in "${PROXIES[@]}" "$GEARS_NS" "$CLIENT_NS"; do grep -qx "$h\( .*\)\?" <<< "$netns" || return 1; done
  for h in "${PROXIES[@]}"; do kill -0 "$(cat "$LAB/hosts/$h/sshd.pid" 2>/dev/null)" 2>/dev/null || return 1; done
  kill -0 "$(cat "$LAB/gears.pid" 2>/dev/null)" 2>/dev/null || return 1
  kill -0 "$(cat "$LAB/activemq/activemq.pid" 2>/dev/null)" 2>/dev/null || return 1
  bash "$LAB_SCRIPT_DIR/dns.sh" check || return 1
  return 0
}

descendants() { # PID -> its children, grandchildren, ...
  local c
  for c in $(pgrep -P "$1" 2>/dev/null || true); do echo "$c"; descendants "$c"; done
}

kill_pids() { # PID... : with their descendants; TERM, wait up to KILL_WAIT_S (3) s, then KILL
  local p alive=() i all=()
  for p in "$@"; do [ -n "$p" ] && kill -0 "$p" 2>/dev/null && all+=("$p" $(descendants "$p")); done
  for p in "${all[@]}"; do [ -n "$p" ] && kill -0 "$p" 2>/dev/null && { kill -TERM "$p" 2>/dev/null || true; alive+=("$p"); }; done
  [ ${#alive[@]} -eq 0 ] && return 0
  for ((i = 0; i < ${KILL_WAIT_S:-3} * 10; i++)); do
    local any=0
    for p in "${alive[@]}"; do kill -0 "$p" 2>/dev/null && any=1; done
    [ $any = 0 ] && return 0
    sleep 0.1
  done
  for p in "${alive[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}

# The keepalived_vrrp role installs the health watcher's program and init script on each proxy; the lab's
# proxies share the machine's /usr/local/lib and /etc/init.d (only /etc/nginx, /etc/keepalived, /run, /var/log
# are per host), so lab down removes them from the machine.
watcher_files_down() {
  [ -e /etc/init.d/rproxy-health-watcher ] || [ -d /usr/local/lib/paas-rproxy ] || return 0
  info "health watcher's init script and program (installed by the proxies' keepalived_vrrp role)"
  update-rc.d -f rproxy-health-watcher remove >/dev/null 2>&1 || true
  rm -f /etc/init.d/rproxy-health-watcher
  rm -rf /usr/local/lib/paas-rproxy
}

down() {
  require_root
  step "lab down"
  local f pids=()
  # 1. processes recorded in pid files (sshd per host, gears, ActiveMQ, listener, ...)
  if [ -d "$LAB" ]; then
    while IFS= read -r -d '' f; do
      local p; p=$(tr -dc '0-9' < "$f" 2>/dev/null || true)
      [ -n "$p" ] && pids+=("$p")
    done < <(find "$LAB" -name '*.pid' -type f -print0 2>/dev/null)
  fi
  # after a crash that lost pid files: processes whose command line names a path under .lab/ (ActiveMQ's
  # java, the listener's supervisor, sshd of the hosts), with their descendants
  local p
  for p in $(pgrep -f -- "$LAB/" 2>/dev/null || true); do
    [ "$p" = $$ ] || [ "$p" = "$PPID" ] || pids+=("$p")
  done
  # the prod profile's listener (installed under /opt/paas-rproxy, supervised from /etc/paas-rproxy)
  if [ -e "$PROD_MARKER" ]; then
    while IFS= read -r -d '' f; do
      p=$(tr -dc '0-9' < "$f" 2>/dev/null || true); [ -n "$p" ] && pids+=("$p")
    done < <(find /run/paas-rproxy -name '*.pid' -type f -print0 2>/dev/null)
    for p in $(pgrep -f -- "/etc/paas-rproxy/supervise.sh|/opt/paas-rproxy/dist/" 2>/dev/null || true); do pids+=("$p"); done
  fi
  # ssh clients of the root namespace connected to lab hosts (Ansible's ControlPersist masters would
  # otherwise outlive the hosts and hang the next lab's first connections)
  for p in $(ss -Htnp dst "$NET.0/24" 2>/dev/null | grep -o '("ssh",pid=[0-9]*' | grep -o '[0-9]*$' | sort -u); do
    pids+=("$p")
  done
  # 2. everything still living in the lab's namespaces (nginx, keepalived, sessions, gears)
  local ns
  for ns in $(lab_ns_list); do
    for p in $(ip netns pids "$ns" 2>/dev/null || true); do pids+=("$p"); done
  done
  if [ ${#pids[@]} -gt 0 ]; then
    info "stopping ${#pids[@]} processes"
    kill_pids "${pids[@]}"
  fi
  for ns in $(lab_ns_list); do
    for p in $(ip netns pids "$ns" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
  done
  # 3. namespaces, bridge, per-host /etc
  for ns in $(lab_ns_list); do
    info "netns $ns"
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  if ip link show "$BR" >/dev/null 2>&1; then info "bridge $BR"; ip link del "$BR"; fi
  local l
  for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^rpl-' || true); do
    ip link del "$l" 2>/dev/null || true
  done
  watcher_files_down
  # 4. lab runtime (inventory, state, keys, logs); the prod profile's production places and users
  if [ -e "$PROD_MARKER" ]; then
    info "removing ${PROD_PATHS[*]} and the users ${PROD_USERS[*]} (prod profile)"
    rm -rf "${PROD_PATHS[@]}"
    local u
    for u in "${PROD_USERS[@]}"; do
      if id -u "$u" >/dev/null 2>&1; then userdel "$u" 2>/dev/null || true; fi
      rm -rf "/home/$u"
      getent group "$u" >/dev/null && groupdel "$u" 2>/dev/null || true
    done
  fi
  if [ -d "$LAB" ]; then info "removing $LAB"; rm -rf "$LAB"; fi
  step "lab is down"
}

status() {
  echo "netns:  $(lab_ns_list | tr '\n' ' ')"
  ip link show "$BR" >/dev/null 2>&1 && echo "bridge: $BR up" || echo "bridge: none"
  [ -f "$LAB/READY" ] && cat "$LAB/READY" || echo "no .lab/READY"
  local h
  for h in $(lab_ns_list); do
    echo "$h: $(ip -n "$h" -o -4 addr show 2>/dev/null | awk '$2 != "lo" {print $4}' | tr '\n' ' ')  processes: $(ip netns pids "$h" | wc -l)"
  done
}

# ---------------------------------------------------------------------------------------------- main
cmd=${1:-}
shift || true
# one lab operation at a time (npm run lab, the tests' bring-up and lab:down all take this lock)
case "$cmd" in
  up|down|test-up|restart-gears|host|host-del)
    require_root
    # flock -o: the lock is held by flock itself and never inherited by the daemons started here
    # (sshd, gears, ActiveMQ, ssh ControlPersist masters, the listener), so it ends with this script
    if [ -n "${RPLAB_LOCKED:-}" ]; then
      unset RPLAB_LOCKED
    else
      rc=0
      RPLAB_LOCKED=1 flock -o -w 900 -E 75 /tmp/paas-rproxy-lab.lock bash "$0" "$cmd" --profile "$LAB_PROFILE" "$@" || rc=$?
      [ $rc = 75 ] && die "another lab operation held /tmp/paas-rproxy-lab.lock for 15 minutes"
      exit $rc
    fi
    ;;
esac
case "$cmd" in
  check)
    if [ -f "$LAB/READY" ] && infra_healthy; then
      if [ -f "$LAB/provisioned" ]; then echo "up provisioned"; else echo "up"; fi
      exit 0
    fi
    echo down; exit 1
    ;;
  test-up)
    source "$LAB_SCRIPT_DIR/lab-full.sh"
    if [ -n "$LAB_PROFILE_RUNNING" ] && [ "$LAB_PROFILE_RUNNING" != "$LAB_PROFILE" ]; then
      echo "lab: the running lab has the $LAB_PROFILE_RUNNING profile, $LAB_PROFILE wanted: taking it down"
      down
    fi
    if [ -f "$LAB/READY" ] && infra_healthy && [ -f "$LAB/provisioned" ]; then
      echo "lab: reusing the running lab ($(head -1 "$LAB/READY"))"
      echo "LAB_REUSED"
      exit 0
    fi
    require_root
    bash "$LAB_SCRIPT_DIR/deps.sh"
    npm_ready
    infra_up
    provision
    echo "LAB_BROUGHT_UP $(cat "$LAB/started-at")"
    ;;
  up)
    if [ "${1:-}" = "--infra" ]; then
      infra_up
    else
      # the full lab: see lab-full.sh (deps, build, site.yml, demo)
      source "$LAB_SCRIPT_DIR/lab-full.sh"
      full_up "$@"
    fi
    ;;
  down) down ;;
  write-inventory) require_root; write_inventory ;;
  host-del)
    [ $# -eq 1 ] && [[ $1 =~ ^rp[0-9]+$ ]] || die "usage: lab.sh host-del rpN"
    h=$1
    step "remove host $h"
    pids=($(cat "$LAB/hosts/$h/sshd.pid" 2>/dev/null) $(ip netns pids "$h" 2>/dev/null || true))
    [ ${#pids[@]} -gt 0 ] && kill_pids "${pids[@]}"
    ip netns del "$h" 2>/dev/null || true
    flush_neigh "$(proxy_ip "$h")"
    rm -rf "/etc/netns/$h" "$LAB/hosts/$h"
    [ -f "$KNOWN_HOSTS" ] && sed -i "/^$h,/d" "$KNOWN_HOSTS"
    [ -f "$LAB/ssh/config" ] && sed -i "/^Host $h\$/,+1d" "$LAB/ssh/config"
    [ -f "$LAB/READY" ] && sed -i "/^host: *$h /d" "$LAB/READY"
    ;;
  host)
    # a bare extra proxy host for onboarding: netns, sshd, host key in known_hosts; the
    # inventory is NOT touched (onboarding does that)
    [ $# -eq 1 ] || die "usage: lab.sh host rpN   (e.g. npm run lab:host -- rp3)"
    h=$1
    [[ $h =~ ^rp[0-9]+$ ]] || die "host names are rpN (rp3, rp4, ...): the address is 198.51.100.(10+N)"
    [ -f "$LAB/READY" ] && infra_healthy || die "the lab is not up (npm run lab, or bash test/lab/lab.sh up --infra)"
    grep -qx "$h\( .*\)\?" <<< "$(ip netns list)" && die "$h exists already"
    proxy_up "$h"
    proxy_wait_ssh "$h"
    echo "host:      $h $(proxy_ip "$h") (added by lab.sh host; not in the inventory)" >> "$LAB/READY"
    step "host $h is up at $(proxy_ip "$h"): PAAS_RPROXY_CONFIG=.lab/config.yml npm run --silent cli -- onboard $h --address $(proxy_ip "$h")"
    ;;
  restart-activemq)
    # used by the activemq_routinginfo role's handler in the lab (no lock: site.yml may run under lab.sh up)
    require_root
    [ -d "$LAB/activemq/conf" ] || die "no lab ActiveMQ (.lab/activemq)"
    step "restart ActiveMQ"
    KILL_WAIT_S=30 kill_pids "$(cat "$LAB/activemq/activemq.pid" 2>/dev/null)" $(pgrep -f -- "-Dactivemq.conf=\"?$LAB/activemq/conf" 2>/dev/null || true)
    activemq_start
    activemq_wait
    ;;
  restart-gears)
    require_root
    kill_pids "$(cat "$LAB/gears.pid" 2>/dev/null)"
    gears_up
    ;;
  status) status ;;
  profile-env)
    # the running (or selected) profile's settings other lab scripts need (dns.sh), as shell assignments
    printf 'LAB_PROFILE=%q CLOUD_DOMAIN=%q CONFIG_FILE=%q INVENTORY=%q STATE_DIR=%q\n' \
      "$LAB_PROFILE" "$CLOUD_DOMAIN" "$CONFIG_FILE" "$INVENTORY" "$STATE_DIR"
    ;;
  ssh)
    [ $# -ge 1 ] || die "usage: lab.sh ssh HOST [CMD...]"
    h=$1; shift
    # shellcheck disable=SC2046
    exec ssh $(ssh_opts) "$SSH_USER@$(proxy_ip "$h")" "$@"
    ;;
  demo)
    source "$LAB_SCRIPT_DIR/lab-full.sh"
    demo "$@"
    ;;
  *)
    sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] || [ "$cmd" = help ] || [ "$cmd" = --help ] || exit 2
    ;;
esac
