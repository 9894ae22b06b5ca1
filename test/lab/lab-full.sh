# shellcheck shell=bash
# The full lab (`npm run lab` = lab.sh up): sourced by lab.sh, uses its functions and constants.
#   deps -> npm ci (if needed) -> build -> infrastructure -> site.yml -> demo (publish, show, failover)

cli() { # the product's CLI against the lab: prod runs the installed one as the listener's user, with its config
  if [ "$LAB_PROFILE" = prod ]; then
    (cd "$STATE_DIR" && setpriv --reuid="$LISTENER_USER" --regid="$LISTENER_USER" --init-groups env HOME="$STATE_DIR" \
      PAAS_RPROXY_CONFIG="$CONFIG_FILE" node "$INSTALL_DIR/dist/cli/main.js" "$@")
  else
    PAAS_RPROXY_CONFIG="$CONFIG_FILE" node "$REPO/dist/cli/main.js" "$@"
  fi
}

site_playbook() { # extra ansible-playbook args... (RPLAB_ANSIBLE_ARGS: more args, e.g. "-v")
  local vault=()
  [ -f "$LAB/vault-pass" ] && vault=(--vault-password-file "$LAB/vault-pass")
  # shellcheck disable=SC2086
  (cd "$REPO" && ANSIBLE_CONFIG="$REPO/ansible/ansible.cfg" ansible-playbook -i "$INVENTORY" "${vault[@]}" "$REPO/ansible/site.yml" "$@" ${RPLAB_ANSIBLE_ARGS:-})
}

npm_ready() {
  step "npm dependencies"
  if [ ! -d "$REPO/node_modules" ] || [ ! -f "$REPO/node_modules/.package-lock.json" ] \
    || [ "$REPO/package-lock.json" -nt "$REPO/node_modules/.package-lock.json" ]; then
    (cd "$REPO" && npm ci --no-audit --no-fund)
  else
    info "node_modules up to date"
  fi
  step "build (npm run build)"
  (cd "$REPO" && npm run --silent build)
}

show_run() { # LOG: the PLAY RECAP of a playbook log, and what failed
  grep -E '^(fatal|failed):|ERROR!' "$1" | cut -c1-600 | sed 's/^/          /' || true
  sed -n '/PLAY RECAP/,$p' "$1" | grep -v '^$' | sed 's/^/          /' || true
}

playbook_logged() { # NAME ARGS... : site.yml with ARGS, output to .lab/logs/NAME.log; prints the recap
  mkdir -p "$LAB/logs"
  local name=$1; shift
  local log="$LAB/logs/$name.log" rc=0
  site_playbook "$@" > "$log" 2>&1 || rc=$?
  show_run "$log"
  [ $rc = 0 ] || die "ansible-playbook failed (exit $rc); full output: $log"
}

provision() {
  [ -f "$REPO/ansible/site.yml" ] || die "ansible/site.yml does not exist yet (roles not landed)"
  step "provision the proxies and the broker: ansible-playbook -i $INVENTORY ansible/site.yml"
  local t; t=$(date +%s.%N)
  playbook_logged site
  date -u +%FT%TZ > "$LAB/provisioned"
  info "site.yml took $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
}

