#!/usr/bin/env bash
# gen-pki.sh - generate the Segel test/demo PKI.
#
# Usage: tests/pki/gen-pki.sh OUTDIR
#
# Builds a small, self-contained S/MIME PKI with fixed certificate
# validity dates (keys are generated fresh on every run):
#
#   Demo Root CA (ca.pem)  ->  Demo Email CA (sub-ca.pem)  ->  end entities
#   Other Root CA (other-ca.pem)  ->  untrusted
#
# Everything is done with the openssl CLI.  `openssl ca` with a
# throw-away CA database is used for all issuing, because it is the only
# OpenSSL 3.0 tool that accepts explicit notBefore/notAfter dates.
#
# Idempotent: if OUTDIR/ca.pem and OUTDIR/.complete exist, nothing is
# done.  .complete is written last.
#
# NOT FOR PRODUCTION USE: all names are fictitious demo names and the
# private keys are written unencrypted.

set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

OUTARG=$1
if [[ -f "$OUTARG/ca.pem" && -f "$OUTARG/.complete" ]]; then
    exit 0
fi

mkdir -p "$OUTARG"
OUT=$(cd "$OUTARG" && pwd)

OPENSSL=${OPENSSL:-openssl}

# Fixed validity windows.
VALID_FROM=20250101000000Z
VALID_TO=20351231235959Z
EXPIRED_FROM=20200101000000Z
EXPIRED_TO=20211231235959Z
NOTYET_FROM=20400101000000Z
NOTYET_TO=20451231235959Z

CRL_URI=http://127.0.0.1:18080/sub-ca.crl
OCSP_URI=http://127.0.0.1:18081

DN_PREFIX="/C=ID/O=Segel Demo"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/segel-pki.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT
LOG=$WORK/log
: >"$LOG"
STAGE=$WORK/out
mkdir -p "$STAGE"

# Run a command, capturing its output; on failure show the tail of the log.
run() {
    if ! "$@" >>"$LOG" 2>&1; then
        echo "pki: command failed: $*" >&2
        tail -n 40 "$LOG" >&2
        exit 1
    fi
}

# ---------------------------------------------------------------------------
# Key generation (PKCS#8 PEM, unencrypted, mode 0600)

genkey_rsa() { # FILE BITS
    (umask 077 && run "$OPENSSL" genpkey -algorithm RSA \
        -pkeyopt "rsa_keygen_bits:$2" -out "$1")
    chmod 0600 "$1"
}

genkey_ec() { # FILE
    (umask 077 && run "$OPENSSL" genpkey -algorithm EC \
        -pkeyopt ec_paramgen_curve:P-256 -out "$1")
    chmod 0600 "$1"
}

# ---------------------------------------------------------------------------
# CA databases

# make_ca NAME: create $WORK/NAME/{ca.cnf,index.txt,...}
make_ca() {
    local d=$WORK/$1
    mkdir -p "$d/newcerts"
    : >"$d/index.txt"
    echo "unique_subject = no" >"$d/index.txt.attr"
    echo 1000 >"$d/crlnumber"
    cat >"$d/ca.cnf" <<EOF
[ ca ]
default_ca = this_ca

[ this_ca ]
dir              = $d
database         = \$dir/index.txt
new_certs_dir    = \$dir/newcerts
crlnumber        = \$dir/crlnumber
rand_serial      = yes
default_md       = sha256
default_days     = 3650
default_crl_days = 3650
policy           = policy_any
unique_subject   = no
email_in_dn      = yes
copy_extensions  = none
preserve         = yes

[ policy_any ]
countryName            = optional
organizationName       = optional
commonName             = supplied
emailAddress           = optional

[ req ]
distinguished_name = req_dn
prompt             = no
utf8               = yes
string_mask        = utf8only

[ req_dn ]
CN = placeholder
EOF
}

# make_csr KEY SUBJECT OUTCSR (uses any CA config for its [req] section)
make_csr() {
    run "$OPENSSL" req -new -config "$WORK/root/ca.cnf" -key "$1" \
        -subj "$2" -utf8 -out "$3"
}

