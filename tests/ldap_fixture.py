# SPDX-License-Identifier: MIT
"""A real OpenLDAP slapd (Debian slapd) in a temporary folder.

    d = Directory(tmpdir)                      # config + back_mdb database
    d.load(ldif_text)                          # slapadd, before start
    d.start() ... d.restart() ... d.stop()

slapd runs from a generated slapd.conf (schemas core, cosine,
inetorgperson and Postern's conf/postern.schema) on ldap://127.0.0.1:PORT/
with its mdb database in the folder.

    d = Directory(tmpdir, tls=True)            # also StartTLS and ldaps://

With tls=True the folder gets a test CA (d.ca_file) and a server
certificate for 127.0.0.1 and localhost signed by it; slapd then offers
StartTLS on d.uri and listens on d.ldaps_uri too. d.other_ca_file is a
second CA that did not sign it (for "wrong CA" tests). With
require_tls=True as well, slapd refuses every operation without TLS. The mail server's read-only account
is MAIL_DN / MAIL_PW; anonymous clients may only bind (no reads), users
may bind as themselves. The suffix is SUFFIX. stop() ends slapd by the
pid in its pid file.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SLAPPASSWD = shutil.which("slappasswd") or "/usr/sbin/slappasswd"
SCHEMA_DIR = Path("/etc/ldap/schema")

SUFFIX = "dc=postern,dc=test"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PW = "admin secret"
MAIL_DN = f"cn=mailserver,{SUFFIX}"
MAIL_PW = "mail server secret"


def have_slapd():
    return os.path.exists(SLAPD) and os.path.exists(SLAPADD)


def hash_password(pw):
    return subprocess.run([SLAPPASSWD, "-s", pw], capture_output=True,
                          text=True, check=True).stdout.strip()


def _free_port():
    return free_port()


def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr}")


def make_test_ca(directory, name):
    """A self-signed CA in DIR/NAME.pem with its key in DIR/NAME.key."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
             "-subj", f"/CN=Postern test {name}", "-keyout", f"{name}.key",
             "-out", f"{name}.pem", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=directory)
    return Path(directory) / f"{name}.pem"


def make_server_cert(directory, ca_name, name):
    """DIR/NAME.pem + DIR/NAME.key for 127.0.0.1 and localhost, signed by
    the CA DIR/CA_NAME.pem."""
    ext = Path(directory) / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                   "extendedKeyUsage=serverAuth\n"
                   "basicConstraints=CA:FALSE\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca_name}.pem",
             "-CAkey", f"{ca_name}.key", "-CAcreateserial", "-days", "30",
             "-extfile", ext.name, "-out", f"{name}.pem", cwd=directory)
    return Path(directory) / f"{name}.pem", Path(directory) / f"{name}.key"


class Directory:
    def __init__(self, directory, tls=False, require_tls=False):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.port = _free_port()
        self.uri = f"ldap://127.0.0.1:{self.port}/"
        self.tls = tls
        self.ldaps_uri = None
        self.ca_file = self.other_ca_file = None
        tls_conf = ""
        if tls:
            self.ldaps_port = _free_port()
            self.ldaps_uri = f"ldaps://127.0.0.1:{self.ldaps_port}/"
            self.ca_file = make_test_ca(self.dir, "ca")
            self.other_ca_file = make_test_ca(self.dir, "otherca")
            cert, key = make_server_cert(self.dir, "ca", "server")
            tls_conf = (f"TLSCACertificateFile {self.ca_file}\n"
                        f"TLSCertificateFile {cert}\n"
                        f"TLSCertificateKeyFile {key}\n")
            if require_tls:
                # every operation but StartTLS itself needs TLS
                tls_conf += "security tls=1\n"
        self.db = self.dir / "db"
        self.db.mkdir(exist_ok=True)
        self.pidfile = self.dir / "slapd.pid"
        self.conf = self.dir / "slapd.conf"
        self.pid = None
        schemas = "".join(f"include {SCHEMA_DIR}/{s}.schema\n"
                          for s in ("core", "cosine", "inetorgperson"))
        self.conf.write_text(f"""\
{schemas}include {ROOT}/conf/postern.schema
pidfile {self.pidfile}
argsfile {self.dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
{tls_conf}disallow bind_anon
require authc

database mdb
maxsize 10485760
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw "{ADMIN_PW}"
directory {self.db}
index uid,mail eq
index objectClass eq

access to attrs=userPassword
	by anonymous auth
	by * none
access to *
	by dn.exact="{MAIL_DN}" read
	by self read
	by * none
""")
        base = f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Postern test
dc: postern

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: {MAIL_DN}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: mailserver
userPassword: {hash_password(MAIL_PW)}
"""
        self._slapadd(base)

    def _slapadd(self, ldif):
        r = subprocess.run([SLAPADD, "-f", str(self.conf), "-b", SUFFIX],
                           input=ldif, capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"slapadd: {r.stderr}")

    def load(self, ldif):
        """Add entries (LDIF text) offline, before start()."""
        assert self.pid is None
        self._slapadd(ldif)

    def user_ldif(self, uid, password=None, **attrs):
        """LDIF for an inetOrgPerson + posternUser under ou=people."""
        lines = [f"dn: uid={uid},ou=people,{SUFFIX}",
                 "objectClass: inetOrgPerson", "objectClass: posternUser",
                 f"uid: {uid}", f"cn: {uid}", f"sn: {uid}"]
        if password is not None:
            lines.append(f"userPassword: {hash_password(password)}")
        for key, value in attrs.items():
            for v in value if isinstance(value, (list, tuple)) else [value]:
                lines.append(f"{key}: {v}")
        return "\n".join(lines) + "\n\n"

    def start(self):
        urls = self.uri + (" " + self.ldaps_uri if self.ldaps_uri else "")
        r = subprocess.run([SLAPD, "-f", str(self.conf), "-h", urls],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"slapd: {r.stderr}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.pid = int(self.pidfile.read_text())
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=1).close()
                return
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError("slapd did not start")

    def stop(self):
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid = None
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def restart(self):
        self.stop()
        self.start()

    def search(self, filt, *attrs, bind=(MAIL_DN, MAIL_PW)):
        """ldapsearch as the mail server (or bind=None: anonymous); stdout, rc."""
        args = ["ldapsearch", "-LLL", "-x", "-H", self.uri, "-b", SUFFIX]
        if bind:
            args += ["-D", bind[0], "-w", bind[1]]
        r = subprocess.run(args + [filt, *attrs], capture_output=True,
                           text=True, timeout=30)
        return r.stdout, r.returncode
