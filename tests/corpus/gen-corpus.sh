#!/usr/bin/env bash
# gen-corpus.sh - build the inbound S/MIME test corpus with independent tools.
#
# Usage: tests/corpus/gen-corpus.sh OUTDIR PKI
#
#   PKI     the directory written by tests/pki/gen-pki.sh (certificates,
#           keys, .p12 files)
#   OUTDIR  receives one .eml per case and manifest.txt
#
# Every signed message is made by a tool that is not Segel: the OpenSSL
# CLI (`openssl cms`, its own S/MIME output and DER wrapped here), GnuPG's
# gpgsm, and NSS's cmsutil (Debian package libnss3-tools).  Segel's own
# signer is covered by the unit test, in process.
#
# manifest.txt has one line per message:
#
#   FILE STATUS FROM_MATCH NOTE...
#
#   STATUS      what smime/verify.c must say: NONE PASS FAIL MALFORMED ENCRYPTED
#   FROM_MATCH  1 when a verified signer's address is the From address
#   NOTE        key=value tokens, then free text:
#                 tool=openssl|gpgsm|nss|script
#                 signer=ADDR     the signer the core reports (PASS rows), or -
#                 caps=yes|no|-   SMIMECapabilities present in the signature
#                 keystore=TOKEN  what keystore_validate / revocation should
#                                 say about that signer at 2026-06-01 (the
#                                 keystore_refusal_token names), or -
#
# Messages have CRLF line ends, as a milter receives them (one case keeps
# LF on purpose).  Header dates and Message-IDs are fixed; the signatures
# are made afresh on every run (signingTime is now), so the files differ
# between runs but the manifest does not.  Takes a few seconds.
#
# The tools' private state (a GNUPGHOME with its gpg-agent, an NSS
# database) lives in a temporary directory that is removed on exit.

set -euo pipefail

if [[ $# -ne 2 || -z "$1" || -z "$2" ]]; then
    echo "usage: $0 OUTDIR PKI" >&2
    exit 2
fi

mkdir -p "$1"
OUT=$(cd "$1" && pwd)
PKI=$(cd "$2" && pwd)
[[ -f $PKI/ca.pem && -f $PKI/alice.p12 ]] || {
    echo "corpus: $PKI is not a test PKI (run tests/pki/gen-pki.sh)" >&2
    exit 1
}

for tool in openssl gpgsm gpgconf cmsutil certutil pk12util perl; do
    command -v "$tool" >/dev/null || {
        case $tool in
            cmsutil | certutil | pk12util) pkg=libnss3-tools ;;
            gpgsm | gpgconf) pkg=gpgsm ;;
            *) pkg=$tool ;;
        esac
        echo "corpus: $tool not found (apt-get install $pkg)" >&2
        exit 1
    }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/segel-corpus.XXXXXX")