# issue CA CSR OUT EXTFILE SECTION FROM TO [extra ca args...]
issue() {
    local ca=$1 csr=$2 out=$3 extfile=$4 sect=$5 from=$6 to=$7
    shift 7
    run "$OPENSSL" ca -batch -notext -preserveDN \
        -config "$WORK/$ca/ca.cnf" -md sha256 \
        -startdate "$from" -enddate "$to" \
        -extfile "$extfile" -extensions "$sect" \
        -in "$csr" -out "$out" "$@"
}

# ---------------------------------------------------------------------------
# CA certificates

CA_EXT=$WORK/ca-ext.cnf
cat >"$CA_EXT" <<EOF
[ root_ca ]
basicConstraints     = critical, CA:TRUE
keyUsage             = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ sub_ca ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF

make_ca root
make_ca sub
make_ca other

# Root CA (self-signed through `openssl ca -selfsign` to get fixed dates).
genkey_rsa "$STAGE/ca.key" 3072
make_csr "$STAGE/ca.key" "$DN_PREFIX/CN=Demo Root CA" "$WORK/ca.csr"
issue root "$WORK/ca.csr" "$STAGE/ca.pem" "$CA_EXT" root_ca \
    "$VALID_FROM" "$VALID_TO" -selfsign -keyfile "$STAGE/ca.key"

# Intermediate "Demo Email CA", signed by the root.
genkey_rsa "$STAGE/sub-ca.key" 3072
make_csr "$STAGE/sub-ca.key" "$DN_PREFIX/CN=Demo Email CA" "$WORK/sub-ca.csr"
issue root "$WORK/sub-ca.csr" "$STAGE/sub-ca.pem" "$CA_EXT" sub_ca \
    "$VALID_FROM" "$VALID_TO" -cert "$STAGE/ca.pem" -keyfile "$STAGE/ca.key"

cat "$STAGE/sub-ca.pem" "$STAGE/ca.pem" >"$STAGE/chain.pem"

# Unrelated self-signed root for the "untrusted" case.
genkey_rsa "$STAGE/other-ca.key" 3072
make_csr "$STAGE/other-ca.key" "$DN_PREFIX/CN=Other Root CA" "$WORK/other-ca.csr"
issue other "$WORK/other-ca.csr" "$STAGE/other-ca.pem" "$CA_EXT" root_ca \
    "$VALID_FROM" "$VALID_TO" -selfsign -keyfile "$STAGE/other-ca.key"

# ---------------------------------------------------------------------------
# End entities

# ee NAME ADDR "DISPLAY NAME" KEYTYPE(rsa2048|rsa1024|ec) [options]
#   options: from=DATE to=DATE eku=VALUE nosan issuer=sub|other
ee() {
    local name=$1 addr=$2 display=$3 ktype=$4
    shift 4
    local from=$VALID_FROM to=$VALID_TO eku=emailProtection san=1 issuer=sub
    local opt
    for opt in "$@"; do
        case $opt in
            from=*) from=${opt#from=} ;;
            to=*) to=${opt#to=} ;;
            eku=*) eku=${opt#eku=} ;;
            nosan) san=0 ;;
            issuer=*) issuer=${opt#issuer=} ;;
            *) echo "pki: bad ee option $opt" >&2; exit 1 ;;
        esac
    done

    local key=$STAGE/$name.key ku
    case $ktype in
        rsa2048) genkey_rsa "$key" 2048; ku="digitalSignature, nonRepudiation, keyEncipherment" ;;
        rsa1024) genkey_rsa "$key" 1024; ku="digitalSignature, nonRepudiation, keyEncipherment" ;;
        ec) genkey_ec "$key"; ku="digitalSignature, nonRepudiation, keyAgreement" ;;
        *) echo "pki: bad key type $ktype" >&2; exit 1 ;;
    esac

    local cacert cakey chain
    if [[ $issuer == sub ]]; then
        cacert=$STAGE/sub-ca.pem cakey=$STAGE/sub-ca.key chain=$STAGE/chain.pem
    else
        cacert=$STAGE/other-ca.pem cakey=$STAGE/other-ca.key chain=$STAGE/other-ca.pem
    fi

    local ext=$WORK/$name-ext.cnf
    {
        echo "[ ee ]"
        echo "basicConstraints       = CA:FALSE"
        echo "keyUsage               = critical, $ku"
        echo "extendedKeyUsage       = $eku"
        echo "subjectKeyIdentifier   = hash"
        echo "authorityKeyIdentifier = keyid:always"
        if [[ $san == 1 ]]; then
            echo "subjectAltName         = email:$addr"
        fi
        if [[ $issuer == sub ]]; then
            echo "crlDistributionPoints  = URI:$CRL_URI"
            echo "authorityInfoAccess    = OCSP;URI:$OCSP_URI"
        fi
    } >"$ext"

    make_csr "$key" "$DN_PREFIX/CN=$display/emailAddress=$addr" "$WORK/$name.csr"
    issue "$issuer" "$WORK/$name.csr" "$STAGE/$name.pem" "$ext" ee \
        "$from" "$to" -cert "$cacert" -keyfile "$cakey"

    (umask 077 && printf 'demo-%s-pass\n' "$name" >"$STAGE/$name.pass")
    chmod 0600 "$STAGE/$name.pass"

    run "$OPENSSL" pkcs12 -export \
        -inkey "$key" -in "$STAGE/$name.pem" -certfile "$chain" \
        -name "$display" -passout "file:$STAGE/$name.pass" \
        -out "$STAGE/$name.p12"
}

