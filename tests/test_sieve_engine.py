# SPDX-License-Identifier: MIT
"""Differential tests of the Sieve engine against Dovecot Pigeonhole.

Every case in tests/sieve/*.cases is run through `postern sieve test` and
through Pigeonhole's `sieve-test` (package dovecot-sieve) with the same
script, message and envelope; both outputs are normalised into a list of
actions and compared. A case that is known to differ, in a way the RFCs
allow, carries an `--- expect-diff` section naming the reason (listed in
tests/sieve/DIFFERENCES.md) and a `--- postern` section with Postern's
own expected normalised result: the test then checks Postern against
that and checks that Pigeonhole still gives what the reason says (its
result differs from Postern's), so nothing is silently skipped.

Case file format (one or more cases per file):

    === name
    # comments
    --- envelope          (optional; key=value lines: from, to)
    --- script
    --- message           (optional; default: tests/sieve/default.eml)
    --- include NAME      (a personal script for include)
    --- global NAME       (a global script for include)
    --- stored            (also compare the messages stores would write:
                           Postern's `--save`, Pigeonhole's `-e` into a
                           maildir; header fields as name and decoded,
                           unfolded value, in order, and the body)
    --- expect-diff       (reason, one line)
    --- postern           (Postern's normalised result for expect-diff cases)

Message text is stored with LF line ends and converted to CRLF.
Normalised actions (one per line, sorted):
    store MAILBOX [copy] [create] [flags=F1,F2]     (fileinto and keep)
    redirect ADDR [copy]
    reject TEXT | discard
    vacation seconds=N [subject=S] [from=F] handle=H body=B
    notify importance=N [from=F] [subject=S] to=A,B [body=B]
    implicit-keep [flags=...]
    COMPILE-ERROR | RUNTIME-ERROR
"""

import email.header
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("POSTERN_BUILD") or ROOT / "build").resolve()
POSTERN = BUILD / "bin" / "postern"
CASE_DIR = ROOT / "tests" / "sieve"
SIEVE_TEST = shutil.which("sieve-test") or "/usr/bin/sieve-test"
DEFAULT_FROM = "sender@example.org"
DEFAULT_TO = "rcpt@example.net"
# Fixed "now" is impossible for sieve-test; date tests use headers.
ENV = dict(os.environ, TZ="UTC", LC_ALL="C")


def load_cases():
    cases = []
    for path in sorted(CASE_DIR.glob("*.cases")):
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        cur = None
        section = None
        for line in text.split("\n"):
            if line.startswith("=== "):
                cur = {"name": f"{path.stem}/{line[4:].strip()}",
                       "sections": {}, "includes": {}, "globals": {}}
                cases.append(cur)
                section = None
                continue
            if cur is None:
                continue
            if line.startswith("--- "):
                section = line[4:].strip()
                cur["sections"][section] = []
                continue
            if section is None:
                continue
            cur["sections"][section].append(line)
        for c in cases:
            pass
    out = []
    for c in cases:
        secs = {}
        for k, lines in c["sections"].items():
            while lines and lines[-1] == "":
                lines.pop()
            secs[k] = "\n".join(lines) + ("\n" if lines else "")
        c["sections"] = secs
        for k, v in secs.items():
            if k.startswith("include "):
                c["includes"][k[8:].strip()] = v
            elif k.startswith("global "):
                c["globals"][k[7:].strip()] = v
        out.append(c)
    return out


CASES = load_cases()
DEFAULT_MSG = (CASE_DIR / "default.eml").read_text(encoding="utf-8",
                                                   errors="surrogateescape")


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode(
        "utf-8", errors="surrogateescape")


def envelope(case):
    env = {"from": DEFAULT_FROM, "to": DEFAULT_TO}
    for line in case["sections"].get("envelope", "").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    return env


def clean_text(s):
    """Control characters become '?', as sieve-test prints them."""
    return re.sub(r"[\x00-\x1f\x7f]", "?", s)


def norm_flags(flags):
    fl = sorted({f.lower() for f in flags if f})
    return ("flags=" + ",".join(fl)) if fl else ""


def join(*parts):
    return " ".join(p for p in parts if p)


