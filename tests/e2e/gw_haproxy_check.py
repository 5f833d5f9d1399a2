#!/usr/bin/python3
"""Reads the HAProxy test's logs: which gateway each client registered on
(gateway logs), which gateway made each task (the task id's prefix), and
which peer ran it; prints how many tasks crossed gateways.
Usage: gw_haproxy_check.py T_DIR GATEWAY_LOG... (names gw1.log ...)"""
import glob
import json
import os
import re
import sys

tdir = sys.argv[1]
prefix_of = {}      # gateway log name -> task id prefix
peer_gw = {}        # peer id -> set of gateways it registered on
gamer_gw = {}
for path in sys.argv[2:]:
    name = os.path.basename(path)
    for line in open(path, errors="replace"):
        m = re.search(r"task_prefix=([0-9a-f]{16})", line)
        if m:
            prefix_of[m.group(1)] = name
        m = re.search(r"registered conn=\d+ role=(peer|gamer) id=(\S+)", line)
        if m:
            (peer_gw if m.group(1) == "peer" else gamer_gw).setdefault(m.group(2), set()).add(name)
crossed = 0
done = 0
for path in glob.glob(os.path.join(tdir, "peer-*.log")) + glob.glob(os.path.join(tdir, "jpeer-*.log")):
    for line in open(path, errors="replace"):
        m = re.search(r"(?:peer: task done id=|: task done )([0-9a-f]{16})-[0-9a-f]+", line)
        pid = re.search(r"(?:id=|peer )(\S+?)(?::| )", line)
        if not m:
            continue
        done += 1
        made_on = prefix_of.get(m.group(1))
        peer = os.path.basename(path)[:-4]
        if made_on and peer_gw.get(peer) and made_on not in peer_gw[peer]:
            crossed += 1
print(json.dumps({"peers": {k: sorted(v) for k, v in peer_gw.items()},
                  "gamers": {k: sorted(v) for k, v in gamer_gw.items()},
                  "tasks_done": done, "crossed": crossed}))
