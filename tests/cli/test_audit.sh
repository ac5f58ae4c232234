#!/bin/bash
# The keystore's audit log is a hash chain: `segelctl audit verify` must
# accept an intact log and detect an edited, a deleted and a reordered
# entry (regulation R9).  The database is tampered with sqlite3 directly.
set -u
. "$(dirname "$0")/lib.sh"
cli_init audit

fresh() { # dir: a store with several audited changes
	"$CTL" init --dir "$1" --domain kota.go.id >/dev/null
	"$CTL" -c "$1/segel.conf" trust add "$PKI/ca.pem" >/dev/null
	"$CTL" -c "$1/segel.conf" cert import "$PKI/sub-ca.pem" >/dev/null
	"$CTL" -c "$1/segel.conf" cert import "$PKI/carol.pem" >/dev/null
	"$CTL" -c "$1/segel.conf" keystore import "$PKI/alice.p12" --passphrase-file "$PKI/alice.pass" >/dev/null
	"$CTL" -c "$1/segel.conf" crl import "$PKI/sub-ca.crl.pem" >/dev/null
}
db() { sqlite3 "$1/data/keystore.db" "$2"; }

fresh "$W/ok"
t "an intact log verifies" 0 "intact: [0-9]* entries" "$CTL" -c "$W/ok/segel.conf" audit verify

fresh "$W/edit"
db "$W/edit" "UPDATE audit SET detail = replace(detail, 'Carol', 'Mallory') WHERE id = 3"
t "an edited entry is detected" 3 "entry 3 was altered" "$CTL" -c "$W/edit/segel.conf" audit verify

fresh "$W/del"
db "$W/del" "DELETE FROM audit WHERE id = 2"
t "a deleted entry is detected" 3 "an entry was deleted" "$CTL" -c "$W/del/segel.conf" audit verify

fresh "$W/swap"
db "$W/swap" "UPDATE audit SET id = -2 WHERE id = 2; UPDATE audit SET id = 2 WHERE id = 3; UPDATE audit SET id = 3 WHERE id = -2"
t "reordered entries are detected" 3 "does not link" "$CTL" -c "$W/swap/segel.conf" audit verify

fresh "$W/forge"
db "$W/forge" "UPDATE audit SET actor = 'nobody', hash = 'x' WHERE id = 1"
t "a re-hashed forgery breaks the next link" 3 "entry [12]" "$CTL" -c "$W/forge/segel.conf" audit verify

cli_done audit