# ------------------------------------------------------------------------------------------- the demo
demo_tls() { # self-signed certificate for the TLS alias, generated at lab time
  mkdir -p "$LAB/demo"
  local d="$LAB/demo" alias=secure.example.com
  if [ ! -f "$d/$alias.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$alias/O=paas-rproxy lab" \
      -addext "subjectAltName=DNS:$alias" -keyout "$d/$alias.key" -out "$d/$alias.crt" 2>/dev/null
    chmod 600 "$d/$alias.key"
  fi
  {
    cat "$LAB_SCRIPT_DIR/demo.yml"
    echo "---"
    echo ":action: :add_alias"
    echo ":app_name: shop"
    echo ":namespace: acme"
    echo ":alias: $alias"
    echo "---"
    echo ":action: :add_ssl"
    echo ":app_name: shop"
    echo ":namespace: acme"
    echo ":alias: $alias"
    echo ":ssl: |"
    sed 's/^/  /' "$d/$alias.crt"
    echo ":private_key: |"
    sed 's/^/  /' "$d/$alias.key"
    echo ":pass_phrase: ''"
  } > "$d/stream.yml"
}

# Publishing the demo stream: through ActiveMQ, as the PaaS broker's routing plug-in does, when the lab's
# listener runs (site.yml deploys it on the broker host); else with the CLI (apply --sync).
demo_publish() { # STREAM-FILE
  local stream=$1
  if [ -f "$LISTENER_DIR/config.yml" ]; then
    # deployed by site.yml: give it a moment to start and connect to the broker
    local i
    for ((i = 0; i < 100; i++)); do listener_running && break; sleep 0.2; done
    if [ "$i" -lt 100 ]; then demo_publish_stomp "$stream"; return; fi
    info "the listener is deployed but not connected to ActiveMQ (see its log): using the CLI"
  fi
  demo_publish_cli "$stream"
}

# status exits 5 while unhealthy (a health check); the JSON is printed either way
status_json() { cli status --json 2>/dev/null || true; }

listener_running() {
  status_json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);process.exit(j.listener&&j.listener.running&&j.listener.connected?0:1)}catch{process.exit(1)}})'
}

demo_publish_stomp() { # STREAM-FILE
  local stream=$1 n; n=$(grep -c '^:action:' "$stream")
  local host=$BR_IP creds=()
  if [ "$LAB_PROFILE" = prod ]; then
    # the PaaS broker's plug-in publishes on the broker host's loopback with its (vaulted) password
    host=127.0.0.1
    # shellcheck disable=SC1091
    creds=(--passcode "$(. "$LAB/stomp.env"; echo "$STOMP_PASSCODE")")
  fi
  step "publish the demo stream through ActiveMQ ($n SPI events to /topic/routinginfo on $host:$STOMP_PORT as $STOMP_LOGIN, no persistent header)"
  local before; before=$(status_json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).listener.messages||0))')
  local t; t=$(date +%s%N)
  node "$LAB_SCRIPT_DIR/publish.mjs" --host "$host" --port "$STOMP_PORT" "${creds[@]}" "$stream" | sed 's/^/          /'
  # the listener has taken every message, written the state, and every proxy is up to date
  local i
  for ((i = 0; i < 600; i++)); do
    status_json | node -e '
      let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
        const j=JSON.parse(s), want=Number(process.argv[1]);
        const done=(j.listener.messages||0)>=want && j.pendingEvents===0 &&
          Object.values(j.proxies||{}).every(p=>p.pendingApps.length===0);
        process.exit(done?0:1)})' "$((before + n))" && break
    sleep 0.1
  done
  [ "$i" -lt 600 ] || die "the listener did not apply the demo stream within 60 s (see its log)"
  info "received, applied and live on every proxy $(( ($(date +%s%N) - t) / 1000000 )) ms after the publish"
}

demo_publish_cli() { # STREAM-FILE
  local stream=$1
  step "publish the demo stream ($(grep -c '^:action:' "$stream") SPI events) with the CLI"
  mkdir -p "$LAB/logs"
  local out="$LAB/logs/demo-apply.log" rc=0
  if grep -q -- '--sync' <<< "$(cli apply --help 2>/dev/null)"; then
    info "PAAS_RPROXY_CONFIG=$CONFIG_FILE paas-rproxy apply --sync $stream"
    cli apply --sync "$stream" > "$out" 2>&1 || rc=$?
    grep -v '^$' "$out" | tail -20 | sed 's/^/          /'
    [ $rc = 0 ] || die "paas-rproxy apply --sync failed (exit $rc); output: $out"
  else
    info "PAAS_RPROXY_CONFIG=$CONFIG_FILE paas-rproxy apply $stream"
    cli apply "$stream" > "$out" 2>&1 || rc=$?
    sed 's/^/          /' "$out"
    [ $rc = 0 ] || die "paas-rproxy apply failed (exit $rc)"
    info "ansible-playbook -i .lab/inventory ansible/site.yml --tags nginx_rproxy_routes --limit proxies"
    playbook_logged demo-routes --tags nginx_rproxy_routes --limit proxies
  fi
}

