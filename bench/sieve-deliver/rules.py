# SPDX-License-Identifier: MIT
"""The benchmark's 50-rule Sieve script and its message mix (shared by run.sh
and driver.py). The script is what a busy user accumulates: list filing by
List-Id, sender rules, subject keywords, spam score, flags, a vacation-free
ending; most rules do not match a given message, as in real life."""

LISTS = ["dev", "announce", "users", "security", "jobs", "events", "sales",
         "support", "hr", "it", "research", "library", "sports", "music",
         "alumni"]
SENDERS = ["boss", "ceo", "hr-team", "payroll", "it-help", "mom", "dad",
           "bank", "airline", "doctor"]
KEYWORDS = ["invoice", "receipt", "meeting", "urgent", "newsletter", "sale",
            "webinar", "reminder", "password", "delivery"]


def script():
    r = ['require ["fileinto", "imap4flags", "mailbox", "envelope", '
         '"relational", "comparator-i;ascii-numeric", "regex"];', ""]
    # 15 list rules
    for l in LISTS:
        r.append(f'if header :contains "list-id" "<{l}.lists.example.org>" '
                 f'{{ fileinto :create "Lists/{l}"; stop; }}')
    # 10 sender rules
    for s in SENDERS:
        r.append(f'if address :is :localpart "from" "{s}" '
                 f'{{ addflag "\\\\Flagged"; fileinto :create "People/{s}"; stop; }}')
    # 10 subject keyword rules
    for k in KEYWORDS:
        r.append(f'if header :contains "subject" "{k}" '
                 f'{{ addflag "{k}"; fileinto :create "Topics/{k}"; stop; }}')
    # 5 spam / bulk rules
    r.append('if header :value "ge" :comparator "i;ascii-numeric" '
             '"x-spam-score" "10" { discard; stop; }')
    r.append('if header :value "ge" :comparator "i;ascii-numeric" '
             '"x-spam-score" "5" { fileinto :create "Junk"; stop; }')
    r.append('if header :is "precedence" ["bulk", "junk"] '
             '{ fileinto :create "Bulk"; stop; }')
    r.append('if exists "x-mailing-list" { fileinto :create "Lists/other"; stop; }')
    r.append('if header :regex "subject" "^\\\\[SPAM\\\\]" '
             '{ fileinto :create "Junk"; stop; }')
    # 5 envelope / domain rules
    for d in ["partner1.example.com", "partner2.example.com",
              "vendor.example.net", "school.example.edu", "gov.example"]:
        r.append(f'if envelope :domain :is "from" "{d}" '
                 f'{{ fileinto :create "Domains/{d}"; stop; }}')
    # 5 misc rules that rarely match
    r.append('if size :over 5M { fileinto :create "Large"; stop; }')
    r.append('if header :contains "to" "noreply@" { discard; stop; }')
    r.append('if allof (header :contains "subject" "report", '
             'address :domain :is "from" "example.org") '
             '{ fileinto :create "Reports"; stop; }')
    r.append('if anyof (header :contains "x-priority" "1", '
             'header :is "importance" "high") { addflag "\\\\Flagged"; }')
    r.append('if not exists "date" { fileinto :create "Suspicious"; stop; }')
    r.append("keep;")
    return "\r\n".join(r) + "\r\n"


def message(i, size):
    """Message i: a rotating mix that exercises list, sender, keyword,
    spam and fall-through (keep) paths."""
    kind = i % 5
    hdr = [f"From: sender{i % 97}@example.org", "To: user@localhost",
           f"Message-ID: <bench{i}@example.org>",
           "Date: Thu, 26 Nov 2026 10:00:00 +0000"]
    subject = f"message {i}"
    if kind == 0:
        hdr.append(f"List-Id: <{LISTS[i % len(LISTS)]}.lists.example.org>")
    elif kind == 1:
        hdr[0] = f"From: {SENDERS[i % len(SENDERS)]}@example.org"
    elif kind == 2:
        subject = f"your {KEYWORDS[i % len(KEYWORDS)]} {i}"
    elif kind == 3:
        hdr.append(f"X-Spam-Score: {i % 12}")
    hdr.append(f"Subject: {subject}")
    head = "\r\n".join(hdr) + "\r\n\r\n"
    line = "The quick brown fox jumps over the lazy dog. 0123456789\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return (head + body).encode()
