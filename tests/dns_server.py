# SPDX-License-Identifier: MIT
"""A real DNS server on loopback for the outbound tests: Debian's unbound.

    dns = DnsServer(folder, records=[
        "mx.test. MX 10 a.mx.test.", "a.mx.test. A 127.0.0.2", ...],
        zones=["test."]).start()
    inst.set_config("smtp_dns_server", dns.address)     # "127.0.0.1:PORT"
    ...
    dns.stop()

Each zone is a "static" local zone: names in it without data answer
NXDOMAIN, names with other types NODATA. unbound runs in the foreground
(-d) from a private config in folder, as the current user, and is
stopped by its pid.
"""

import os
import random
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

from conftest import free_port

UNBOUND = "/usr/sbin/unbound"


def free_udp_port():
    return free_port(udp=True)


def query(port, name, qtype=15, timeout=0.5):
    """Send one query; the response code (0 NOERROR, 3 NXDOMAIN) or None."""
    qid = random.randint(0, 65535)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(4096)
        except OSError:
            return None
    return data[3] & 0x0F


class DnsServer:
    def __init__(self, folder, records, zones=("test.",)):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.records = list(records)
        self.zones = list(zones)
        self.port = None
        self.proc = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.port = free_udp_port()
        conf = self.folder / "unbound.conf"
        lines = ["server:",
                 "  interface: 127.0.0.1",
                 f"  port: {self.port}",
                 "  do-daemonize: no",
                 '  username: ""',
                 '  chroot: ""',
                 f'  directory: "{self.folder}"',
                 f'  pidfile: "{self.folder}/unbound.pid"',
                 f'  logfile: "{self.folder}/unbound.log"',
                 "  use-syslog: no",
                 "  do-ip6: no",
                 "  access-control: 127.0.0.0/8 allow",
                 '  module-config: "iterator"',
                 "  verbosity: 1"]
        for z in self.zones:
            lines.append(f'  local-zone: "{z}" static')
        for r in self.records:
            lines.append(f'  local-data: "{r}"')
        lines += ["remote-control:", "  control-enable: no", ""]
        conf.write_text("\n".join(lines))
        self.proc = subprocess.Popen([UNBOUND, "-d", "-c", str(conf)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.folder / "stderr", "w"))
        deadline = time.monotonic() + 10
        probe = self.zones[0]
        while query(self.port, probe, qtype=6) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("unbound did not start: " + (
                    self.folder / "stderr").read_text())
            time.sleep(0.05)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
