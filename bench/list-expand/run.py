#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/list-expand: one post to an N-member list (default 10,000).

Makes an instance (postern instance init) with smtpd, cleanup, qmgr, the
smtp agent and list-mgr, routes the lists domain to list-mgr with
transport_maps and every member domain to Postfix's smtp-sink with
relayhost, adds N members with `postern list members add`, posts one
message by SMTP, and reports:
  queued     time from the post's 250 to list-mgr's "status=sent" line
             (all N per-member queue entries committed by cleanup)
  delivered  time until smtp-sink has received N messages
Usage: POSTERN_BUILD=/work/main/build bench/list-expand/run.py [N]
"""
import os
import re
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from conftest import Instance, HOST  # noqa: E402
from pipeline import add_pipeline_services, wait_port  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
DOMAIN = "lists.example.test"


def main():
    d = tempfile.mkdtemp(prefix="pst-bench-list-")
    inst = Instance.create(Path(d) / "i")
    os.chmod(d, 0o755)
    os.chmod(inst.dir, 0o755)
    add_pipeline_services(inst)
    if "smtp unix" not in (inst.dir / "master.conf").read_text():
        inst.add_service("smtp unix - - n - - smtp")
    sink_port = inst.port_base + 2525 if inst.port_base + 2525 < 65000 else 2525
    sink_out = Path(d) / "sink.count"
    (inst.dir / "transport").write_text(
        f"{DOMAIN} lmtp:unix:{inst.dir}/spool/private/list-mgr\n")
    for k, v in {"transport_maps": f"file:{inst.dir}/transport",
                 "mydestination": "localhost",
                 "relayhost": f"[{HOST}]:{sink_port}",
                 "default_destination_concurrency_limit": "20",
                 "default_process_limit": "100",
                 "list_expansion_processes": "8"}.items():
        inst.set_config(k, v)
    sink = subprocess.Popen(["/usr/sbin/smtp-sink", "-c", "-u", "nobody",
                             f"{HOST}:{sink_port}", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        inst.start()
        wait_port(inst.port("SMTP"))
        while not (inst.dir / "spool/private/list-mgr").exists():
            time.sleep(0.05)
        inst.postern("list", "create", f"big@{DOMAIN}", "posting=open",
                     "archive=off")
        members = [f"m{i}@member{i % 50}.example" for i in range(N)]
        for i in range(0, N, 1000):
            inst.postern("list", "members", "big", "add", *members[i:i + 1000])
        mark = inst.log_mark()
        msg = (f"From: a@example.org\r\nTo: big@{DOMAIN}\r\nSubject: bench\r\n"
               f"Message-ID: <bench@example.org>\r\n\r\n" + "x" * 2000 + "\r\n")
        t0 = time.monotonic()
        with smtplib.SMTP(HOST, inst.port("SMTP"), timeout=600) as s:
            s.sendmail("a@example.org", [f"big@{DOMAIN}"], msg)
        t_post = time.monotonic()
        inst.wait_for_log(r"list=big post from=<a@example.org> status=sent",
                          timeout=1200, start=mark)
        t_queued = time.monotonic()
        # delivered: count "status=sent" lines of the smtp agent to the sink
        while True:
            n = len(re.findall(r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d.*status=sent" % sink_port,
                               inst.log_text()[mark:]))
            if n >= N or time.monotonic() - t0 > 1800:
                break
            time.sleep(0.5)
        t_done = time.monotonic()
        print(f"members={N} post_accepted={t_post - t0:.2f}s "
              f"queued_all={t_queued - t0:.2f}s "
              f"delivered={n} in {t_done - t0:.2f}s "
              f"({n / (t_done - t0):.0f} msg/s)")
    finally:
        try:
            inst.stop(check=False)
        except Exception:
            pass
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