def parse_pigeonhole(rc, out):
    if "failed to compile" in out or "validation failed" in out:
        return ["COMPILE-ERROR"]
    actions = []
    lines = out.splitlines()
    section = None
    cur = None
    in_msg = False
    body = []
    failed = "final result: failed" in out

    def flush():
        nonlocal cur
        if cur is None:
            return
        kind = cur["kind"]
        if kind == "store":
            a = join("store", cur["arg"], "copy" if cur["copy"] else "",
                     "create" if cur["create"] else "",
                     norm_flags(cur["flags"]))
            if section == "implicit":
                a = join("implicit-keep", norm_flags(cur["flags"]))
            actions.append(a)
        elif kind == "redirect":
            actions.append(join("redirect", cur["arg"],
                                "copy" if cur["copy"] else ""))
        elif kind == "reject":
            actions.append("reject " + clean_text(cur["arg"]))
        elif kind == "discard":
            actions.append("discard")
        elif kind == "notify":
            v = cur["vac"]
            actions.append(join("notify", "importance=" + v.get("importance", "?"),
                                "from=" + v["from"] if "from" in v else "",
                                "subject=" + clean_text(v["subject"]) if "subject" in v else "",
                                "to=" + ",".join(sorted(cur["rcpts"])),
                                "body=" + clean_text("\n".join(cur["body"]).strip())
                                if cur["has_body"] else ""))
        elif kind == "vacation":
            v = cur["vac"]
            actions.append(join("vacation", "seconds=" + v.get("seconds", "?"),
                                "subject=" + v["subject"] if "subject" in v else "",
                                "from=" + v["from"] if "from" in v else "",
                                "handle=" + v.get("handle", ""),
                                "body=" + clean_text("\n".join(cur["body"]).strip())))
        cur = None

    for line in lines:
        if in_msg:
            if line == "END MESSAGE" or (line == "--" and cur["kind"] == "notify"):
                in_msg = False
            else:
                cur["body"].append(line)
            continue
        if line.startswith("Performed actions:"):
            section = "performed"
            continue
        if line.startswith("Implicit keep:"):
            flush()
            section = "implicit"
            continue
        if section is None:
            continue
        m = re.match(r"^ \* (.*)$", line)
        if m:
            flush()
            t = m.group(1)
            cur = {"kind": None, "arg": "", "copy": False, "create": False,
                   "flags": [], "vac": {}, "body": [], "rcpts": [],
                   "has_body": False}
            if t.startswith("store message in folder: "):
                cur["kind"] = "store"
                cur["arg"] = t[len("store message in folder: "):]
            elif t.startswith("redirect message to: "):
                cur["kind"] = "redirect"
                cur["arg"] = t[len("redirect message to: "):].strip("<>")
            elif t.startswith("reject message with reason: "):
                cur["kind"] = "reject"
                cur["arg"] = t[len("reject message with reason: "):]
            elif t == "discard":
                cur["kind"] = "discard"
            elif t.startswith("track duplicate"):
                # Postern returns duplicate marks beside the actions
                cur = None
                continue
            elif t.startswith("send notification with method"):
                cur["kind"] = "notify"
            elif t.startswith("send vacation message"):
                cur["kind"] = "vacation"
            else:
                cur["kind"] = "other:" + t
                actions.append("UNKNOWN " + t)
            continue
        if cur is None:
            continue
        s = line.strip()
        if cur["kind"] is None:
            continue
        if s.startswith("+ add IMAP flags: "):
            cur["flags"] = s[len("+ add IMAP flags: "):].split()
        elif s == "+ create mailbox if it does not exist":
            cur["create"] = True
        elif s == "+ preserve implicit keep":
            cur["copy"] = True
        elif s.startswith("=> "):
            k, _, v = s[3:].partition(":")
            cur["vac"][k.strip()] = v.strip()
            if cur["kind"] == "notify" and k.strip() == "body":
                cur["has_body"] = True
        elif s.startswith("+ To: ") or s.startswith("+ Cc: "):
            cur["rcpts"].append(s[6:].strip())
        elif line == "START MESSAGE" or (line == "--" and cur["kind"] == "notify"):
            in_msg = True
    flush()
    if failed:
        actions = ["RUNTIME-ERROR", "implicit-keep"]
    return sorted(actions)


def unquote(s):
    """Parse one "..." string at the start of s; return (text, rest)."""
    assert s[0] == '"', s
    out = []
    i = 1
    while s[i] != '"':
        c = s[i]
        if c == "\\":
            n = s[i + 1]
            if n == "x":
                out.append(chr(int(s[i + 2:i + 4], 16)))
                i += 4
                continue
            out.append({"r": "\r", "n": "\n", "t": "\t"}.get(n, n))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out), s[i + 1:].lstrip()


