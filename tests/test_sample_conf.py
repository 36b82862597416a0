"""The master.conf that `make install` puts in /etc/postern (conf/master.conf)
is a working configuration: every service line parses and master starts
them all. The standard ports are moved into the instance's port range and
the service accounts install-users creates are replaced by the test's user,
nothing else."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# standard port -> the instance port key that stands in for it
PORTS = {"25": "SMTP_PORT", "587": "SUBMISSION_PORT", "465": "SMTPS_PORT",
         "143": "IMAP_PORT", "993": "IMAPS_PORT", "110": "POP3_PORT",
         "995": "POP3S_PORT", "4190": "SIEVE_PORT"}


def test_installed_master_conf_starts_every_service(instance_factory):
    inst = instance_factory(pipeline=True)
    sample = (ROOT / "conf" / "master.conf").read_text()
    lines, services = [], []
    for line in sample.splitlines():
        m = re.match(r"^(\S+)(\s+)(inet|unix|fifo)(\s.*)$", line)
        if m and not line.startswith("#"):
            name = m.group(1)
            if name in PORTS:
                name = f"{inst.host}:{inst.port(PORTS[name])}"
            services.append(name)
            rest = re.sub(r"\bpostern-(mail|list|news|vacation)\b", "-",
                          m.group(4))
            line = name + m.group(2) + m.group(3) + rest
        lines.append(line)
    assert len(services) >= 19, services
    (inst.dir / "master.conf").write_text("\n".join(lines) + "\n")
    inst.start()
    try:
        out = inst.postern("status", "-k").stdout
        for name in services:
            assert f"name={name} " in out, (name, out)
    finally:
        inst.stop()