client_curl() { # curl args... (from the client netns)
  ip netns exec "$CLIENT_NS" curl -s -m 3 "$@"
}

first_line() { # HOST VIP [PATH] -> status and the first line of the answer
  local host=$1 vip=$2 path=${3:-/}
  client_curl -w '\n%{http_code}' --resolve "$host:80:$vip" "http://$host$path" | awk 'NR==1{l=$0} {c=$0} END{printf "%s  %s", c, l}'
}

wait_live() { # HOST VIP SECONDS: until HOST answers 200 through VIP
  local host=$1 vip=$2 n=$(( ${3:-10} * 10 )) i
  for ((i = 0; i < n; i++)); do
    [ "$(client_curl -o /dev/null -w '%{http_code}' --resolve "$host:80:$vip" "http://$host/")" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

vip_holder() { # VIP -> proxy holding it (or "none")
  local v=$1 h
  for h in $(lab_ns_list | grep -E '^rp[0-9]+$'); do
    grep -q " $v/" <<< "$(ip -n "$h" -o -4 addr show dev "$PROXY_IF" 2>/dev/null)" && { echo "$h"; return; }
  done
  echo none
}

demo_show() {
  local d=$CLOUD_DOMAIN vip host
  step "from the client netns $CLIENT_NS: requests through every VIP"
  for vip in "${VIPS[@]}"; do
    info "VIP $vip is held by $(vip_holder "$vip")"
    wait_live "shop-acme.$d" "$vip" 15 || die "shop-acme.$d does not answer through $vip"
  done
  for vip in "${VIPS[@]}"; do
    for host in "shop-acme.$d" "shop-acme.$d" "shop-acme.$d" www.example.com "blog-acme.$d" "blog-acme.$d" \
      blog.example.org "api-globex.$d" "idle-globex.$d" "unknown-nobody.$d"; do
      printf '          %-16s %-30s -> %s\n' "$vip" "$host" "$(first_line "$host" "$vip")"
    done
    local crt="$LAB/demo/secure.example.com.crt"
    printf '          %-16s %-30s -> %s  (TLS verified against the lab certificate)\n' "$vip" "https://secure.example.com" \
      "$(client_curl --cacert "$crt" -w '\n%{http_code}' --resolve "secure.example.com:443:$vip" https://secure.example.com/ | awk 'NR==1{l=$0} {c=$0} END{printf "%s  %s", c, l}')"
    if [ -f "$LAB/tls/ca.crt" ]; then
      printf '          %-16s %-30s -> %s  (wildcard certificate, verified against the lab CA)\n' "$vip" "https://shop-acme.$d" \
        "$(client_curl --cacert "$LAB/tls/ca.crt" -w '\n%{http_code}' --resolve "shop-acme.$d:443:$vip" "https://shop-acme.$d/" | awk 'NR==1{l=$0} {c=$0} END{printf "%s  %s", c, l}')"
    fi
  done
}

demo_failover() {
  local d=$CLOUD_DOMAIN
  local vip=""
  local v
  for v in "${VIPS[@]}"; do [ "$(vip_holder "$v")" = rp1 ] && vip=$v; done
  [ -n "$vip" ] || { info "rp1 masters no VIP right now; skipping the failover demo"; return 0; }
  step "failover: kill rp1's nginx (rp1 holds $vip), requests from $CLIENT_NS keep going"
  ip netns exec "$CLIENT_NS" node "$LAB_SCRIPT_DIR/reqloop.mjs" --url "http://shop-acme.$d/" --connect "$vip" \
    --interval-ms 50 --duration-ms 15000 --timeout-ms 1000 --retries 50 --retry-delay-ms 100 > "$LAB/demo/failover.json" &
  local loop=$!
  sleep 1
  local t; t=$(date +%s%N)
  lab_ssh rp1 'm=$(cat /run/nginx.pid); kill -KILL $m $(pgrep -P $m)'
  info "nginx killed on rp1 (SIGKILL, master and workers)"
  local i holder=rp1
  for ((i = 0; i < 200; i++)); do
    holder=$(vip_holder "$vip")
    [ "$holder" != rp1 ] && [ "$holder" != none ] && break
    sleep 0.05
  done
  local moved_ms=$(( ($(date +%s%N) - t) / 1000000 ))
  if [ "$holder" != rp1 ] && [ "$holder" != none ]; then
    info "VIP $vip moved to $holder after ${moved_ms} ms"
  else
    info "VIP $vip did not move within 10 s (held by $holder)"
  fi
  echo "$moved_ms" > "$LAB/demo/failover-ms"
  sleep 2
  kill -TERM "$loop" 2>/dev/null || true
  wait "$loop" || true
  node -e '
    const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(`          requests: ${s.sent} sent, ${s.ok} succeeded, ${s.failed} failed; ${s.attemptsFailed} attempts were retried` +
      (s.firstFailureMs !== null ? ` (between ${s.firstFailureMs} and ${s.lastFailureMs} ms)` : ""));
    console.log(`          gears reached: ${Object.entries(s.gears).map(([g, n]) => g + " x" + n).join(", ")}`);
  ' "$LAB/demo/failover.json"
  step "restore rp1's nginx"
  lab_ssh rp1 'service nginx start' | sed 's/^/          /'
  for ((i = 0; i < 100; i++)); do [ "$(vip_holder "$vip")" = rp1 ] && break; sleep 0.1; done
  info "VIP $vip is held by $(vip_holder "$vip") now; the other VIP(s): $(for v in "${VIPS[@]}"; do [ "$v" = "$vip" ] || printf '%s on %s ' "$v" "$(vip_holder "$v")"; done)"
}

usage() {
  step "the lab is running ($LAB_PROFILE profile)"
  if [ "$LAB_PROFILE" = prod ]; then
    cat <<EOF
          drive it with the CLI:   setpriv --reuid=$LISTENER_USER --regid=$LISTENER_USER --init-groups env HOME=$STATE_DIR node $INSTALL_DIR/dist/cli/main.js status
                                   (as the listener's user; its config $CONFIG_FILE is read by default)
          from the client:         ip netns exec $CLIENT_NS curl --cacert .lab/tls/ca.crt --resolve shop-acme.$CLOUD_DOMAIN:443:${VIPS[0]} https://shop-acme.$CLOUD_DOMAIN/
          on a proxy:              bash test/lab/lab.sh ssh rp1   ($SSH_USER, sudo)
          Ansible:                 ANSIBLE_CONFIG=ansible/ansible.cfg ansible-playbook -i $INVENTORY --vault-password-file .lab/vault-pass ansible/site.yml
          what is where:           cat .lab/READY;  bash test/lab/lab.sh status
          remove it:               npm run lab:down
EOF
  else
    cat <<EOF
          drive it with the CLI:   PAAS_RPROXY_CONFIG=.lab/config.yml npm run --silent cli -- routes
                                   PAAS_RPROXY_CONFIG=.lab/config.yml npm run --silent cli -- apply FILE.yml
          from the client:         ip netns exec $CLIENT_NS curl --resolve shop-acme.$CLOUD_DOMAIN:80:${VIPS[0]} http://shop-acme.$CLOUD_DOMAIN/
          on a proxy:              bash test/lab/lab.sh ssh rp1   (ssh -F .lab/ssh/config rp1)
          Ansible:                 ANSIBLE_CONFIG=ansible/ansible.cfg ansible-playbook -i .lab/inventory ansible/site.yml
          what is where:           cat .lab/READY;  bash test/lab/lab.sh status
          remove it:               npm run lab:down
EOF
  fi
}

demo() {
  demo_tls
  demo_publish "$LAB/demo/stream.yml"
  demo_show
  demo_failover
}

full_up() {
  require_root
  step "Debian packages (test/lab/deps.sh)"
  bash "$LAB_SCRIPT_DIR/deps.sh"
  npm_ready
  infra_up
  provision
  demo
  usage
  info "lab up in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
}
