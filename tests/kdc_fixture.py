# SPDX-License-Identifier: MIT
"""A real Heimdal KDC (Debian heimdal-kdc) in a temporary folder.

    kdc = KDC(tmpdir, realm="POSTERN.TEST")   # realm made with kadmin -l
    kdc.add_user("kuser", "password")
    kdc.add_service("imap/localhost")          # random key
    kdc.keytab(["imap/localhost"])             # -> path of a keytab
    kdc.start() ... kdc.stop()

The realm's database, krb5.conf and log live in the folder; nothing is
read from or written to /etc or /var/lib (kadmin gets --config-file, the
clients KRB5_CONFIG). The KDC listens on 127.0.0.1 on its own port (TCP
and UDP) and runs in the foreground, so its pid is ours and stop() ends
it by that pid. (Heimdal's kdc always writes /var/run/kdc.pid too; that
file is not used.)

For the SASL GSSAPI tests, at the end: kdc_pair() (a KDC and a forged
one for a module fixture), Creds (a ticket cache and python-gssapi
contexts on it), sasl_gssapi() (the RFC 4752 exchange), REALM, KPW.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from conftest import free_port

KDC_BIN = "/usr/lib/heimdal-servers/kdc"
KADMIN = shutil.which("kadmin") or "/usr/bin/kadmin"


def have_heimdal_kdc():
    return os.path.exists(KDC_BIN) and os.path.exists(KADMIN)


def _free_port():
    # A port free for both TCP and UDP.
    return free_port(udp=True)


class KDC:
    def __init__(self, directory, realm="POSTERN.TEST"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        # Daemons that dropped privileges must read krb5.conf and keytabs.
        os.chmod(self.dir, 0o755)
        self.realm = realm
        self.port = _free_port()
        self.conf = self.dir / "krb5.conf"
        self.log = self.dir / "kdc.log"
        self.proc = None
        self.conf.write_text(f"""\
[libdefaults]
	default_realm = {realm}
	dns_lookup_kdc = false
	dns_lookup_realm = false
	dns_canonicalize_hostname = false
	rdns = false
	udp_preference_limit = 1
	kdc_timesync = 0
[realms]
	{realm} = {{
		kdc = 127.0.0.1:{self.port}
	}}
[domain_realm]
	localhost = {realm}
[kdc]
	database = {{
		dbname = {self.dir}/heimdal
		realm = {realm}
		mkey_file = {self.dir}/m-key
		acl_file = {self.dir}/kadmind.acl
		log_file = {self.dir}/kdc.log
	}}
	addresses = 127.0.0.1
	ports = {self.port}
[logging]
	kdc = FILE:{self.log}
	default = FILE:{self.log}
""")
        os.chmod(self.conf, 0o644)
        self.kadmin("init", "--realm-max-ticket-life=1d",
                    "--realm-max-renewable-life=1d", realm)

    def env(self):
        env = dict(os.environ)
        env["KRB5_CONFIG"] = str(self.conf)
        return env

    def kadmin(self, *args, input=None):
        """kadmin -l on this realm's database; stdout."""
        r = subprocess.run([KADMIN, "-l", f"--config-file={self.conf}",
                            *args], capture_output=True, text=True,
                           env=self.env(), input=input, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"kadmin {' '.join(args)}: {r.stderr}")
        return r.stdout

    def add_user(self, name, password):
        self.kadmin("add", f"--password={password}", "--use-defaults", name)

    def set_password(self, name, password):
        self.kadmin("passwd", f"--password={password}", name)

    def add_service(self, name):
        self.kadmin("add", "--random-key", "--use-defaults", name)

    def randomize(self, name):
        """Give name a new random key (keytabs made before are stale)."""
        self.kadmin("cpw", "--random-key", name)

    def keytab(self, principals, name="postern.keytab"):
        path = self.dir / name
        if path.exists():
            path.unlink()
        self.kadmin("ext_keytab", "-k", str(path), *principals)
        os.chmod(path, 0o644)   # test only: the login role must read it
        return path

    def start(self):
        self.proc = subprocess.Popen(
            [KDC_BIN, f"--config-file={self.conf}", f"--ports={self.port}",
             "--addresses=127.0.0.1"],
            stdout=open(self.dir / "kdc.out", "wb"), stderr=subprocess.STDOUT,
            env=self.env())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("kdc exited: "
                                   + (self.dir / "kdc.out").read_text())
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("kdc did not start")

    def kinit(self, principal, password, ccache):
        """A real client's kinit; True if it got a ticket."""
        r = subprocess.run(["kinit", "--password-file=STDIN", "-c",
                            f"FILE:{ccache}", principal], input=password + "\n",
                           capture_output=True, text=True, env=self.env(),
                           timeout=30)
        return r.returncode == 0

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# ------------------------------------------------ GSSAPI test helpers
# Shared by the SASL GSSAPI tests (test_auth_gssapi.py: imapd, smtpd;
# test_pop3d_sieved_sasl.py: pop3d, sieved).

