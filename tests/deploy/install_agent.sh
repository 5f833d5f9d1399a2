# Part of tests/deploy/run.sh (sourced, with the cluster up): a
# contributor's machine is a clean Debian 12 container with systemd as init
# on the peers' network; deploy/install-agent.sh installs the agent there as
# the docs say, and the agent it starts serves a gamer's tasks alone.

agent_host_ready () {
  local s
  s=$(docker exec "$AGENT_HOST" systemctl is-system-running 2>/dev/null)
  [ "$s" = running ] || [ "$s" = degraded ]
}

if eval "$(tests/deploy/base_images.sh systemd)"; then
  AGENT_HOST=$PROJECT-agenthost
  docker run -d --name "$AGENT_HOST" --hostname agenthost --label "org.p2c2r.test=$PROJECT" \
    --network "$PEERNET" --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:ro \
    "$P2C2R_SYSTEMD_IMAGE" /sbin/init >/dev/null
  for _ in $(seq 60); do agent_host_ready && break; sleep 0.5; done
  check "a clean Debian container with systemd as init" agent_host_ready
  # The source tree as a contributor gets it (tracked and new files, no build output)
  docker exec "$AGENT_HOST" mkdir -p /opt/p2c2r
  git -C "$ROOT" ls-files -co --exclude-standard -z | tar -C "$ROOT" --null -T - -cf - \
    | docker exec -i "$AGENT_HOST" tar -C /opt/p2c2r -xf -
  AGENT_KEY=$(new_key peer contributor1)
  printf '%s\n' "$AGENT_KEY" | docker exec -i "$AGENT_HOST" sh -c 'umask 077; cat >/root/agent.key'
  t=$SECONDS
  install_agent () {
    docker exec "$AGENT_HOST" /opt/p2c2r/deploy/install-agent.sh --server ws://p2c2r:8765 \
      --api-key-file /root/agent.key --allow-insecure-ws >"$D_DIR/install-agent.log" 2>&1 \
      || { tail -20 "$D_DIR/install-agent.log"; return 1; }
  }
  check "deploy/install-agent.sh --server ws://p2c2r:8765 --api-key-file KEY --allow-insecure-ws" install_agent
  note "install-agent took $((SECONDS - t)) s"
  check "the p2c2r-agent service is active" \
    docker exec "$AGENT_HOST" systemctl is-active --quiet p2c2r-agent
  check "the key file is readable by root only" \
    test "$(docker exec "$AGENT_HOST" stat -c '%a %U' /etc/p2c2r/agent.env)" = "600 root"
  # Alone: the other peers stop, so every task below runs on the new agent
  for p in p1 p2 p3; do docker stop -t 5 "$PROJECT-$p" >/dev/null; done
  waits_alone () {
    local until=$((SECONDS + 120)) n
    while [ $SECONDS -lt $until ]; do
      n=$(gw_stat "$(cid gateway)" 's["scheduler"]["peers_online"]' 2>/dev/null)
      [ "${n:-0}" = 1 ] && return 0
      sleep 1
    done
    return 1
  }
  check "the installed agent is the one peer online" waits_alone
  check "the installed agent serves a gamer's tasks" gamer_ok "$D_DIR/g7" 10
  agent_journal_ok () {
    docker exec "$AGENT_HOST" journalctl -u p2c2r-agent --no-pager | grep -q 'peer: registered' &&
    test "$(docker exec "$AGENT_HOST" sh -c \
      'stat -c %U /proc/$(systemctl show -p MainPID --value p2c2r-agent)')" = p2c2r-agent
  }
  check "its journal shows it registered; it runs as the user p2c2r-agent" agent_journal_ok
  # The owner asks the running agent, as the docs say (root's default socket)
  agent_status_ok () {
    docker exec "$AGENT_HOST" p2c2r-agent status >"$D_DIR/agent-status.txt" 2>&1 &&
    grep -Eq '^state: +running' "$D_DIR/agent-status.txt" &&
    grep -q 'connected' "$D_DIR/agent-status.txt"
  }
  check "sudo p2c2r-agent status: running and connected" agent_status_ok
  check "the preferences file is in place" docker exec "$AGENT_HOST" test -s /etc/p2c2r/agent.conf
  docker exec "$AGENT_HOST" journalctl -u p2c2r-agent --no-pager >"$D_DIR/agent-journal.log" 2>&1
else
  check "a clean Debian image with systemd (debootstrap)" false
fi