def parse_postern(rc, out, err):
    if "not compiled" in err:
        return ["COMPILE-ERROR"]
    actions = []
    failed = False
    for line in out.splitlines():
        word, _, rest = line.partition(" ")
        opts = {}
        args = []
        while rest:
            if rest.startswith('"'):
                t, rest = unquote(rest)
                args.append(t)
            elif rest.startswith(":"):
                k, _, rest = rest[1:].partition(" ")
                if k in ("flags", "subject", "from", "handle", "addresses",
                         "message", "options", "to", "body"):
                    t, rest = unquote(rest)
                    opts[k] = t
                elif k in ("seconds", "importance"):
                    v, _, rest = rest.partition(" ")
                    opts[k] = v
                else:
                    opts[k] = True
            else:
                raise AssertionError("bad postern output: " + line)
        flags = opts.get("flags", "").split()
        if word == "keep":
            actions.append(join("store INBOX", norm_flags(flags)))
        elif word == "fileinto":
            actions.append(join("store", args[0],
                                "copy" if opts.get("copy") else "",
                                "create" if opts.get("create") else "",
                                norm_flags(flags)))
        elif word == "redirect":
            actions.append(join("redirect", args[0],
                                "copy" if opts.get("copy") else ""))
        elif word in ("reject", "ereject"):
            actions.append("reject " + clean_text(args[0]))
        elif word == "discard":
            actions.append("discard")
        elif word == "vacation":
            actions.append(join("vacation", "seconds=" + opts["seconds"],
                                "subject=" + opts["subject"] if "subject" in opts else "",
                                "from=" + opts["from"] if "from" in opts else "",
                                "handle=" + opts["handle"],
                                "body=" + clean_text(args[0].replace("\r\n", "\n").strip())))
        elif word == "notify":
            actions.append(join("notify", "importance=" + opts["importance"],
                                "from=" + opts["from"] if "from" in opts else "",
                                "subject=" + clean_text(opts["subject"])
                                if "subject" in opts else "",
                                "to=" + ",".join(sorted(opts["to"].split())),
                                "body=" + clean_text(opts["body"].replace("\r\n", "\n").strip())
                                if "body" in opts else ""))
        elif word == "implicit-keep":
            actions.append(join("implicit-keep", norm_flags(flags)))
        elif word == "error":
            failed = True
        else:
            raise AssertionError("bad postern output: " + line)
    if failed:
        actions = ["RUNTIME-ERROR", "implicit-keep"]
    return sorted(actions)


def write_case(tmp, case):
    tmp.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp, 0o777)
    script = tmp / "script.sieve"
    script.write_bytes(case["sections"].get("script", "").encode(
        "utf-8", errors="surrogateescape"))
    msg = tmp / "message.eml"
    msg.write_bytes(crlf(case["sections"].get("message", DEFAULT_MSG)))
    for d, scripts in (("personal", case["includes"]),
                       ("global", case["globals"])):
        (tmp / d).mkdir(exist_ok=True)
        os.chmod(tmp / d, 0o777)
        for name, text in scripts.items():
            p = tmp / d / f"{name}.sieve"
            p.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    for p in tmp.rglob("*"):
        os.chmod(p, 0o777 if p.is_dir() else 0o666)
    return script, msg


def dovecot_conf(tmp):
    uid = os.getuid()
    user = "nobody" if uid == 0 else str(uid)
    group = "nogroup" if uid == 0 else str(os.getgid())
    conf = tmp / "dovecot.conf"
    conf.write_text(f"""\
mail_uid = {user}
mail_gid = {group}
mail_location = mbox:{tmp}/mail:INBOX={tmp}/mail/inbox
plugin {{
  sieve = file:{tmp}/personal;active={tmp}/active.sieve
  sieve_global = {tmp}/global
  sieve_extensions = +editheader +vacation-seconds +spamtest +spamtestplus +virustest
  sieve_spamtest_status_type = score
  sieve_spamtest_status_header = X-Spam-Score
  sieve_spamtest_max_value = 10
  sieve_virustest_status_type = score
  sieve_virustest_status_header = X-Virus-Score
  sieve_virustest_max_value = 5
}}
""")
    os.chmod(conf, 0o644)
    return conf


def run_pigeonhole(tmp, case, script, msg):
    env = envelope(case)
    conf = dovecot_conf(tmp)
    p = subprocess.run([SIEVE_TEST, "-c", str(conf), "-f", env["from"],
                        "-r", env["to"], "-a", env["to"], str(script),
                        str(msg)], capture_output=True, env=ENV,
                       timeout=60, cwd=tmp)
    out = p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")
    return parse_pigeonhole(p.returncode, out), out