try:
    import gssapi
except ImportError:   # pragma: no cover
    gssapi = None

REALM = "POSTERN.TEST"
SERVICES = ["imap/localhost", "smtp/localhost", "pop/localhost",
            "sieve/localhost"]
KPW = "kerberos pass 1"


def have_gssapi_tests():
    """heimdal-kdc for the KDC, python3-gssapi for the client side."""
    return have_heimdal_kdc() and gssapi is not None


def kdc_pair(prefix):
    """For a module fixture (`yield from kdc_pair("pst-x-")`): a real KDC
    (kuser, kuser/admin with KPW, the SERVICES with a keytab) and a forged
    one (same realm and names, other keys), started; yields {"kdc",
    "forged", "keytab", "base"} and stops both afterwards."""
    import tempfile
    base = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(base, 0o755)
    kdc = KDC(base / "kdc", REALM)
    kdc.add_user("kuser", KPW)
    kdc.add_user("kuser/admin", KPW)
    for s in SERVICES:
        kdc.add_service(s)
    keytab = kdc.keytab(SERVICES)
    forged = KDC(base / "forged", REALM)
    forged.add_user("kuser", KPW)
    for s in SERVICES:
        forged.add_service(s)   # keys the server does not have
    kdc.start()
    forged.start()
    yield {"kdc": kdc, "forged": forged, "keytab": keytab, "base": base}
    forged.stop()
    kdc.stop()
    shutil.rmtree(base, ignore_errors=True)


class Creds:
    """A ticket cache for principal from kdc, and python-gssapi on it."""

    def __init__(self, kdc, principal, tmp, name="cc"):
        self.ccache = tmp / f"{name}.ccache"
        assert kdc.kinit(principal, KPW, self.ccache), principal
        self.kdc = kdc

    def context(self, service):
        # MIT reads krb5.conf at each new library context
        os.environ["KRB5_CONFIG"] = str(self.kdc.conf)
        creds = gssapi.Credentials(usage="initiate",
                                   store={"ccache": f"FILE:{self.ccache}"})
        name = gssapi.Name(f"{service}@localhost",
                           gssapi.NameType.hostbased_service)
        return gssapi.SecurityContext(name=name, creds=creds,
                                      usage="initiate")

    def env(self):
        """The environment for a client program using this cache."""
        e = dict(os.environ)
        e["KRB5CCNAME"] = f"FILE:{self.ccache}"
        e["KRB5_CONFIG"] = str(self.kdc.conf)
        return e


def sasl_gssapi(ctx, send, recv, authz=b""):
    """RFC 4752 after the initial token was sent: recv() gives the next
    challenge (bytes) or None once the server answered; send(bytes)
    sends a response. The server's "no layer" offer is answered with no
    layer and the authorization identity authz."""
    while True:
        chal = recv()
        if chal is None:
            return
        if not ctx.complete:
            send(ctx.step(chal) or b"")
            continue
        offer = ctx.unwrap(chal).message
        assert len(offer) == 4 and offer[0] & 1, offer   # "no layer"
        send(ctx.wrap(b"\x01\x00\x00\x00" + authz, False).message)