export GNUPGHOME=$WORK/gnupg
cleanup() {
    gpgconf --kill gpg-agent >/dev/null 2>&1 || true
    rm -rf -- "$WORK"
}
trap cleanup EXIT
LOG=$WORK/log
: >"$LOG"
MANIFEST=$WORK/manifest.txt
: >"$MANIFEST"
rm -f -- "$OUT"/*.eml "$OUT/manifest.txt"

run() {
    if ! "$@" >>"$LOG" 2>&1; then
        echo "corpus: command failed: $*" >&2
        tail -n 30 "$LOG" >&2
        exit 1
    fi
}

# ---------------------------------------------------------------------------
# Helpers

# crlf FILE: every line end becomes CRLF (in place).
crlf() { perl -pi -e 's/\r?\n/\r\n/' "$1"; }

# b64 FILE: base64, 64 columns, LF (made CRLF by crlf later).
b64() { openssl base64 -e -in "$1"; }

# add FILE STATUS FROM_MATCH NOTE...: one manifest line.
add() {
    local f=$1 st=$2 fm=$3
    shift 3
    [[ -s $OUT/$f ]] || { echo "corpus: $f was not written" >&2; exit 1; }
    printf '%s %s %s %s\n' "$f" "$st" "$fm" "$*" >>"$MANIFEST"
}

# hdrs NAME FROM SUBJECT: the fixed outer header fields.
hdrs() {
    printf 'From: %s\n' "$2"
    printf 'To: Kantor Walikota <surat@kota.go.id>\n'
    printf 'Subject: %s\n' "$3"
    printf 'Date: Mon, 01 Jun 2026 08:00:00 +0700\n'
    printf 'Message-ID: <%s@corpus.segel.invalid>\n' "$1"
    printf 'MIME-Version: 1.0\n'
}

# wrap_detached NAME FROM CONTENT SIGDER [PROTOCOL [SIGTYPE]]: a
# multipart/signed message around the exact bytes of CONTENT (which ends in
# CRLF) and the DER signature SIGDER.  PROTOCOL "-" omits the parameter.
wrap_detached() {
    local name=$1 from=$2 content=$3 sig=$4
    local proto=${5:-application/pkcs7-signature} sigtype=${6:-application/pkcs7-signature}
    local b="----=_corpus_${name%.eml}" f=$OUT/$1 pp=""
    [[ $proto == - ]] || pp="protocol=\"$proto\"; "
    {
        hdrs "$name" "$from" "Signed ($name)"
        printf 'Content-Type: multipart/signed; %smicalg=sha-256;\n\tboundary="%s"\n\n' \
            "$pp" "$b"
        printf 'This is an S/MIME signed message.\n\n--%s\n' "$b"
    } >"$f.head"
    {
        printf '\n--%s\n' "$b"
        printf 'Content-Type: %s; name="smime.p7s"\n' "$sigtype"
        printf 'Content-Transfer-Encoding: base64\n'
        printf 'Content-Disposition: attachment; filename="smime.p7s"\n\n'
        b64 "$sig"
        printf '\n--%s--\n' "$b"
    } >"$f.tail"
    crlf "$f.head"
    crlf "$f.tail"
    cat "$f.head" "$content" "$f.tail" >"$f"
    rm -f -- "$f.head" "$f.tail"
}

# wrap_opaque NAME FROM DER [SMIME-TYPE]: application/pkcs7-mime; an
# empty SMIME-TYPE omits the parameter.
wrap_opaque() {
    local name=$1 from=$2 der=$3 st=${4-signed-data} f=$OUT/$1 sp=""
    [[ -z $st ]] || sp="; smime-type=$st"
    {
        hdrs "$name" "$from" "Opaque ($name)"
        printf 'Content-Type: application/pkcs7-mime%s; name="smime.p7m"\n' "$sp"
        printf 'Content-Transfer-Encoding: base64\n'
        printf 'Content-Disposition: attachment; filename="smime.p7m"\n\n'
        b64 "$der"
    } >"$f"
    crlf "$f"
}

# ossl_mail NAME FROM -- openssl cms args: openssl's own S/MIME output with
# our header fields in front (openssl writes MIME-Version itself).
ossl_mail() {
    local name=$1 from=$2
    shift 3
    run openssl cms -out "$WORK/$name.raw" "$@"
    {
        hdrs "$name" "$from" "OpenSSL ($name)" | grep -v '^MIME-Version'
        cat "$WORK/$name.raw"
    } >"$OUT/$name"
    crlf "$OUT/$name"
}

# sa WHO: sets SA to the signer options for openssl cms (with the issuing CA).
sa() {
    local ca=$PKI/sub-ca.pem
    [[ $1 == untrusted ]] && ca=$PKI/other-ca.pem
    SA=(-signer "$PKI/$1.pem" -inkey "$PKI/$1.key" -certfile "$ca")
}

# ---------------------------------------------------------------------------
# Contents (canonical CRLF MIME entities)

TEXT=$WORK/text.ent
{
    printf 'Content-Type: text/plain; charset=us-ascii\n'
    printf 'Content-Transfer-Encoding: 7bit\n\n'
    printf 'Kepada Yth. Bapak/Ibu,\n\n'
    printf 'Surat resmi dari Balai Kota tentang anggaran 2026.\n'
    printf 'AMOUNT: 100\n'
    printf -- '-- \nSekretariat Daerah\n'
} >"$TEXT"
crlf "$TEXT"

TAMPERED=$WORK/tampered.ent
perl -pe 's/AMOUNT: 100/AMOUNT: 900/' "$TEXT" >"$TAMPERED"

MULTI=$WORK/multi.ent
head -c 3000 /dev/zero | tr '\0' 'S' >"$WORK/attach.bin"
{
    printf 'Content-Type: multipart/mixed; boundary="inner-mixed"\n\n'
    printf -- '--inner-mixed\nContent-Type: text/plain; charset=utf-8\n'
    printf 'Content-Transfer-Encoding: quoted-printable\n\n'
    printf 'Lampiran terlampir. AMOUNT: 100\n'
    printf -- '--inner-mixed\nContent-Type: application/octet-stream; name="data.bin"\n'
    printf 'Content-Transfer-Encoding: base64\n'
    printf 'Content-Disposition: attachment; filename="data.bin"\n\n'
    b64 "$WORK/attach.bin"
    printf -- '--inner-mixed--\n'
} >"$MULTI"
crlf "$MULTI"

ALICE="Alice Lestari <alice@kota.go.id>"
BOB="Bob Santoso <bob@dinas.kota.go.id>"
DAVE="Dave Pratama <dave@kota.go.id>"
WALIKOTA="Wali Kota <walikota@kota.go.id>"

# ---------------------------------------------------------------------------
# OpenSSL: its own S/MIME output (detached and opaque)

sa alice
ossl_mail ossl-rsa-detached.eml "$ALICE" -- -sign "${SA[@]}" -in "$TEXT"
add ossl-rsa-detached.eml PASS 1 tool=openssl signer=alice@kota.go.id caps=yes \
    keystore=ok RSA detached, openssl S/MIME output
sa bob
ossl_mail ossl-ec-detached.eml "$BOB" -- -sign "${SA[@]}" -in "$TEXT"
add ossl-ec-detached.eml PASS 1 tool=openssl signer=bob@dinas.kota.go.id caps=yes \
    keystore=ok ECDSA P-256 detached
sa alice
ossl_mail ossl-rsa-opaque.eml "$ALICE" -- -sign -nodetach "${SA[@]}" -in "$TEXT"
add ossl-rsa-opaque.eml PASS 1 tool=openssl signer=alice@kota.go.id caps=yes \
    keystore=ok RSA opaque signed-data
sa bob
ossl_mail ossl-ec-opaque.eml "$BOB" -- -sign -nodetach "${SA[@]}" -in "$TEXT"
add ossl-ec-opaque.eml PASS 1 tool=openssl signer=bob@dinas.kota.go.id caps=yes \
    keystore=ok ECDSA opaque signed-data
sa alice
ossl_mail ossl-rsa-pss.eml "$ALICE" -- -sign "${SA[@]}" -md sha384 \
    -keyopt rsa_padding_mode:pss -in "$TEXT"
add ossl-rsa-pss.eml PASS 1 tool=openssl signer=alice@kota.go.id caps=yes \
    keystore=ok RSASSA-PSS with SHA-384
sa dave
ossl_mail ossl-sha512-multipart.eml "$DAVE" -- -sign "${SA[@]}" -md sha512 \
    -in "$MULTI"
add ossl-sha512-multipart.eml PASS 1 tool=openssl signer=dave@kota.go.id caps=yes \
    keystore=ok multipart/mixed content with a base64 attachment, SHA-512
sa walikota
ossl_mail ossl-walikota.eml "$WALIKOTA" -- -sign "${SA[@]}" -in "$TEXT"
add ossl-walikota.eml PASS 1 tool=openssl signer=walikota@kota.go.id caps=yes \
    keystore=ok the mayor, validly signed
sa alice
ossl_mail ossl-nocaps.eml "$ALICE" -- -sign -nosmimecap "${SA[@]}" -in "$TEXT"
add ossl-nocaps.eml PASS 1 tool=openssl signer=alice@kota.go.id caps=no \
    keystore=ok no SMIMECapabilities attribute
ossl_mail ossl-two-signers.eml "$ALICE" -- -sign -signer "$PKI/bob.pem" \
    -inkey "$PKI/bob.key" -signer "$PKI/alice.pem" -inkey "$PKI/alice.key" \
    -certfile "$PKI/sub-ca.pem" -in "$TEXT"
add ossl-two-signers.eml PASS 1 tool=openssl signer=alice@kota.go.id caps=yes \
    keystore=ok two SignerInfos, bob first: alice is the one From names
# the same message as stored by a Unix MUA: LF line ends everywhere
perl -pe 's/\r\n/\n/' "$OUT/ossl-rsa-detached.eml" >"$OUT/ossl-lf-detached.eml"
add ossl-lf-detached.eml PASS 1 tool=openssl signer=alice@kota.go.id caps=yes \
    keystore=ok LF line ends, verified in canonical CRLF form
# the legacy x- types of RFC 2311 era clients
perl -pe 's{application/pkcs7-signature}{application/x-pkcs7-signature}g' \
    "$OUT/ossl-rsa-detached.eml" >"$OUT/ossl-x-pkcs7.eml"
add ossl-x-pkcs7.eml PASS 1 tool=openssl signer=alice@kota.go.id caps=yes \
    keystore=ok application/x-pkcs7-signature protocol and part

# Certificates that the keystore refuses; the signatures are fine.
for who in expired notyet revoked untrusted serveronly rsa1024; do
    case $who in
        expired) ks=expired ;;
        notyet) ks=not-yet-valid ;;
        revoked) ks=revoked ;;
        untrusted) ks=untrusted-root ;;
        serveronly) ks=eku ;;
        rsa1024) ks=weak-key ;;
    esac
    sa $who
    ossl_mail "cert-$who.eml" "$who@kota.go.id" -- -sign "${SA[@]}" -in "$TEXT"
    add "cert-$who.eml" PASS 1 tool=openssl "signer=$who@kota.go.id" caps=yes \
        "keystore=$ks" signature valid, certificate refused by the keystore
done
sa nosan
ossl_mail cert-nosan.eml "nosan@kota.go.id" -- -sign "${SA[@]}" -in "$TEXT"
add cert-nosan.eml PASS 0 tool=openssl signer=- caps=yes \
    keystore=address-not-in-certificate no subjectAltName: address only in the DN

# Signed by bob, From alice: a valid signature that is not the sender's.
sa bob
ossl_mail mismatch.eml "$ALICE" -- -sign "${SA[@]}" -in "$TEXT"
add mismatch.eml PASS 0 tool=openssl signer=bob@dinas.kota.go.id caps=yes \
    keystore=address-not-in-certificate signer bob, From alice
ossl_mail mismatch-walikota.eml "$WALIKOTA" -- -sign "${SA[@]}" -in "$TEXT"
add mismatch-walikota.eml PASS 0 tool=openssl signer=bob@dinas.kota.go.id caps=yes \
    keystore=address-not-in-certificate forged mayor: signer bob, From walikota

# ---------------------------------------------------------------------------
# OpenSSL DER, wrapped here: tampering, nesting, malformed structures

sa alice
run openssl cms -sign -binary "${SA[@]}" -in "$TEXT" -outform DER \
    -out "$WORK/alice.p7s"
run openssl cms -sign -binary -nodetach "${SA[@]}" -in "$TEXT" -outform DER \
    -out "$WORK/alice.p7m"

wrap_detached tampered-content.eml "$ALICE" "$TAMPERED" "$WORK/alice.p7s"
add tampered-content.eml FAIL 0 tool=openssl signer=- caps=- keystore=- \
    one byte of the signed text changed after signing
perl -0777 -pe 's/AMOUNT: 100/AMOUNT: 900/' "$WORK/alice.p7m" >"$WORK/tampered.p7m"
wrap_opaque tampered-opaque.eml "$ALICE" "$WORK/tampered.p7m"
add tampered-opaque.eml FAIL 0 tool=openssl signer=- caps=- keystore=- \
    one byte of the encapsulated content changed
perl -0777 -pe 's/(.)\z/chr(ord($1) ^ 1)/se' "$WORK/alice.p7s" >"$WORK/badsig.p7s"
wrap_detached tampered-signature.eml "$ALICE" "$TEXT" "$WORK/badsig.p7s"
add tampered-signature.eml FAIL 0 tool=openssl signer=- caps=- keystore=- \
    last byte of the RSA signature value flipped
wrap_detached wrapped-detached.eml "$ALICE" "$TEXT" "$WORK/alice.p7s"
add wrapped-detached.eml PASS 1 tool=openssl signer=alice@kota.go.id caps=yes \
    keystore=ok openssl DER in our multipart/signed
sa alice
run openssl cms -sign -binary -nocerts "${SA[@]}" -in "$TEXT" -outform DER \
    -out "$WORK/nocerts.p7s"
wrap_detached nocerts.eml "$ALICE" "$TEXT" "$WORK/nocerts.p7s"
add nocerts.eml MALFORMED 0 tool=openssl signer=- caps=- keystore=- \
    the signer certificate is not carried

# Nesting: alice signs (detached), dave signs that entity again (opaque).
sa alice
run openssl cms -sign "${SA[@]}" -in "$TEXT" -out "$WORK/inner.ent"
crlf "$WORK/inner.ent"
sa dave
run openssl cms -sign -binary -nodetach "${SA[@]}" -in "$WORK/inner.ent" \
    -outform DER -out "$WORK/outer.p7m"
wrap_opaque nested-opaque-detached.eml "$ALICE" "$WORK/outer.p7m"
add nested-opaque-detached.eml PASS 1 tool=openssl signer=alice@kota.go.id caps=yes \
    keystore=ok dave opaque around alice detached: alice matches From
sa walikota
run openssl cms -sign -binary "${SA[@]}" -in "$WORK/inner.ent" \
    -outform DER -out "$WORK/outer.p7s"
wrap_detached nested-detached-detached.eml "$WALIKOTA" "$WORK/inner.ent" \
    "$WORK/outer.p7s"
add nested-detached-detached.eml PASS 1 tool=openssl signer=walikota@kota.go.id \
    caps=yes keystore=ok walikota detached around alice detached
# the inner signature is broken before the outer one is made
perl -pe 's/AMOUNT: 100/AMOUNT: 900/' "$WORK/inner.ent" >"$WORK/inner-bad.ent"
sa dave
run openssl cms -sign -binary -nodetach "${SA[@]}" -in "$WORK/inner-bad.ent" \
    -outform DER -out "$WORK/outer-bad.p7m"
wrap_opaque nested-inner-tampered.eml "$ALICE" "$WORK/outer-bad.p7m"
add nested-inner-tampered.eml FAIL 0 tool=openssl signer=- caps=- keystore=- \
    "outer signature by dave valid, inner by alice over altered content"
# signed, then encrypted inside: the outer signature verifies
run openssl cms -encrypt -aes256 -in "$TEXT" -out "$WORK/enc.ent" "$PKI/alice.pem"
crlf "$WORK/enc.ent"
sa alice
run openssl cms -sign -binary "${SA[@]}" -in "$WORK/enc.ent" -outform DER \
    -out "$WORK/enc-outer.p7s"
wrap_detached signed-encrypted.eml "$ALICE" "$WORK/enc.ent" "$WORK/enc-outer.p7s"
add signed-encrypted.eml ENCRYPTED 1 tool=openssl signer=alice@kota.go.id caps=yes \
    keystore=ok outer signature valid around enveloped-data
# five opaque layers: deeper than the default limit (4)
cp "$TEXT" "$WORK/deep.ent"
sa alice
for _ in 1 2 3 4 5; do
    run openssl cms -sign -binary -nodetach "${SA[@]}" -in "$WORK/deep.ent" \
        -out "$WORK/deep.next"
    crlf "$WORK/deep.next"
    mv "$WORK/deep.next" "$WORK/deep.ent"
done
{ hdrs too-deep.eml "$ALICE" "Five layers" | grep -v '^MIME-Version'; } >"$OUT/too-deep.eml"
crlf "$OUT/too-deep.eml"
cat "$WORK/deep.ent" >>"$OUT/too-deep.eml"
add too-deep.eml MALFORMED 0 tool=openssl signer=- caps=- keystore=- \
    five nested signed-data layers, limit 4

# Malformed structures, around a valid signature of alice where one is needed.
b=$WORK/alice.b64
b64 "$WORK/alice.p7s" >"$b"
MB=----=_corpus_malformed
MS="multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"$MB\""
echo 'This is not a CMS structure at all.' >"$WORK/garbage"
b64 "$WORK/garbage" >"$WORK/garbage.b64"
b64 "$WORK/alice.p7m" >"$WORK/alice-m.b64"

mal() { # NAME CONTENT-TYPE BODY-WRITER...: header fields, then the body
    local name=$1 ctype=$2
    shift 2
    {
        hdrs "$name" "$ALICE" "Malformed ($name)"
        printf 'Content-Type: %s\n\n' "$ctype"
        "$@"
    } >"$OUT/$name"
    crlf "$OUT/$name"
}
delim() { printf -- '--%s%s\n' "$MB" "${1-}"; }
textpart() { delim; cat "$TEXT"; }
sigpart() { # [BASE64-FILE]
    delim
    printf 'Content-Type: application/pkcs7-signature; name="smime.p7s"\n'
    printf 'Content-Transfer-Encoding: base64\n\n'
    cat "${1:-$b}"
}
body_normal() { textpart; sigpart; delim --; }
body_trunc() { textpart; sigpart /dev/null; head -c 301 "$b"; printf '\n'; delim --; }
body_garbage() { textpart; sigpart "$WORK/garbage.b64"; delim --; }
body_badchars() { textpart; sigpart | sed '6s/^..../*!*!/'; delim --; }
body_onepart() { textpart; delim --; }
body_threeparts() { textpart; sigpart; delim; printf 'Content-Type: text/plain\n\nextra\n'; delim --; }
body_noclose() { textpart; sigpart; }
body_wrongtype() {
    textpart
    delim
    printf 'Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n'
    cat "$b"
    delim --
}
body_embedded() { textpart; sigpart "$WORK/alice-m.b64"; delim --; }

mal malformed-truncated-sig.eml "$MS" body_trunc
add malformed-truncated-sig.eml MALFORMED 0 tool=script signer=- caps=- keystore=- \
    base64 signature cut after 301 characters
mal malformed-garbage-cms.eml "$MS" body_garbage
add malformed-garbage-cms.eml MALFORMED 0 tool=script signer=- caps=- keystore=- \
    signature part holds text, not DER
mal malformed-bad-base64.eml "$MS" body_badchars
add malformed-bad-base64.eml MALFORMED 0 tool=script signer=- caps=- keystore=- \
    characters outside the base64 alphabet
mal malformed-one-part.eml "$MS" body_onepart
add malformed-one-part.eml MALFORMED 0 tool=script signer=- caps=- keystore=- \
    multipart/signed with only the content part
mal malformed-three-parts.eml "$MS" body_threeparts
add malformed-three-parts.eml MALFORMED 0 tool=script signer=- caps=- keystore=- \
    multipart/signed with a third part
mal malformed-no-close.eml "$MS" body_noclose
add malformed-no-close.eml MALFORMED 0 tool=script signer=- caps=- keystore=- \
    no closing boundary
mal malformed-no-protocol.eml "multipart/signed; micalg=sha-256; boundary=\"$MB\"" body_normal
add malformed-no-protocol.eml MALFORMED 0 tool=script signer=- caps=- keystore=- \
    multipart/signed without the protocol parameter
mal malformed-wrong-protocol.eml \
    "multipart/signed; protocol=\"application/pgp-signature\"; boundary=\"$MB\"" body_normal
add malformed-wrong-protocol.eml MALFORMED 0 tool=script signer=- caps=- keystore=- \
    protocol is not S/MIME
mal malformed-sig-type.eml "$MS" body_wrongtype
add malformed-sig-type.eml MALFORMED 0 tool=script signer=- caps=- keystore=- \
    second part is text/plain, not pkcs7-signature
mal malformed-embedded-content.eml "$MS" body_embedded
add malformed-embedded-content.eml MALFORMED 0 tool=script signer=- caps=- keystore=- \
    detached part carries signed-data with encapsulated content
printf 'GARBAGE' >"$WORK/garbage.der"
wrap_opaque malformed-opaque-garbage.eml "$ALICE" "$WORK/garbage.der"
add malformed-opaque-garbage.eml MALFORMED 0 tool=script signer=- caps=- keystore=- \
    pkcs7-mime signed-data that is not DER
run openssl crl2pkcs7 -nocrl -certfile "$PKI/alice.pem" -outform DER \
    -out "$WORK/certs-only.der"
wrap_opaque certs-only.eml "$ALICE" "$WORK/certs-only.der" certs-only
add certs-only.eml NONE 0 tool=openssl signer=- caps=- keystore=- \
    certs-only: certificates, no signature

# ---------------------------------------------------------------------------
# Encrypted (decryption is not the verifier's business) and plain

ossl_mail ossl-encrypted.eml "$ALICE" -- -encrypt -aes256 -in "$TEXT" "$PKI/alice.pem"
add ossl-encrypted.eml ENCRYPTED 0 tool=openssl signer=- caps=- keystore=- \
    enveloped-data AES-256-CBC to alice
ossl_mail ossl-authenc.eml "$ALICE" -- -encrypt -aes-256-gcm -in "$TEXT" "$PKI/alice.pem"
add ossl-authenc.eml ENCRYPTED 0 tool=openssl signer=- caps=- keystore=- \
    authEnveloped-data AES-256-GCM to alice
{
    hdrs plain.eml "$WALIKOTA" "Unsigned mail from the mayor"
    cat "$TEXT"
} >"$OUT/plain.eml"
crlf "$OUT/plain.eml"
add plain.eml NONE 0 tool=script signer=- caps=- keystore=- not S/MIME

# ---------------------------------------------------------------------------
# gpgsm (GnuPG).  gpgsm 2.2 cannot read the PBES2/AES PKCS#12 files that
# OpenSSL 3 writes, so the RSA identity is re-exported with 3DES first; it
# crashes importing EC keys from PKCS#12, so bob's key is handed to
# gpg-agent directly as an unprotected key file named by its keygrip.

mkdir -m 0700 "$GNUPGHOME"
cat >"$GNUPGHOME/gpgsm.conf" <<EOF
disable-crl-checks
disable-trusted-cert-crl-check
disable-policy-checks
disable-dirmngr
EOF
printf 'allow-loopback-pinentry\n' >"$GNUPGHOME/gpg-agent.conf"
fpr=$(openssl x509 -in "$PKI/ca.pem" -noout -fingerprint -sha1 | sed 's/.*=//')
printf '%s S relax\n' "$fpr" >"$GNUPGHOME/trustlist.txt"
GPGSM=(gpgsm --batch --pinentry-mode loopback --passphrase-fd 0)

run openssl pkcs12 -export -inkey "$PKI/alice.key" -in "$PKI/alice.pem" \
    -certfile "$PKI/chain.pem" -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES \
    -macalg sha1 -passout pass:corpus -out "$WORK/alice-3des.p12"
echo corpus | run "${GPGSM[@]}" --import "$WORK/alice-3des.p12"

run gpgsm --batch --import "$PKI/bob.pem"
grip=$(gpgsm --with-keygrip --list-keys bob@dinas.kota.go.id | awk '/keygrip:/ {print $2}')
keyhex() { # FIELD: a field of `openssl pkey -text` as upper-case hex
    openssl pkey -in "$PKI/bob.key" -noout -text |
        awk -v s="$1" '$0 ~ "^"s":" {f=1; next} /^[A-Za-z]/ {f=0} f' |
        tr -d ' :\n' | tr a-f A-F
}
mkdir -p "$GNUPGHOME/private-keys-v1.d" # made 0700 by gpg-agent on the import
printf 'Key: (private-key (ecc (curve "NIST P-256") (q #%s#) (d #%s#)))\n' \
    "$(keyhex pub)" "$(keyhex priv)" >"$GNUPGHOME/private-keys-v1.d/$grip.key"

gsign() { # ADDR MODE(--detach-sign|--sign) IN OUT
    echo corpus | run "${GPGSM[@]}" -u "$1" "$2" -o "$4" "$3"
}
gsign alice@kota.go.id --detach-sign "$TEXT" "$WORK/g-alice.p7s"
wrap_detached gpgsm-rsa-detached.eml "$ALICE" "$TEXT" "$WORK/g-alice.p7s"
add gpgsm-rsa-detached.eml PASS 1 tool=gpgsm signer=alice@kota.go.id caps=yes \
    keystore=ok gpgsm --detach-sign, RSA
gsign alice@kota.go.id --sign "$TEXT" "$WORK/g-alice.p7m"
wrap_opaque gpgsm-rsa-opaque.eml "$ALICE" "$WORK/g-alice.p7m"
add gpgsm-rsa-opaque.eml PASS 1 tool=gpgsm signer=alice@kota.go.id caps=yes \
    keystore=ok gpgsm --sign, RSA, BER indefinite lengths
gsign bob@dinas.kota.go.id --detach-sign "$TEXT" "$WORK/g-bob.p7s"
wrap_detached gpgsm-ec-detached.eml "$BOB" "$TEXT" "$WORK/g-bob.p7s"
add gpgsm-ec-detached.eml PASS 1 tool=gpgsm signer=bob@dinas.kota.go.id caps=yes \
    keystore=ok gpgsm --detach-sign, ECDSA P-256
gsign bob@dinas.kota.go.id --sign "$TEXT" "$WORK/g-bob.p7m"
wrap_opaque gpgsm-ec-opaque.eml "$BOB" "$WORK/g-bob.p7m"
add gpgsm-ec-opaque.eml PASS 1 tool=gpgsm signer=bob@dinas.kota.go.id caps=yes \
    keystore=ok gpgsm --sign, ECDSA P-256
wrap_detached gpgsm-tampered.eml "$ALICE" "$TAMPERED" "$WORK/g-alice.p7s"
add gpgsm-tampered.eml FAIL 0 tool=gpgsm signer=- caps=- keystore=- \
    gpgsm signature over text changed afterwards
run gpgsm --batch --import "$PKI/alice.pem"
echo corpus | run "${GPGSM[@]}" -r alice@kota.go.id --encrypt -o "$WORK/g-enc.p7m" "$TEXT"
wrap_opaque gpgsm-encrypted.eml "$ALICE" "$WORK/g-enc.p7m" enveloped-data
add gpgsm-encrypted.eml ENCRYPTED 0 tool=gpgsm signer=- caps=- keystore=- \
    gpgsm --encrypt to alice
gpgconf --kill gpg-agent >/dev/null 2>&1 || true

# ---------------------------------------------------------------------------
# NSS cmsutil (libnss3-tools)

NSSDB=sql:$WORK/nss
mkdir "$WORK/nss"
run certutil -N -d "$NSSDB" --empty-password
run pk12util -i "$PKI/alice.p12" -d "$NSSDB" -w "$PKI/alice.pass"
run pk12util -i "$PKI/bob.p12" -d "$NSSDB" -w "$PKI/bob.pass"
run certutil -A -d "$NSSDB" -n "Demo Root CA" -t C,C,C -i "$PKI/ca.pem"

nsign() { # NICK EXTRA-FLAG IN OUT
    if [[ -n $2 ]]; then
        run cmsutil -S -N "$1" -G -P "$2" -d "$NSSDB" -i "$3" -o "$4"
    else
        run cmsutil -S -N "$1" -G -P -d "$NSSDB" -i "$3" -o "$4"
    fi
}
nsign "Alice Lestari" -T "$TEXT" "$WORK/n-alice.p7s"
wrap_detached nss-rsa-detached.eml "$ALICE" "$TEXT" "$WORK/n-alice.p7s"
add nss-rsa-detached.eml PASS 1 tool=nss signer=alice@kota.go.id caps=yes \
    keystore=ok cmsutil -S -T, RSA
nsign "Alice Lestari" "" "$TEXT" "$WORK/n-alice.p7m"
wrap_opaque nss-rsa-opaque.eml "$ALICE" "$WORK/n-alice.p7m"
add nss-rsa-opaque.eml PASS 1 tool=nss signer=alice@kota.go.id caps=yes \
    keystore=ok cmsutil -S, RSA
nsign "Bob Santoso" -T "$TEXT" "$WORK/n-bob.p7s"
wrap_detached nss-ec-detached.eml "$BOB" "$TEXT" "$WORK/n-bob.p7s"
add nss-ec-detached.eml PASS 1 tool=nss signer=bob@dinas.kota.go.id caps=yes \
    keystore=ok cmsutil -S -T, ECDSA P-256
nsign "Bob Santoso" "" "$MULTI" "$WORK/n-bob.p7m"
wrap_opaque nss-ec-opaque.eml "$BOB" "$WORK/n-bob.p7m"
add nss-ec-opaque.eml PASS 1 tool=nss signer=bob@dinas.kota.go.id caps=yes \
    keystore=ok cmsutil -S, ECDSA P-256, multipart content
wrap_detached nss-tampered.eml "$ALICE" "$TAMPERED" "$WORK/n-alice.p7s"
add nss-tampered.eml FAIL 0 tool=nss signer=- caps=- keystore=- \
    NSS signature over text changed afterwards
run cmsutil -E -r alice@kota.go.id -d "$NSSDB" -i "$TEXT" -o "$WORK/n-enc.p7m"
wrap_opaque nss-encrypted.eml "$ALICE" "$WORK/n-enc.p7m" ""
add nss-encrypted.eml ENCRYPTED 0 tool=nss signer=- caps=- keystore=- \
    cmsutil -E, no smime-type parameter: recognised from the CMS type

sort "$MANIFEST" >"$OUT/manifest.txt"
echo "corpus: wrote $(wc -l <"$OUT/manifest.txt") messages to $1"
