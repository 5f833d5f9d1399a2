"""Runs a command on a pseudo-terminal, as a person at a terminal would:
  kernels_menu.py TRANSCRIPT [INPUT...] -- COMMAND [ARG...]
Each INPUT line is typed after the next menu prompt ("\\n> ") appears; the
whole output goes to TRANSCRIPT and the exit status to TRANSCRIPT.rc.
Every wait is bounded (60 s per prompt, 120 s in all)."""
import os
import pty
import re
import select
import sys
import time


def main():
    sep = sys.argv.index("--")
    transcript, inputs, cmd = sys.argv[1], sys.argv[2:sep], sys.argv[sep + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(cmd[0], cmd)
    out = b""
    end = time.monotonic() + 120
    status = None

    def pump(timeout):
        nonlocal out
        r, _, _ = select.select([fd], [], [], timeout)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            out += data
            return bool(data)
        return True

    for i, line in enumerate(inputs):
        limit = min(end, time.monotonic() + 60)
        while len(re.findall(rb"\n> ", out)) < i + 1 and time.monotonic() < limit:
            if not pump(0.2):
                break
        os.write(fd, line.encode() + b"\n")
    while time.monotonic() < end:
        if not pump(0.2):
            break
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            while pump(0.1) and select.select([fd], [], [], 0)[0]:
                pass
            break
    if status is None:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = 0
        if not done:
            os.kill(pid, 9)
            _, status = os.waitpid(pid, 0)
    with open(transcript, "wb") as f:
        f.write(out)
    with open(transcript + ".rc", "w") as f:
        f.write("%d\n" % (os.waitstatus_to_exitcode(status)))


if __name__ == "__main__":
    main()
