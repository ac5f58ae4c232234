#!/usr/bin/env python3
"""smtpload.py HOST PORT COUNT CONNECTIONS FROM TO TOKEN-PREFIX OUT.tsv

Sends COUNT messages over CONNECTIONS parallel SMTP sessions, each with a
unique token in its Subject and Message-ID.  A message that gets a
temporary failure (4xx, or a dropped connection before the final reply) is
retried, as a real client would, until it is accepted or 10 minutes pass.
Writes one line per message to OUT.tsv: token, attempts, final status
(accepted / rejected / gave-up).  Exit 0 when every message was accepted.
"""
import smtplib, socket, sys, threading, time, queue, random

host, port, count, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sender, rcpt, prefix, out = sys.argv[5], sys.argv[6], sys.argv[7], sys.argv[8]
body = ("Surat dinas nomor {n}: pemberitahuan rapat koordinasi.\r\n" * 60)

todo = queue.Queue()
for i in range(count):
    todo.put(i)
results = {}
lock = threading.Lock()
deadline = time.time() + 600


def message(i):
    tok = f"{prefix}-{i:05d}"
    return tok, (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {tok}\r\n"
                 f"Message-ID: <{tok}@stress.segel.test>\r\n"
                 f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
                 f"\r\n" + body.format(n=i))


def worker():
    s = None
    while time.time() < deadline:
        try:
            i = todo.get_nowait()
        except queue.Empty:
            break
        tok, msg = message(i)
        attempts = 0
        status = "gave-up"
        while time.time() < deadline:
            attempts += 1
            try:
                if s is None:
                    s = smtplib.SMTP(host, port, timeout=120)
                    s.ehlo("stress.segel.test")
                s.sendmail(sender, [rcpt], msg.encode())
                status = "accepted"
                break
            except smtplib.SMTPResponseException as e:
                code = e.smtp_code
            except smtplib.SMTPRecipientsRefused as e:
                code = list(e.recipients.values())[0][0]
            except (smtplib.SMTPException, OSError):
                code = 421  # connection lost: try again
            try:
                if s is not None:
                    s.close()
            except Exception:
                pass
            s = None
            if 500 <= code < 600:
                status = "rejected"
                break
            time.sleep(0.2 + random.random() * 0.5)
        with lock:
            results[tok] = (attempts, status)
    if s is not None:
        try:
            s.quit()
        except Exception:
            pass


threads = [threading.Thread(target=worker) for _ in range(conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with open(out, "w") as f:
    for tok in sorted(results):
        a, st = results[tok]
        f.write(f"{tok}\t{a}\t{st}\n")
accepted = sum(1 for a, st in results.values() if st == "accepted")
retried = sum(1 for a, st in results.values() if a > 1)
print(f"smtpload: sent={count} accepted={accepted} retried={retried}")
sys.exit(0 if accepted == count else 1)
