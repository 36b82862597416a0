# SPDX-License-Identifier: MIT
"""The failed-login delay (lib/auth_delay) through real IMAP logins.

Every imapd login process is a process of its own; the delay state lives
in the shared table $auth_failure_delay_table. Clients connect from
several loopback addresses (127.0.0.1, .2, ...) to tell the per-address
count from the per-user count. Only lower bounds are asserted on times,
except one loose bound that shows a reset happened.
"""

import imaplib
import os
import socket
import time

import pytest

from conftest import HOST

USER, PASSWORD = "alice", "secret"
BASE = 0.4          # auth_failure_delay_ms / 1000
MAX = 3.2           # auth_failure_delay_max_ms / 1000


class IMAPFrom(imaplib.IMAP4):
    """imaplib.IMAP4 from a chosen local address."""

    def __init__(self, port, source):
        self._source = source
        super().__init__(HOST, port, timeout=30)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0))


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def attempt(inst, source, user, password):
    """One LOGIN on a new connection: (succeeded, seconds the LOGIN took)."""
    m = IMAPFrom(inst.port("IMAP"), source)
    t0 = time.monotonic()
    try:
        m.login(user, password)
        ok = True
    except imaplib.IMAP4.error as e:
        assert "AUTHENTICATIONFAILED" in str(e), e
        ok = False
    took = time.monotonic() - t0
    m.logout()
    return ok, took


@pytest.fixture
def imap(instance_factory):
    inst = instance_factory()
    os.chmod(inst.dir, 0o711)
    inst.set_config("auth_failure_delay_ms", str(int(BASE * 1000)))
    inst.set_config("auth_failure_delay_max_ms", str(int(MAX * 1000)))
    inst.set_config("auth_failure_delay_decay", "1h")
    inst.start()
    inst.postern("user", "add", USER, "--password", PASSWORD)
    wait_port(inst.port("IMAP"))
    return inst


def test_failed_logins_wait_longer_and_longer(imap):
    # One address, one user: each failure doubles the wait (0.4, 0.8,
    # 1.6, 3.2 s), across separate login processes.
    times = []
    for _ in range(4):
        ok, took = attempt(imap, "127.0.0.1", USER, "wrong")
        assert not ok
        times.append(took)
    assert times[0] >= BASE
    assert times[2] >= 4 * BASE
    assert times[3] >= MAX, times
    table = imap.dir / "data" / "auth_delay"
    assert table.is_file() and table.stat().st_size > 0

    # The user's count follows the user to another address.
    ok, took = attempt(imap, "127.0.0.2", USER, "wrong")
    assert not ok and took >= MAX, took

    # An unknown user is delayed exactly like a wrong password (no user
    # enumeration by timing): its count grows from a fresh address too.
    ghost = [attempt(imap, "127.0.0.3", "ghost", "wrong") for _ in range(3)]
    assert not any(ok for ok, _ in ghost)
    assert ghost[0][1] >= BASE and ghost[2][1] >= 4 * BASE, ghost

    # The right password still logs in, from a fresh address ...
    ok, _ = attempt(imap, "127.0.0.4", USER, PASSWORD)
    assert ok
    # ... and forgets the user's failures: the next failure from that
    # address waits the base delay again, not the cap (loose bound:
    # without the reset it would take at least MAX + 1 s).
    ok, took = attempt(imap, "127.0.0.4", USER, "wrong")
    assert not ok and took >= BASE
    assert took < MAX + 0.9, took
    # The address 127.0.0.1 is not forgiven by alice's good login.
    ok, took = attempt(imap, "127.0.0.1", "bob", "wrong")
    assert not ok and took >= MAX, took
    assert "login failed: user=ghost" in imap.log_text()


def test_parallel_connections_wait_too(imap):
    # After failures, even a right password waits before it is answered:
    # otherwise a client with many connections would learn the answer
    # without waiting out the wrong ones.
    for _ in range(3):
        attempt(imap, "127.0.0.5", USER, "wrong")      # next: 1.6 s
    # A second connection fails while the third attempt's wait is set;
    # two connections at once: both are delayed.
    a = IMAPFrom(imap.port("IMAP"), "127.0.0.5")
    b = IMAPFrom(imap.port("IMAP"), "127.0.0.5")
    try:
        a.send(b"a1 LOGIN alice wrong\r\n")
        time.sleep(1.0)     # a's failure is recorded by now (3.2 s wait)
        t0 = time.monotonic()
        ok = b.login(USER, PASSWORD)[0] == "OK"
        took = time.monotonic() - t0
        assert ok
        # the good login waited for the wait the failure on a set
        assert took >= 1.0, took
    finally:
        for m in (a, b):
            try:
                m.shutdown()
            except OSError:
                pass