ee alice      alice@kota.go.id       "Alice Lestari"  rsa2048
ee bob        bob@dinas.kota.go.id   "Bob Santoso"    ec
ee carol      carol@partner.example  "Carol Partner"  rsa2048
ee dave       dave@kota.go.id        "Dave Pratama"   rsa2048
ee walikota   walikota@kota.go.id    "Wali Kota"      rsa2048

# Negative cases.
ee expired    expired@kota.go.id     "Expired User"   rsa2048 \
    from=$EXPIRED_FROM to=$EXPIRED_TO
ee notyet     notyet@kota.go.id      "Not Yet Valid"  rsa2048 \
    from=$NOTYET_FROM to=$NOTYET_TO
ee serveronly serveronly@kota.go.id  "Server Only"    rsa2048 eku=serverAuth
ee nosan      nosan@kota.go.id       "No SAN"         rsa2048 nosan
ee rsa1024    rsa1024@kota.go.id     "RSA 1024"       rsa1024
ee revoked    revoked@kota.go.id     "Revoked User"   rsa2048
ee untrusted  untrusted@kota.go.id   "Untrusted User" rsa2048 issuer=other

# ---------------------------------------------------------------------------
# Revocation and CRLs

run "$OPENSSL" ca -batch -config "$WORK/sub/ca.cnf" \
    -cert "$STAGE/sub-ca.pem" -keyfile "$STAGE/sub-ca.key" \
    -revoke "$STAGE/revoked.pem" -crl_reason keyCompromise

run "$OPENSSL" ca -batch -config "$WORK/sub/ca.cnf" -md sha256 \
    -cert "$STAGE/sub-ca.pem" -keyfile "$STAGE/sub-ca.key" \
    -gencrl -crldays 3650 -out "$STAGE/sub-ca.crl.pem"
# DER copy, as served at the CRL distribution point URL (/sub-ca.crl).
run "$OPENSSL" crl -in "$STAGE/sub-ca.crl.pem" -outform DER \
    -out "$STAGE/sub-ca.crl"

run "$OPENSSL" ca -batch -config "$WORK/root/ca.cnf" -md sha256 \
    -cert "$STAGE/ca.pem" -keyfile "$STAGE/ca.key" \
    -gencrl -crldays 3650 -out "$STAGE/ca.crl.pem"

# The intermediate's CA database, for `openssl ocsp -index`.
cp "$WORK/sub/index.txt" "$STAGE/sub-ca.index.txt"

# ---------------------------------------------------------------------------
# Publish

rm -f -- "$OUT/.complete"
cp -p -- "$STAGE"/* "$OUT"/
date -u +%Y-%m-%dT%H:%M:%SZ >"$OUT/.complete"
echo "pki: wrote $OUTARG"
