# SPDX-License-Identifier: MIT
"""Helpers for the injection-path tests (test_cleanup.py, test_sendmail.py).

    inst = start_with_cleanup(instance_factory)       # cleanup in master.conf
    r = sendmail(inst, ["bob@example.com"], b"Subject: x\n\nhi\n")
    (qid,) = queue_ids(inst, "active")
    qf = qfcat(inst, "active", qid)                   # dict: sender, rcpts, content...

qfcat runs tests/progs/qfcat (a queue_file.h reader), so these tests
check what is on disk, not what a daemon says.
"""

import os
import pwd
import shutil
import subprocess
import time

import pytest

from conftest import BIN, PROGS

SENDMAIL = BIN / "sendmail"
QFCAT = PROGS / "qfcat"
CLEANUP_LINE = "cleanup unix n - n - 0 cleanup"

# sysexits.h
EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOUSER = 67
EX_TEMPFAIL = 75


def has_cleanup_service(inst):
    text = (inst.dir / "master.conf").read_text()
    return any(line.split()[:2] == ["cleanup", "unix"]
               for line in text.splitlines()
               if line.strip() and not line.startswith("#"))


def ensure_cleanup(inst):
    """Add the cleanup service unless master.conf has it (instance init
    writes it since cleanup exists)."""
    if not has_cleanup_service(inst):
        inst.add_service(CLEANUP_LINE)


def remove_cleanup(inst):
    """Comment out the cleanup service (for tests of its absence)."""
    path = inst.dir / "master.conf"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join("#" + line if line.split()[:2] == ["cleanup", "unix"]
                            else line for line in lines))


def start_with_cleanup(instance_factory, config=None, env=None, monkeypatch=None):
    """An instance with the cleanup service, started. config: extra
    postern.conf settings; env: variables master (and so cleanup) gets."""
    assert SENDMAIL.exists(), f"{SENDMAIL} is not built"
    assert QFCAT.exists(), f"{QFCAT} is not built"
    inst = instance_factory()
    ensure_cleanup(inst)
    for key, value in (config or {}).items():
        inst.set_config(key, value)
    if env:
        assert monkeypatch is not None
        for key, value in env.items():
            monkeypatch.setenv(key, value)
    inst.start()
    sock = inst.dir / "spool" / "public" / "cleanup"
    deadline = time.monotonic() + 10
    while not sock.exists():
        assert time.monotonic() < deadline, "public/cleanup never appeared"
        time.sleep(0.05)
    return inst


def spool(inst):
    return inst.dir / "spool"


def queue_ids(inst, queue):
    d = spool(inst) / queue
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def config_value(inst, key):
    for line in (inst.dir / "postern.conf").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip()
    return None


def local_user(inst):
    """A login that is neither root nor the instance's mail_owner, for
    acting as an untrusted local user; skips unless we are root."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run sendmail as another local user")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    owner = config_value(inst, "mail_owner")
    for name in ("nobody", "daemon", "bin", "sys"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        if name != owner and pw.pw_uid != 0:
            return pw
    pytest.skip("no unprivileged account other than mail_owner")


def open_up(inst):
    """Let other users reach postern.conf and the public socket (the
    instance directory is mkdtemp's 0700)."""
    os.chmod(inst.dir, 0o755)
    os.chmod(inst.dir / "postern.conf", 0o644)


def sendmail(inst, args, data, user=None, env=None, timeout=60):
    """Run sendmail -C DIR ARGS with data on stdin; CompletedProcess
    with bytes stdout/stderr. user: a pwd entry to run as (setpriv)."""
    cmd = [str(SENDMAIL), "-C", str(inst.dir)] + [str(a) for a in args]
    if user is not None:
        cmd = ["setpriv", "--reuid", str(user.pw_uid), "--regid",
               str(user.pw_gid), "--clear-groups", "--"] + cmd
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run(cmd, input=data, capture_output=True,
                          timeout=timeout, env=full)


def qfcat(inst, queue, qid):
    """The queue file as a dict: sender, protocol, ..., attrs (dict),
    rcpts (list of dicts), content (bytes)."""
    r = subprocess.run([str(QFCAT), str(spool(inst)), queue, qid],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    out = r.stdout
    qf = {"attrs": {}, "rcpts": []}
    pos = 0
    while True:
        nl = out.index(b"\n", pos)
        line = out[pos:nl].decode()
        pos = nl + 1
        if line.startswith("content="):
            length = int(line.split("=", 1)[1])
            qf["content"] = out[pos:pos + length]
            assert len(qf["content"]) == length
            break
        if line.startswith("attr "):
            k, _, v = line[5:].partition("=")
            qf["attrs"][k] = v
        elif line.startswith("rcpt="):
            rcpt = {}
            for part in line.split(" "):
                k, _, v = part.partition("=")
                rcpt[k] = v
            qf["rcpts"].append(rcpt)
        else:
            k, _, v = line.partition("=")
            qf[k] = v
    return qf


def header_and_body(content):
    head, sep, body = content.partition(b"\r\n\r\n")
    assert sep, f"no empty line in {content!r}"
    return head + b"\r\n", body


def header_fields(content):
    """Field names (lower case) -> list of unfolded values."""
    head, _ = header_and_body(content)
    fields = {}
    name = None
    for line in head.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and name is not None:
            fields[name][-1] += b" " + line.strip()
            continue
        n, _, v = line.partition(b":")
        name = n.decode().strip().lower()
        fields.setdefault(name, []).append(v.strip())
    return fields


def the_only(inst, queue="active"):
    ids = queue_ids(inst, queue)
    assert len(ids) == 1, f"{queue}/ holds {ids}"
    return ids[0], qfcat(inst, queue, ids[0])
