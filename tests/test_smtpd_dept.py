# SPDX-License-Identifier: MIT
"""smtpd's RCPT check for the two kinds of local address outside
$mydestination: departmental addresses ($department_domains, a user's
alias in the user database's reverse index) and SRS0 addresses at
$srs_domain (valid hash and timestamp). Both are accepted from any
client, since they are delivered here; unknown ones get 550 5.1.1 at
RCPT. The client here (127.0.0.1) is outside $mynetworks, so relaying
is refused and only the local checks can accept.
"""

import smtplib

from test_forwarding import forwarding_queue, srs0
from test_qmgr import MSG, has_service, start_queue


def test_dept_and_srs_recipients_at_rcpt(instance_factory):
    q, remote, origin = forwarding_queue(instance_factory)
    inst = q.inst
    port = inst.port("SMTP")
    line = f"127.0.0.1:{port} inet n - n - - smtpd"
    if not has_service(inst, f"127.0.0.1:{port}", "inet"):
        inst.add_service(line)
    inst.set_config("mynetworks", "192.0.2.0/24")
    inst.postern("alias", "set", "bob", "b.smith@dept.test")
    start_queue(q)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.ehlo("client.example")
            assert s.mail("jane@origin.test")[0] == 250
            # not ours, not a local domain: no relaying for this client
            code, msg = s.rcpt("x@elsewhere.test")
            assert code == 554 and b"Relay access denied" in msg
            # departmental: known (also with an extension), unknown
            assert s.rcpt("B.Smith@Dept.test")[0] == 250
            assert s.rcpt("b.smith+news@dept.test")[0] == 250
            code, msg = s.rcpt("nobody@dept.test")
            assert code == 550 and msg.startswith(b"5.1.1") and \
                b"unknown departmental address" in msg
            # SRS0 at srs_domain: a valid one, a bad hash, a malformed one
            assert s.rcpt(srs0("jane@origin.test"))[0] == 250
            bad = "SRS0=AAAA=" + srs0("jane@origin.test").split("=", 2)[2]
            code, msg = s.rcpt(bad)
            assert code == 550 and msg.startswith(b"5.1.1") and \
                b"invalid SRS address" in msg, msg
            code, msg = s.rcpt("SRS0=garbage@srs.test")
            assert code == 550 and b"invalid SRS address" in msg
            # the accepted ones go through: bob gets the departmental
            # mail, the SRS bounce-path mail goes back to origin.test
            code, _ = s.data(MSG)
            assert code == 250
        q.sink.wait_for(
            lambda: len(q.sink.delivered_to("bob@localhost")) == 2)
        origin.wait_for(
            lambda: len(origin.delivered_to("jane@origin.test")) == 1)
    finally:
        q.sink.stop()
        remote.stop()
        origin.stop()
