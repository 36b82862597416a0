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
