#!/bin/bash
# Expiry (regulation R7): `cert expiring --days N` lists own and
# correspondents' certificates expiring within N days, and
# `cert notify-expiring` sends each owner (and the admin) a notice through
# sendmail(1) -- here a stand-in that records what it was given.
set -u
. "$(dirname "$0")/lib.sh"
cli_init expiry
# the demo certificates end on 2035-12-31: a horizon from now to then
days=$(( ($(date -d 2036-01-01 +%s) - $(date +%s)) / 86400 + 1 ))
short=$(( days - 30 ))

cat >"$W/sendmail" <<EOS
#!/bin/sh
# records argv and the message
{ echo "ARGS: \$*"; cat; echo "--END--"; } >>"$W/sent.txt"
EOS
chmod 755 "$W/sendmail"
"$CTL" init --dir "$W/c" --domain kota.go.id >/dev/null
C="$W/c/segel.conf"
printf 'expiry: { admin = "admin@kota.go.id"; from = "segel@kota.go.id"; sendmail = "%s"; };\n' \
	"$W/sendmail" >>"$C"
"$CTL" -c "$C" trust add "$PKI/ca.pem" >/dev/null
"$CTL" -c "$C" keystore import "$PKI/alice.p12" --passphrase-file "$PKI/alice.pass" >/dev/null
"$CTL" -c "$C" cert import "$PKI/carol.pem" >/dev/null

t "nothing expires within $short days" 0 "no certificate expires within" "$CTL" -c "$C" cert expiring --days "$short"
t "alice (own) expires within $days days" 0 "alice@kota.go.id" "$CTL" -c "$C" cert expiring --days "$days"
t "carol (correspondent) is listed too" 0 "carol@partner.example" "$CTL" -c "$C" cert expiring --days "$days"
t "--json has days_left" 0 '"days_left"' "$CTL" -c "$C" cert expiring --days "$days" --json
t "no notice outside the horizon" 0 "0 sent" "$CTL" -c "$C" cert notify-expiring --days "$short"
t "a notice for alice within the horizon" 0 "notice sent to alice@kota.go.id and admin@kota.go.id" "$CTL" -c "$C" cert notify-expiring --days "$days"
t "sendmail got alice and the admin as recipients" 0 "ARGS: -oi -f segel@kota.go.id -- alice@kota.go.id admin@kota.go.id" cat "$W/sent.txt"
t "the notice says when, in Indonesian" 0 "Sertifikat elektronik untuk alice@kota.go.id berakhir pada 2035-12-31" cat "$W/sent.txt"
t "only own certificates get notices (not carol)" 0 "^none$" sh -c "grep -q carol '$W/sent.txt' || echo none"

cli_done expiry
