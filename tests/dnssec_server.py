# SPDX-License-Identifier: MIT
"""A DNSSEC world on loopback for the DANE tests: a signed zone served by
one unbound (authoritative, auth-zone) and a second unbound validating
with that zone's key as its trust anchor (Debian's unbound and ldnsutils).

    world = DnssecWorld(folder, signed={"dane.test.": [records]},
                        unsigned={"plain.test.": [records]},
                        bogus={"dane.test.": [owner names]}).start()
    inst.set_config("smtp_dns_server", world.address)  # the validator
    ...
    world.stop()

The signed zones are signed with ldns-signzone (a KSK and a ZSK made by
ldns-keygen, ECDSA P-256); the validator trusts each zone's KSK directly
(trust-anchor-file) and reaches it by stub-zone, so answers from it carry
the AD bit. The unsigned zones are reached the same way but have no trust
anchor: the validator answers them as insecure (no AD bit). Records are
zone-file lines relative to nothing ("mx.dane.test. A 127.0.0.1"); SOA
and NS are added. Both unbound run in the foreground, as the current
user, from private configs in folder, and are stopped by their pids.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from dns_server import UNBOUND, free_udp_port, query

LDNS_KEYGEN = "/usr/bin/ldns-keygen"
LDNS_SIGNZONE = "/usr/bin/ldns-signzone"


def _base_conf(folder, port, name):
    return ["server:",
            "  interface: 127.0.0.1",
            f"  port: {port}",
            "  do-daemonize: no",
            '  username: ""',
            '  chroot: ""',
            f'  directory: "{folder}"',
            f'  pidfile: "{folder}/{name}.pid"',
            f'  logfile: "{folder}/{name}.log"',
            "  use-syslog: no",
            "  do-ip6: no",
            "  access-control: 127.0.0.0/8 allow",
            "  verbosity: 1"]


class DnssecWorld:
    def __init__(self, folder, signed, unsigned=None, bogus=None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.signed = {z if z.endswith(".") else z + ".": list(r)
                       for z, r in signed.items()}
        self.unsigned = {z if z.endswith(".") else z + ".": list(r)
                         for z, r in (unsigned or {}).items()}
        # zone -> owner names in a signed zone whose signatures (but not
        # those of their NSEC records) are broken after signing: the
        # validator finds their data bogus and answers SERVFAIL
        self.bogus = {z if z.endswith(".") else z + ".": list(o)
                      for z, o in (bogus or {}).items()}
        self.auth_port = None
        self.port = None
        self.procs = []

    @property
    def address(self):
        """The validating resolver, "127.0.0.1:PORT"."""
        return f"127.0.0.1:{self.port}"

    def _zonefile(self, zone, records):
        lines = [f"$TTL 300",
                 f"{zone} IN SOA ns.{zone} hostmaster.{zone} 1 3600 600 "
                 "86400 300",
                 f"{zone} IN NS ns.{zone}",
                 f"ns.{zone} IN A 127.0.0.1"]
        lines += records
        path = self.folder / (zone.rstrip(".") + ".zone")
        path.write_text("\n".join(lines) + "\n")
        return path

    def _run(self, args):
        return subprocess.run(args, cwd=self.folder, check=True,
                              capture_output=True, text=True,
                              timeout=60).stdout.strip()

    def _sign(self, zone, path):
        """Sign path; the signed file and the KSK's DNSKEY file."""
        ksk = self._run([LDNS_KEYGEN, "-a", "ECDSAP256SHA256", "-k", zone])
        zsk = self._run([LDNS_KEYGEN, "-a", "ECDSAP256SHA256", zone])
        signed = path.with_suffix(".signed")
        self._run([LDNS_SIGNZONE, "-o", zone, "-f", str(signed), str(path),
                   zsk, ksk])
        return signed, self.folder / (ksk + ".key")

    @staticmethod
    def _break(path, owners):
        """Flip the first octet of the RRSIGs of owners (not NSEC's)."""
        out = []
        for line in path.read_text().splitlines():
            f = line.split()
            if (len(f) > 5 and f[0] in owners and f[3] == "RRSIG"
                    and f[4] != "NSEC"):
                sig = f[-1]
                f[-1] = ("B" if sig[0] != "B" else "C") + sig[1:]
                line = " ".join(f)
            out.append(line)
        path.write_text("\n".join(out) + "\n")

    def _start(self, conf, name, probe):
        proc = subprocess.Popen([UNBOUND, "-d", "-c", str(conf)],
                                stdout=subprocess.DEVNULL,
                                stderr=open(self.folder / f"{name}.stderr",
                                            "w"))
        self.procs.append(proc)
        port = int(conf.read_text().split("port: ")[1].split()[0])
        deadline = time.monotonic() + 10
        while query(port, probe, qtype=6) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"unbound ({name}) did not start: " +
                                   (self.folder / f"{name}.stderr").read_text()
                                   + (self.folder / f"{name}.log").read_text()
                                   if (self.folder / f"{name}.log").exists()
                                   else "")
            time.sleep(0.05)

    def start(self):
        anchors = []
        auth_zones = []
        for zone, records in self.signed.items():
            signed, key = self._sign(zone, self._zonefile(zone, records))
            if zone in self.bogus:
                self._break(signed, self.bogus[zone])
            auth_zones.append((zone, signed))
            anchors.append(key)
        for zone, records in self.unsigned.items():
            auth_zones.append((zone, self._zonefile(zone, records)))
        probe = next(iter(self.signed or self.unsigned))

        # the authoritative server: auth-zone answers with RRSIGs to DO
        self.auth_port = free_udp_port()
        lines = _base_conf(self.folder, self.auth_port, "auth")
        lines.append('  module-config: "iterator"')
        for zone, _ in auth_zones:
            lines.append(f'  local-zone: "{zone}" nodefault')
        lines.append('  local-zone: "test." nodefault')
        for zone, path in auth_zones:
            lines += ["auth-zone:", f'  name: "{zone}"',
                      f'  zonefile: "{path}"', "  for-downstream: yes",
                      "  for-upstream: no"]
        lines += ["remote-control:", "  control-enable: no", ""]
        conf = self.folder / "auth.conf"
        conf.write_text("\n".join(lines))
        self._start(conf, "auth", probe)

        # the validator: trust anchors for the signed zones, stubs to auth
        self.port = free_udp_port()
        lines = _base_conf(self.folder, self.port, "resolver")
        lines += ['  module-config: "validator iterator"',
                  "  do-not-query-localhost: no",
                  "  qname-minimisation: no",
                  "  harden-referral-path: no",
                  "  val-log-level: 2",
                  "  cache-max-ttl: 0",
                  "  cache-max-negative-ttl: 0"]
        for key in anchors:
            lines.append(f'  trust-anchor-file: "{key}"')
        for zone, _ in auth_zones:
            lines.append(f'  local-zone: "{zone}" nodefault')
        # RFC 6761 names (test.) are local zones by default: let them out
        lines.append('  local-zone: "test." nodefault')
        for zone, _ in auth_zones:
            lines += ["stub-zone:", f'  name: "{zone}"',
                      f"  stub-addr: 127.0.0.1@{self.auth_port}"]
        lines += ["remote-control:", "  control-enable: no", ""]
        conf = self.folder / "resolver.conf"
        conf.write_text("\n".join(lines))
        self._start(conf, "resolver", probe)
        return self

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.procs = []