def run_postern(tmp, case, script, msg):
    env = envelope(case)
    p = subprocess.run([str(POSTERN), "sieve", "test", str(script), str(msg),
                        "--from", env["from"], "--to", env["to"],
                        "--personal-dir", str(tmp / "personal"),
                        "--global-dir", str(tmp / "global"),
                        "--spam-header", "X-Spam-Score", "--spam-max", "10",
                        "--virus-header", "X-Virus-Score"],
                       capture_output=True, env=ENV, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    assert "AddressSanitizer" not in err and "runtime error:" not in err, err
    assert p.returncode in (0, 1), (p.returncode, out, err)
    return parse_postern(p.returncode, out, err), out + err


def norm_stored(data):
    """A stored message as [(name, decoded unfolded value)...] + body,
    line ends and folding white space made uniform."""
    data = data.replace(b"\r\n", b"\n")
    head, _, body = data.partition(b"\n\n")
    fields = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += b" " + line.strip()
        else:
            name, _, value = line.partition(b":")
            fields.append([name, value.strip()])
    out = []
    for name, value in fields:
        v = value.decode("utf-8", "surrogateescape")
        try:
            v = str(email.header.make_header(email.header.decode_header(v)))
        except Exception:
            pass
        out.append((name.decode("ascii", "replace"), re.sub(r"\s+", " ", v)))
    return out, body


def stored_postern(tmp, case, script, msg):
    env = envelope(case)
    out = tmp / "postern-stored"
    out.mkdir()
    p = subprocess.run([str(POSTERN), "sieve", "test", str(script), str(msg),
                        "--from", env["from"], "--to", env["to"],
                        "--save", str(out)], capture_output=True, env=ENV,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return {f.stem: norm_stored(f.read_bytes()) for f in out.iterdir()}


def stored_pigeonhole(tmp, case, script, msg):
    """sieve-test -e: the actions are carried out into a maildir."""
    env = envelope(case)
    md = tmp / "maildir"
    md.mkdir()
    os.chmod(md, 0o777)
    conf = tmp / "dovecot-md.conf"
    user = "nobody" if os.getuid() == 0 else str(os.getuid())
    group = "nogroup" if os.getuid() == 0 else str(os.getgid())
    conf.write_text(f"""\
mail_uid = {user}
mail_gid = {group}
mail_location = maildir:{md}:LAYOUT=fs
plugin {{
  sieve_extensions = +editheader
}}
""")
    os.chmod(conf, 0o644)
    p = subprocess.run([SIEVE_TEST, "-e", "-c", str(conf), "-f", env["from"],
                        "-r", env["to"], "-a", env["to"], str(script),
                        str(msg)], capture_output=True, env=ENV,
                       timeout=60, cwd=tmp)
    assert p.returncode == 0, p.stdout + p.stderr
    got = {}
    for f in md.rglob("*"):
        if f.is_file() and f.parent.name in ("new", "cur"):
            box = f.parent.parent.relative_to(md).as_posix()
            got["INBOX" if box == "." else box.replace("/", "_")] = \
                norm_stored(f.read_bytes())
    return got


def differences_listed():
    text = (CASE_DIR / "DIFFERENCES.md").read_text()
    return set(re.findall(r"^## (\S+)", text, re.M))


@pytest.fixture(scope="module")
def have_pigeonhole():
    if not os.path.exists(SIEVE_TEST):
        pytest.skip("sieve-test (dovecot-sieve) is not installed; "
                    "run scripts/deps.sh")


def test_corpus_size():
    """The issue asks for at least 150 differential cases."""
    assert len(CASES) >= 150, len(CASES)


def test_differences_documented():
    listed = differences_listed()
    for c in CASES:
        if "expect-diff" in c["sections"]:
            reason = c["sections"]["expect-diff"].split()[0]
            assert reason in listed, (c["name"], reason)
            assert "postern" in c["sections"], c["name"]


@pytest.fixture
def case_dir():
    """A directory sieve-test's unprivileged user can reach (pytest's
    tmp_path is under a 0700 directory)."""
    d = Path(tempfile.mkdtemp(prefix="postern-sieve-", dir="/tmp"))
    os.chmod(d, 0o777)
    yield d / "case"
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_sieve_differential(case, have_pigeonhole, case_dir):
    script, msg = write_case(case_dir, case)
    mine, mine_raw = run_postern(case_dir, case, script, msg)
    theirs, theirs_raw = run_pigeonhole(case_dir, case, script, msg)
    if "expect-diff" in case["sections"]:
        want = sorted(l for l in case["sections"]["postern"].splitlines() if l)
        assert mine == want, f"postern:\n{mine_raw}"
        assert theirs != mine, ("the listed difference is gone; remove the "
                                f"expect-diff: pigeonhole:\n{theirs_raw}")
        return
    assert mine == theirs, (f"\npostern:   {mine}\npigeonhole: {theirs}\n"
                            f"--- postern output\n{mine_raw}"
                            f"--- pigeonhole output\n{theirs_raw}")
    if "stored" in case["sections"]:
        mine = stored_postern(case_dir, case, script, msg)
        theirs = stored_pigeonhole(case_dir, case, script, msg)
        assert mine and mine == theirs, (f"\npostern:    {mine}\n"
                                         f"pigeonhole: {theirs}")
