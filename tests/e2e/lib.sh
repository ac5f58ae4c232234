# shellcheck shell=bash
# tests/e2e/lib.sh - helpers for end-to-end tests of Segel through a real,
# PRIVATE Postfix instance on loopback.  Source it from a bash script
# (run as root):
#
#   . "$(dirname "$0")/lib.sh"
#   e2e_init                      # checks tools, traps EXIT -> e2e_cleanup
#   e2e_tmpdir W                  # W=/tmp/segel-e2e.XXXXXX (removed on success)
#   pf_setup "$W/pf" "inet:$MILTER_PORT@127.0.0.1"   # "" = no milter
#   pf_add_user alice@kota.go.id secret
#   sink_start; milter_start "$CONF" "inet:$MILTER_PORT@127.0.0.1"; pf_start
#   send_auth alice@kota.go.id --from alice@kota.go.id --to carol@partner.example
#   wait_delivered 1              # or: f=$(wait_delivered_token SUBJECT-TOKEN)
#   sink_message "$f" >msg.eml    # the exact delivered message (CRLF)
#   check "signed" is_smime_signed msg.eml
#   e2e_summary                   # prints "N passed, M failed"
#
# Functions (details at each definition):
#   set-up      e2e_init e2e_cleanup e2e_tmpdir wait_until port_listening
#   Postfix     pf_setup pf_start pf_stop pf_reload pf_set pf_add_user
#               pf_queue_count pf_queue_empty pf_flush pf_log pf_wait_log
#   sink        sink_start sink_stop delivered_files delivered_count
#               wait_delivered wait_delivered_token find_delivered
#               sink_message sink_envelope
#   milter      milter_start milter_stop milter_kill9 milter_reload
#               milter_pids milter_running milter_summary child_pids
#   sending     send_mail send_auth smtp_raw swaks_queue_id
#               swaks_final_reply swaks_accepted swaks_reply_matches
#   MIME/S/MIME msg_header mime_param mime_part mime_body mime_decode
#               is_smime_signed smime_micalg smime_split openssl_verify
#               gpgsm_home gpgsm_verify has_8bit
#   results     ok fail check check_not e2e_summary show_tail
#
# Nothing here touches the system Postfix: every file lives below the
# WORKDIR given to pf_setup, and every process started here is stopped by
# e2e_cleanup (installed as EXIT/INT/TERM trap by e2e_init).
#
# Layout of WORKDIR:
#   etc/    main.cf, master.cf, sasl/smtpd.conf (Cyrus SASL), sasldb2
#   queue/  Postfix queue_directory      data/  data_directory (postfix-owned)
#   log/    postfix.log (maillog_file), milter.log, sink.log, swaks.log
#   out/    one file per message received by smtp-sink (see below)
#   tmp/    scratch space for the tests
#
# Ports (override through the environment before sourcing/calling):
#   SUBMIT_PORT   (10587) submission, SASL AUTH required to relay, milter
#   INBOUND_PORT  (10025) no AUTH, relays for 127.0.0.0/8, milter
#   REINJECT_PORT (10026) no AUTH, relays for 127.0.0.0/8, NO milter
#   SINK_PORT     (10999) smtp-sink; Postfix relays everything there
#   MILTER_PORT   (10901) conventional port for the Segel milter
#
# smtp-sink capture format (smtp-sink(1), "DUMP FILE FORMAT", and the
# source): each capture file starts with sink-generated lines
# (X-Client-Addr, X-Client-Proto, X-Helo-Args, X-Mail-Args, X-Rcpt-Args...)
# followed by a three-line "Received: from ...\n\tby ... (smtp-sink) with
# ...;\n\tDATE\n" header; then the message as received, with EVERY CR byte
# removed (so CRLF becomes LF), SMTP dot-stuffing undone, and one extra
# "\n" (from the ".\r\n" terminator) at the end.  sink_message reverses
# this: drops the sink prefix and the final line and turns LF back into
# CRLF.  That reproduces the delivered bytes exactly for everything Postfix
# sends, except bare CR bytes (lost by smtp-sink; they cannot occur in the
# 7-bit signed output we check) -- documented limitation.
#
# A capture file exists from MAIL FROM on and is deleted if the transaction
# is aborted; it is complete once smtp-sink closes it, which happens before
# it sends "250" for the final ".".  delivered_files therefore lists only
# files that the sink process no longer holds open (/proc/PID/fd).

# ---------------------------------------------------------------------------
# Globals

: "${SUBMIT_PORT:=10587}"
: "${INBOUND_PORT:=10025}"
: "${REINJECT_PORT:=10026}"
: "${SINK_PORT:=10999}"
: "${MILTER_PORT:=10901}"
: "${E2E_VERBOSE:=0}"

E2E_ROOT=${E2E_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-build}
case $BUILD in
    /*) ;;
    *) BUILD=$E2E_ROOT/$BUILD ;;
esac

E2E_W=""              # WORKDIR of the private instance
E2E_MILTER_SOCKET=""  # Postfix-side milter address ("" = none)
E2E_MILTER_PID=""     # PID of the segel-milter we started
E2E_MILTER_LOG=""
E2E_SINK_PID=""       # PID of smtp-sink
E2E_PF_STARTED=0      # 1 after pf_start succeeded
E2E_SWAKS_LOG=""      # transcript of the last send_mail
E2E_SWAKS_RC=0        # exit status of the last send_mail
E2E_PASSED=0
E2E_FAILED=0
E2E_FAILED_NAMES=()
E2E_GNUPGHOMES=()     # GNUPGHOMEs whose gpg-agent we must stop
E2E_REMOVE_DIRS=()    # removed by e2e_cleanup when everything passed
E2E_CLEANED=0
E2E_SUMMARY_DONE=0
E2E_FATAL=""
declare -A E2E_PASSWORDS=()

# ---------------------------------------------------------------------------
# Messages and assertions

e2e_log() { printf 'e2e: %s\n' "$*" >&2; }
e2e_die() {
    printf 'e2e: FATAL: %s\n' "$*" >&2
    E2E_FATAL=$*
    exit 1
}

ok() {
    E2E_PASSED=$((E2E_PASSED + 1))
    printf 'ok   - %s\n' "$*"
}

fail() {
    E2E_FAILED=$((E2E_FAILED + 1))
    E2E_FAILED_NAMES+=("$*")
    printf 'FAIL - %s\n' "$*"
}

# check DESCRIPTION COMMAND [ARGS...]: ok if the command succeeds, fail
# otherwise.  Always returns 0 (safe under set -e); the result is counted.
check() {
    local desc=$1
    shift
    if "$@"; then
        ok "$desc"
    else
        fail "$desc"
    fi
    return 0
}

# check_not DESCRIPTION COMMAND [ARGS...]: ok if the command fails.
check_not() {
    local desc=$1
    shift
    if "$@"; then
        fail "$desc"
    else
        ok "$desc"
    fi
    return 0
}

# e2e_summary: the final "N passed, M failed" line; returns 1 if M > 0.
e2e_summary() {
    local n
    if ((E2E_FAILED > 0)); then
        echo "failed checks:"
        for n in "${E2E_FAILED_NAMES[@]}"; do
            echo "  - $n"
        done
    fi
    echo "$E2E_PASSED passed, $E2E_FAILED failed"
    E2E_SUMMARY_DONE=1
    ((E2E_FAILED == 0))
}

# show_tail FILE [LINES]: indented tail of a log, for diagnostics.
show_tail() {
    local f=$1 n=${2:-20}
    if [[ -f $f ]]; then
        echo "    --- last $n lines of $f"
        tail -n "$n" -- "$f" | sed 's/^/    | /'
    else
        echo "    --- $f does not exist"
    fi
}

# ---------------------------------------------------------------------------
# Set-up and tear-down

# e2e_init: sanity checks and the EXIT trap.  Call once, early.
e2e_init() {
    if [[ $(id -u) -ne 0 ]]; then
        e2e_die "must run as root (Postfix master and smtp-sink need it)"
    fi
    local t
    for t in postfix postconf smtp-sink swaks saslpasswd2 openssl; do
        command -v "$t" >/dev/null 2>&1 || e2e_die "missing tool: $t"
    done
    id postfix >/dev/null 2>&1 || e2e_die "no 'postfix' user"
    trap 'e2e_cleanup' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# e2e_cleanup: stop everything this script started.  Idempotent.
e2e_cleanup() {
    local rc=$? h d
    ((E2E_CLEANED)) && return "$rc"
    E2E_CLEANED=1
    set +e
    if ((!E2E_SUMMARY_DONE && (rc != 0 || E2E_PASSED + E2E_FAILED > 0))); then
        # Aborted before the end: still print a result line for runners.
        fail "aborted (exit status $rc)${E2E_FATAL:+: $E2E_FATAL}"
        e2e_summary
    fi
    milter_stop >/dev/null 2>&1
    pf_stop >/dev/null 2>&1
    sink_stop >/dev/null 2>&1
    for h in "${E2E_GNUPGHOMES[@]}"; do
        GNUPGHOME=$h gpgconf --kill all >/dev/null 2>&1
    done
    if ((rc == 0 && E2E_FAILED == 0)) && [[ ${E2E_KEEP:-0} != 1 ]]; then
        for d in "${E2E_REMOVE_DIRS[@]}"; do
            [[ -n $d && -d $d ]] && rm -rf -- "$d"
        done
    elif ((${#E2E_REMOVE_DIRS[@]} > 0)); then
        e2e_log "kept for inspection: ${E2E_REMOVE_DIRS[*]}"
    fi
    return "$rc"
}

# e2e_tmpdir VAR: create a fresh directory under /tmp, store its path in
# VAR; it is removed by e2e_cleanup when everything passed.  (Not a
# command substitution: the cleanup list must be updated in this shell.)
e2e_tmpdir() {
    local _d
    _d=$(mktemp -d "${TMPDIR:-/tmp}/segel-e2e.XXXXXX")
    chmod 0755 "$_d"
    E2E_REMOVE_DIRS+=("$_d")
    printf -v "$1" '%s' "$_d"
}

# wait_until TIMEOUT COMMAND [ARGS...]: poll every 0.2 s.
wait_until() {
    local timeout=$1 deadline
    shift
    deadline=$((SECONDS + timeout))
    while ! "$@"; do
        ((SECONDS >= deadline)) && return 1
        sleep 0.2
    done
    return 0
}

# port_listening PORT: something listens on 127.0.0.1:PORT.
port_listening() {
    if command -v ss >/dev/null 2>&1; then
        [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
    else
        # shellcheck disable=SC2016 # $1 is expanded by the inner bash
        timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
    fi
}

port_free() { ! port_listening "$1"; }

# milter_addr_postfix ADDR: libmilter "inet:PORT@HOST" -> Postfix
# "inet:HOST:PORT"; other forms are returned unchanged.
milter_addr_postfix() {
    local a=$1
    if [[ $a =~ ^inet:([0-9]+)@(.+)$ ]]; then
        printf 'inet:%s:%s\n' "${BASH_REMATCH[2]}" "${BASH_REMATCH[1]}"
    else
        printf '%s\n' "$a"
    fi
}

# milter_addr_libmilter ADDR: the reverse conversion.
milter_addr_libmilter() {
    local a=$1
    if [[ $a =~ ^inet:([^:@]+):([0-9]+)$ ]]; then
        printf 'inet:%s@%s\n' "${BASH_REMATCH[2]}" "${BASH_REMATCH[1]}"
    else
        printf '%s\n' "$a"
    fi
}

# ---------------------------------------------------------------------------
# Private Postfix instance

# pf_setup WORKDIR MILTER_SOCKET
#   MILTER_SOCKET is used for the submission and inbound services; either
#   Postfix ("inet:127.0.0.1:10901", "unix:/path") or libmilter
#   ("inet:10901@127.0.0.1") syntax.  "" = no milter at all.
pf_setup() {
    local w=$1 milter=${2:-}
    [[ -n $w ]] || e2e_die "pf_setup: WORKDIR missing"
    mkdir -p "$w"
    w=$(cd "$w" && pwd)
    E2E_W=$w
    E2E_MILTER_SOCKET=$(milter_addr_postfix "$milter")
    E2E_MILTER_LOG=$w/log/milter.log

    # Postfix daemons run as "postfix" without chroot and open files by
    # absolute path (sasldb, log), so every parent must be searchable.
    chmod 0755 "$w"
    mkdir -p "$w"/{etc,queue,data,log,out,tmp}
    chmod 0755 "$w"/{etc,queue,log,tmp}
    chown postfix:postfix "$w/data"
    chmod 0700 "$w/data"
    chown postfix:postfix "$w/out"

    local sasl_db=$w/etc/sasldb2
    if [[ ! -f $sasl_db ]]; then
        # Create an empty database with a throw-away user, then remove it.
        echo x | saslpasswd2 -f "$sasl_db" -p -c -u e2e.invalid e2e-init
        saslpasswd2 -f "$sasl_db" -d -u e2e.invalid e2e-init
    fi
    chown root:postfix "$sasl_db"
    chmod 0640 "$sasl_db"

    # Debian's smtpd looks for smtpd.conf in $cyrus_sasl_config_path, or
    # in $config_directory/sasl when that is empty; use etc/sasl for both.
    mkdir -p "$w/etc/sasl"
    cat >"$w/etc/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $sasl_db
mech_list: PLAIN LOGIN
EOF

    cat >"$w/etc/main.cf" <<EOF
# Private Postfix instance for Segel end-to-end tests (generated by
# tests/e2e/lib.sh).  Start with: postfix -c $w/etc start
compatibility_level = 3.6
queue_directory = $w/queue
data_directory = $w/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.e2e.test
mydomain = e2e.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
# Do not rewrite header addresses of loopback clients (production-like:
# submission clients are remote); keeps the delivered headers as sent.
local_header_rewrite_clients =
maillog_file = $w/log/postfix.log
maillog_file_prefixes = $w/log
biff = no
notify_classes =
message_size_limit = 52428800
mailbox_size_limit = 0
smtputf8_enable = no
disable_mime_output_conversion = yes
in_flow_delay = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_connection_rate_limit = 0
smtpd_banner = \$myhostname ESMTP segel-e2e

# Everything is relayed to smtp-sink.
default_transport = smtp
relay_transport = smtp
relayhost = [127.0.0.1]:$SINK_PORT
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtp_connect_timeout = 5s
smtpd_tls_security_level = none
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject
smtpd_recipient_restrictions =

# Retry deferred mail quickly.
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 10s

# SASL (Cyrus, sasldb in $sasl_db); enabled per service in master.cf.
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $w/etc/sasl
smtpd_sasl_auth_enable = no
smtpd_tls_auth_only = no
smtpd_sasl_security_options = noanonymous
smtpd_sasl_local_domain =
broken_sasl_auth_clients = no

# Milters: set per service in master.cf.
milter_protocol = 6
milter_default_action = tempfail
milter_connect_timeout = 10s
milter_command_timeout = 30s
milter_content_timeout = 120s
smtpd_milters =
non_smtpd_milters =
EOF

    local m=$E2E_MILTER_SOCKET
    cat >"$w/etc/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$SUBMIT_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_milters=$m
127.0.0.1:$INBOUND_PORT inet n - n - - smtpd
  -o syslog_name=postfix/inbound
  -o smtpd_sasl_auth_enable=no
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o smtpd_milters=$m
127.0.0.1:$REINJECT_PORT inet n - n - - smtpd
  -o syslog_name=postfix/reinject
  -o smtpd_sasl_auth_enable=no
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o smtpd_milters=
  -o receive_override_options=no_milters
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    : >"$w/log/postfix.log"
    if ! postfix -c "$w/etc" check >"$w/log/postfix-check.log" 2>&1; then
        cat "$w/log/postfix-check.log" >&2
        e2e_die "pf_setup: postfix check failed"
    fi
}

pf_conf() { printf '%s/etc\n' "$E2E_W"; }
pf_log() { printf '%s/log/postfix.log\n' "$E2E_W"; }

pf_master_pid() {
    local f=$E2E_W/queue/pid/master.pid pid
    [[ -f $f ]] || return 1
    pid=$(tr -dc '0-9' <"$f")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && printf '%s\n' "$pid"
}

pf_ports_up() {
    port_listening "$SUBMIT_PORT" && port_listening "$INBOUND_PORT" &&
        port_listening "$REINJECT_PORT"
}

# pf_start: start the private instance and wait for its listeners.
pf_start() {
    [[ -n $E2E_W ]] || e2e_die "pf_start: call pf_setup first"
    local p
    for p in "$SUBMIT_PORT" "$INBOUND_PORT" "$REINJECT_PORT"; do
        port_free "$p" || e2e_die "pf_start: port 127.0.0.1:$p already in use"
    done
    if ! postfix -c "$E2E_W/etc" start >"$E2E_W/log/postfix-start.log" 2>&1; then
        cat "$E2E_W/log/postfix-start.log" >&2
        show_tail "$(pf_log)" >&2
        e2e_die "pf_start: postfix start failed"
    fi
    E2E_PF_STARTED=1
    if ! wait_until 20 pf_ports_up; then
        show_tail "$(pf_log)" >&2
        e2e_die "pf_start: Postfix listeners did not come up"
    fi
}

# pf_stop: stop the private instance and wait for the master to exit.
pf_stop() {
    ((E2E_PF_STARTED)) || return 0
    local pid
    pid=$(pf_master_pid) || pid=""
    postfix -c "$E2E_W/etc" stop >/dev/null 2>&1 || true
    if [[ -n $pid ]] && ! wait_until 15 pf_master_gone "$pid"; then
        postfix -c "$E2E_W/etc" abort >/dev/null 2>&1 || true
        wait_until 5 pf_master_gone "$pid" || kill -9 "$pid" 2>/dev/null
    fi
    E2E_PF_STARTED=0
}

pf_master_gone() { ! kill -0 "$1" 2>/dev/null; }

# pf_reload: re-read main.cf/master.cf.
pf_reload() { postfix -c "$E2E_W/etc" reload >/dev/null 2>&1; }

# pf_set NAME=VALUE...: change main.cf (takes effect after pf_reload).
pf_set() { postconf -c "$E2E_W/etc" -e "$@"; }

# pf_add_user LOGIN PASSWORD: LOGIN "local@domain" is stored as user
# "local" in realm "domain", which is how Cyrus splits a login containing
# "@" (smtpd_sasl_local_domain is empty); Postfix then reports the login
# as {auth_authen}=local@domain to the milter.
pf_add_user() {
    local login=$1 pass=$2 db=$E2E_W/etc/sasldb2
    if [[ $login == *@* ]]; then
        printf '%s' "$pass" | saslpasswd2 -f "$db" -p -c -u "${login##*@}" "${login%@*}"
    else
        printf '%s' "$pass" | saslpasswd2 -f "$db" -p -c "$login"
    fi
    chown root:postfix "$db"
    chmod 0640 "$db"
    E2E_PASSWORDS[$login]=$pass
}

# pf_queue_count: number of messages in the private queue.
pf_queue_count() {
    local q=$E2E_W/queue
    find "$q/maildrop" "$q/incoming" "$q/active" "$q/deferred" "$q/hold" \
        -type f 2>/dev/null | wc -l
}

pf_queue_empty() { [[ $(pf_queue_count) -eq 0 ]]; }

# pf_flush: attempt delivery of all deferred mail now.
pf_flush() { postqueue -c "$E2E_W/etc" -f >/dev/null 2>&1; }

# pf_wait_log PATTERN [TIMEOUT]: wait for an ERE in the Postfix log.
pf_wait_log() {
    wait_until "${2:-20}" grep -Eq -- "$1" "$(pf_log)"
}

# ---------------------------------------------------------------------------
# smtp-sink

sink_start() {
    [[ -n $E2E_W ]] || e2e_die "sink_start: call pf_setup first"
    port_free "$SINK_PORT" || e2e_die "sink_start: port 127.0.0.1:$SINK_PORT in use"
    smtp-sink -4 -u postfix -h sink.e2e.test -d "$E2E_W/out/%Y%m%d%H%M%S." \
        "127.0.0.1:$SINK_PORT" 64 >>"$E2E_W/log/sink.log" 2>&1 &
    E2E_SINK_PID=$!
    if ! wait_until 10 port_listening "$SINK_PORT"; then
        show_tail "$E2E_W/log/sink.log" >&2
        e2e_die "sink_start: smtp-sink did not come up"
    fi
}

sink_stop() {
    [[ -n $E2E_SINK_PID ]] || return 0
    kill "$E2E_SINK_PID" 2>/dev/null || true
    wait "$E2E_SINK_PID" 2>/dev/null || true
    E2E_SINK_PID=""
}

# sink_open_files: capture files the sink still writes to.
sink_open_files() {
    [[ -n $E2E_SINK_PID && -d /proc/$E2E_SINK_PID/fd ]] || return 0
    local fd t
    for fd in /proc/"$E2E_SINK_PID"/fd/*; do
        t=$(readlink "$fd" 2>/dev/null) || continue
        if [[ $t == "$E2E_W/out/"* ]]; then
            printf '%s\n' "$t"
        fi
    done
    return 0
}

# delivered_files: complete capture files, oldest first.
delivered_files() {
    local open f
    open=$(sink_open_files)
    find "$E2E_W/out" -type f -printf '%T@ %p\n' 2>/dev/null | sort -n |
        cut -d' ' -f2- | while IFS= read -r f; do
            if [[ -z $open ]] || ! grep -qxF -- "$f" <<<"$open"; then
                printf '%s\n' "$f"
            fi
        done
}

delivered_count() { delivered_files | wc -l; }

# wait_delivered N [TIMEOUT]: wait until N complete capture files exist.
wait_delivered() {
    local n=$1 timeout=${2:-30}
    if wait_until "$timeout" _delivered_at_least "$n"; then
        return 0
    fi
    {
        echo "wait_delivered: expected $n delivered messages, have $(delivered_count) after ${timeout}s"
        echo "    queue: $(pf_queue_count) message(s)"
        postqueue -c "$E2E_W/etc" -p 2>/dev/null | sed -n '1,30s/^/    | /p'
        show_tail "$(pf_log)" 25
        [[ -n $E2E_MILTER_LOG ]] && show_tail "$E2E_MILTER_LOG" 15
    } >&2
    return 1
}

_delivered_at_least() { (($(delivered_count) >= $1)); }

# sink_message FILE: the delivered message exactly as sent over SMTP
# (CRLF line ends, sink prefix removed) on stdout.
sink_message() {
    local f=$1 n
    n=$(grep -n -m1 '^Received: from .*' -- "$f" | cut -d: -f1)
    [[ -n $n ]] || {
        echo "sink_message: $f: no smtp-sink Received header" >&2
        return 1
    }
    # The sink's Received header is 3 lines; the final line is the
    # sink-added "\n" of the ".\r\n" terminator.
    tail -n +"$((n + 3))" -- "$f" | head -n -1 | LC_ALL=C sed 's/$/\r/'
}

# sink_envelope FILE: "MAIL <args>" / "RCPT <args>" lines of a capture.
sink_envelope() {
    sed -n -e 's/^X-Mail-Args: /MAIL /p' -e 's/^X-Rcpt-Args: /RCPT /p' \
        -e '/^Received: from /q' -- "$1"
}

# find_delivered TOKEN: newest complete capture whose content has TOKEN
# (e.g. a unique Subject).  Prints the path or fails.
find_delivered() {
    local f hit=""
    while IFS= read -r f; do
        grep -qF -- "$1" "$f" && hit=$f
    done < <(delivered_files)
    [[ -n $hit ]] && printf '%s\n' "$hit"
}

# wait_delivered_token TOKEN [TIMEOUT]: wait for a capture containing TOKEN.
wait_delivered_token() {
    local tok=$1 timeout=${2:-30}
    if wait_until "$timeout" find_delivered "$tok" >/dev/null; then
        find_delivered "$tok"
        return 0
    fi
    {
        echo "wait_delivered_token: no delivered message contains '$tok' after ${timeout}s"
        echo "    queue: $(pf_queue_count) message(s)"
        show_tail "$(pf_log)" 25
        [[ -n $E2E_MILTER_LOG ]] && show_tail "$E2E_MILTER_LOG" 15
    } >&2
    return 1
}

# ---------------------------------------------------------------------------
# Segel milter

# milter_start CONF SOCKET: start segel-milter in the foreground (-f) in
# the background, log to WORKDIR/log/milter.log, wait until it listens.
milter_start() {
    local conf=$1 sock=${2:-}
    local bin=$BUILD/segel-milter
    [[ -x $bin ]] || e2e_die "milter_start: $bin not built"
    [[ -n $E2E_W ]] || e2e_die "milter_start: call pf_setup first"
    [[ -z $E2E_MILTER_PID ]] || e2e_die "milter_start: milter already running"
    E2E_MILTER_LOG=$E2E_W/log/milter.log
    local args=(-c "$conf" -f)
    if [[ -n $sock ]]; then
        sock=$(milter_addr_libmilter "$sock")
        args+=(-p "$sock")
    else
        sock=$(milter_addr_libmilter "$E2E_MILTER_SOCKET")
    fi
    if [[ $sock =~ ^inet:([0-9]+)@ ]]; then
        port_free "${BASH_REMATCH[1]}" ||
            e2e_die "milter_start: port ${BASH_REMATCH[1]} already in use"
    fi
    echo "=== $(date '+%F %T') milter_start ${args[*]}" >>"$E2E_MILTER_LOG"
    "$bin" "${args[@]}" >>"$E2E_MILTER_LOG" 2>&1 &
    E2E_MILTER_PID=$!
    # Not a job any more: no "Killed" notices from bash after milter_kill9
    # (bash still reaps it; liveness is checked with kill -0).
    disown "$E2E_MILTER_PID"
    if ! wait_until 20 _milter_ready "$sock"; then
        show_tail "$E2E_MILTER_LOG" >&2
        milter_stop
        e2e_die "milter_start: segel-milter did not start listening on $sock"
    fi
}

_milter_ready() {
    kill -0 "$E2E_MILTER_PID" 2>/dev/null || return 2
    case $1 in
        inet:*) [[ $1 =~ ^inet:([0-9]+)@ ]] && port_listening "${BASH_REMATCH[1]}" ;;
        unix:*) [[ -S ${1#unix:} ]] ;;
        *) [[ -S $1 ]] ;;
    esac
}

# child_pids PID: direct children of PID (pgrep -P, or /proc when procps
# is not installed).
child_pids() {
    if command -v pgrep >/dev/null 2>&1; then
        pgrep -P "$1" 2>/dev/null || true
        return 0
    fi
    local st line rest
    local -a stat_fields
    for st in /proc/[0-9]*/stat; do
        IFS= read -r line <"$st" 2>/dev/null || continue
        rest=${line##*) }                # fields after "(comm) "
        read -r -a stat_fields <<<"$rest" # [0]=state [1]=ppid
        if [[ ${stat_fields[1]:-} == "$1" ]]; then
            st=${st#/proc/}
            printf '%s\n' "${st%/stat}"
        fi
    done
    return 0
}

# milter_pids: the milter supervisor and its direct children (workers).
milter_pids() {
    [[ -n $E2E_MILTER_PID ]] || return 0
    kill -0 "$E2E_MILTER_PID" 2>/dev/null || return 0
    child_pids "$E2E_MILTER_PID"
    printf '%s\n' "$E2E_MILTER_PID"
}

milter_running() { [[ -n $E2E_MILTER_PID ]] && kill -0 "$E2E_MILTER_PID" 2>/dev/null; }

# milter_stop: SIGTERM, then SIGKILL after 10 s.
milter_stop() {
    [[ -n $E2E_MILTER_PID ]] || return 0
    local pids p
    pids=$(milter_pids)
    if [[ -n $pids ]]; then
        kill -TERM "$E2E_MILTER_PID" 2>/dev/null || true
        if ! wait_until 10 _pids_gone "$pids"; then
            for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
            wait_until 5 _pids_gone "$pids" || true
        fi
    fi
    E2E_MILTER_PID=""
}

_pids_gone() {
    local p
    for p in $1; do
        kill -0 "$p" 2>/dev/null && return 1
    done
    return 0
}

# milter_kill9: SIGKILL the workers and the supervisor at once.
milter_kill9() {
    [[ -n $E2E_MILTER_PID ]] || return 0
    local pids p
    pids=$(milter_pids)
    for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
    wait_until 5 _pids_gone "$pids" || true
    echo "=== $(date '+%F %T') milter_kill9 ${pids//$'\n'/ }" >>"$E2E_MILTER_LOG"
    E2E_MILTER_PID=""
}

# milter_reload: SIGHUP to the supervisor (config reload).
milter_reload() {
    [[ -n $E2E_MILTER_PID ]] || return 1
    echo "=== $(date '+%F %T') milter_reload (SIGHUP)" >>"$E2E_MILTER_LOG"
    kill -HUP "$E2E_MILTER_PID" || return 1
}

# milter_summary QUEUEID: the milter's summary line for a queue id.
milter_summary() {
    grep -E "^(.*[^A-Za-z0-9])?$1: result=" "$E2E_MILTER_LOG" | tail -n 1
}

# ---------------------------------------------------------------------------
# Sending mail

# send_mail [SWAKS ARGS...]: swaks with defaults (submission port, no
# authentication); later arguments override the defaults.  The transcript
# goes to $E2E_SWAKS_LOG (and is appended to log/swaks.log); the return
# value is swaks' exit status (also in $E2E_SWAKS_RC).
send_mail() {
    E2E_SWAKS_LOG=$E2E_W/log/swaks.last
    set +e
    swaks --server 127.0.0.1 --port "$SUBMIT_PORT" --helo client.e2e.test \
        --timeout 60 "$@" >"$E2E_SWAKS_LOG" 2>&1
    E2E_SWAKS_RC=$?
    set -e
    {
        echo "=== $(date '+%F %T') swaks $* (rc=$E2E_SWAKS_RC)"
        cat "$E2E_SWAKS_LOG"
    } >>"$E2E_W/log/swaks.log"
    if [[ $E2E_VERBOSE == 1 ]]; then
        cat "$E2E_SWAKS_LOG" >&2
    fi
    return "$E2E_SWAKS_RC"
}

# send_auth LOGIN [SWAKS ARGS...]: send_mail with AUTH PLAIN as LOGIN
# (password from pf_add_user).
send_auth() {
    local login=$1
    shift
    [[ -n ${E2E_PASSWORDS[$login]+x} ]] || e2e_die "send_auth: unknown user $login"
    send_mail --auth PLAIN --auth-user "$login" \
        --auth-password "${E2E_PASSWORDS[$login]}" "$@"
}

# smtp_raw [OPTIONS] FILE: send FILE byte-exactly (no swaks rewriting:
# swaks edits --data, e.g. turns a literal "\n" into CRLF and expands
# %DATE%).  FILE must use CRLF line ends with lines < 998 octets and no
# NUL (what SMTP can carry without BINARYMIME); a final CRLF is added if
# missing and leading dots are doubled.  Options:
#   --port PORT          (default $SUBMIT_PORT)
#   --auth LOGIN         AUTH PLAIN with the password from pf_add_user
#   --from ADDR --to ADDR (repeatable)
#   --body8              send BODY=8BITMIME
#   --pause-at BYTES --pause-cmd CMD
#                        after BYTES octets of the DATA stream, run CMD
#                        (eval'ed), then send the rest.
# The transcript goes to $E2E_SWAKS_LOG in swaks' format (so
# swaks_final_reply and swaks_queue_id work); E2E_SWAKS_RC is 0 when the
# message was accepted, 1 when rejected, 2 on connection errors.
smtp_raw() {
    local port=$SUBMIT_PORT login="" from="" body8="" pause_at="" pause_cmd=""
    local -a rcpts=()
    while (($# > 1)); do
        case $1 in
            --port) port=$2; shift 2 ;;
            --auth) login=$2; shift 2 ;;
            --from) from=$2; shift 2 ;;
            --to) rcpts+=("$2"); shift 2 ;;
            --body8) body8=" BODY=8BITMIME"; shift ;;
            --pause-at) pause_at=$2; shift 2 ;;
            --pause-cmd) pause_cmd=$2; shift 2 ;;
            *) e2e_die "smtp_raw: unknown option $1" ;;
        esac
    done
    local file=$1 fd stuffed r
    E2E_SWAKS_LOG=$E2E_W/log/swaks.last
    : >"$E2E_SWAKS_LOG"
    E2E_SWAKS_RC=2
    stuffed=$(mktemp "$E2E_W/tmp/smtp-data.XXXXXX")
    LC_ALL=C sed 's/^\./../' -- "$file" >"$stuffed"
    if [[ -s $stuffed && $(tail -c 1 -- "$stuffed" | od -An -tx1 | tr -d ' ') != 0a ]]; then
        printf '\r\n' >>"$stuffed"
    fi
    printf '.\r\n' >>"$stuffed"

    if ! exec {fd}<>"/dev/tcp/127.0.0.1/$port"; then
        echo "*** cannot connect to 127.0.0.1:$port" >>"$E2E_SWAKS_LOG"
        rm -f -- "$stuffed"
        _smtp_raw_done "$file"
        return 2
    fi
    r=0
    {
        _smtp_expect "$fd" 220 &&
            _smtp_cmd "$fd" "EHLO client.e2e.test" 250 &&
            if [[ -n $login ]]; then
                local tok
                tok=$(printf '\0%s\0%s' "$login" "${E2E_PASSWORDS[$login]}" | base64 -w0)
                _smtp_cmd "$fd" "AUTH PLAIN $tok" 235
            fi &&
            _smtp_cmd "$fd" "MAIL FROM:<$from>$body8" 250 &&
            _smtp_rcpts "$fd" "${rcpts[@]}" &&
            _smtp_cmd "$fd" "DATA" 354 &&
            _smtp_data "$fd" "$stuffed" "$pause_at" "$pause_cmd" &&
            _smtp_expect "$fd" 250
    } || r=1
    if ((r == 0)); then E2E_SWAKS_RC=0; else E2E_SWAKS_RC=1; fi
    _smtp_cmd "$fd" "QUIT" 221 >/dev/null 2>&1 || true
    exec {fd}>&-
    rm -f -- "$stuffed"
    _smtp_raw_done "$file"
    return "$E2E_SWAKS_RC"
}

_smtp_rcpts() {
    local fd=$1 r
    shift
    for r in "$@"; do
        _smtp_cmd "$fd" "RCPT TO:<$r>" 250 || return 1
    done
}

_smtp_raw_done() {
    {
        echo "=== $(date '+%F %T') smtp_raw $1 (rc=$E2E_SWAKS_RC)"
        cat "$E2E_SWAKS_LOG"
    } >>"$E2E_W/log/swaks.log"
    if [[ $E2E_VERBOSE == 1 ]]; then
        cat "$E2E_SWAKS_LOG" >&2
    fi
    return 0
}

# _smtp_expect FD CODE: read a (multi-line) reply; succeed if it is CODE.
_smtp_expect() {
    local fd=$1 want=$2 line
    while :; do
        if ! IFS= read -r -t 120 line <&"$fd"; then
            echo "*** connection closed or timed out waiting for $want" >>"$E2E_SWAKS_LOG"
            return 1
        fi
        line=${line%$'\r'}
        if [[ $line =~ ^[0-9]{3}- ]]; then
            echo "<-  $line" >>"$E2E_SWAKS_LOG"
            continue
        fi
        if [[ ${line:0:3} == "$want" ]]; then
            echo "<-  $line" >>"$E2E_SWAKS_LOG"
            return 0
        fi
        echo "<** $line" >>"$E2E_SWAKS_LOG"
        return 1
    done
}

_smtp_cmd() {
    local fd=$1 cmd=$2 want=$3
    if [[ $cmd == AUTH* ]]; then
        echo " -> AUTH PLAIN (credentials hidden)" >>"$E2E_SWAKS_LOG"
    else
        echo " -> $cmd" >>"$E2E_SWAKS_LOG"
    fi
    printf '%s\r\n' "$cmd" 1>&"$fd" 2>/dev/null || return 1
    _smtp_expect "$fd" "$want"
}

_smtp_data() {
    local fd=$1 f=$2 at=$3 cmd=$4 size
    size=$(stat -c %s -- "$f")
    echo " -> [$size octets of message data incl. final dot]" >>"$E2E_SWAKS_LOG"
    if [[ -n $at ]] && ((at < size)); then
        head -c "$at" -- "$f" 1>&"$fd" 2>/dev/null || return 1
        echo "*** paused after $at octets: $cmd" >>"$E2E_SWAKS_LOG"
        eval "$cmd"
        tail -c +"$((at + 1))" -- "$f" 1>&"$fd" 2>/dev/null || return 1
    else
        cat -- "$f" 1>&"$fd" 2>/dev/null || return 1
    fi
}

# swaks_queue_id: the Postfix queue id from the last accepted message.
swaks_queue_id() {
    sed -n 's/.*250 2\.0\.0 Ok: queued as \([0-9A-Za-z]*\).*/\1/p' "$E2E_SWAKS_LOG" | tail -n 1
}

# swaks_final_reply: the server reply to the end of DATA (or the last
# server reply line if the transaction ended earlier).
swaks_final_reply() {
    grep -E '^ *<[-~*]+ +[0-9]{3}[ -]' "$E2E_SWAKS_LOG" | grep -Ev '^ *<[-~*]+ +221 ' |
        tail -n 1 | sed -E 's/^ *<[-~*]+ +//'
}

# swaks_accepted: the last message was accepted (250 ... queued as).
swaks_accepted() { [[ $E2E_SWAKS_RC -eq 0 ]] && [[ -n $(swaks_queue_id) ]]; }

# swaks_reply_matches ERE: the final reply matches.
swaks_reply_matches() { swaks_final_reply | grep -Eq -- "$1"; }

# ---------------------------------------------------------------------------
# S/MIME inspection of delivered messages

# msg_header FILE NAME: unfolded value of the first top-level header NAME.
msg_header() {
    LC_ALL=C awk -v want="$(printf '%s' "$2" | tr '[:upper:]' '[:lower:]')" '
        { sub(/\r$/, "") }
        /^$/ { if (cur != "") emit(); exit }
        /^[ \t]/ { if (cur != "") cur = cur " " substr($0, 2); next }
        { if (cur != "") emit(); cur = $0 }
        function emit(  i, name) {
            i = index(cur, ":")
            name = tolower(substr(cur, 1, i - 1))
            if (name == want && !done) {
                v = substr(cur, i + 1); sub(/^[ \t]+/, "", v)
                print v; done = 1
            }
            cur = ""
        }' "$1"
}

# mime_param VALUE NAME: parameter NAME of a header value.
mime_param() {
    LC_ALL=C awk -v v="$1" -v want="$(printf '%s' "$2" | tr '[:upper:]' '[:lower:]')" '
        BEGIN {
            n = split(v, parts, ";")
            for (i = 2; i <= n; i++) {
                p = parts[i]; sub(/^[ \t]+/, "", p)
                j = index(p, "=")
                if (j == 0) continue
                name = tolower(substr(p, 1, j - 1)); sub(/[ \t]+$/, "", name)
                val = substr(p, j + 1); sub(/^[ \t]+/, "", val); sub(/[ \t]+$/, "", val)
                if (val ~ /^".*"$/) val = substr(val, 2, length(val) - 2)
                if (name == want) { print val; exit }
            }
        }'
}

# is_smime_signed FILE: top-level multipart/signed with the S/MIME
# protocol and sha-256 micalg (FILE = exact message, CRLF).
is_smime_signed() {
    local ct
    ct=$(msg_header "$1" content-type)
    [[ ${ct,,} == multipart/signed* ]] || return 1
    [[ $(mime_param "$ct" protocol | tr '[:upper:]' '[:lower:]') == application/pkcs7-signature ||
        $(mime_param "$ct" protocol | tr '[:upper:]' '[:lower:]') == application/x-pkcs7-signature ]] || return 1
    return 0
}

smime_micalg() { mime_param "$(msg_header "$1" content-type)" micalg; }

# mime_part FILE INDEX: the exact bytes of body part INDEX (1-based) of
# the multipart entity in FILE: from after the CRLF ending the INDEX-th
# boundary line up to (not including) the CRLF before the next boundary
# line.  Fails if the part is not terminated by a boundary line.
mime_part() {
    local f=$1 idx=$2 ct b
    ct=$(msg_header "$f" content-type)
    b=$(mime_param "$ct" boundary)
    if [[ -z $b ]]; then
        echo "mime_part: $f: no boundary parameter" >&2
        return 1
    fi
    LC_ALL=C awk -v b="--$b" -v want="$idx" '
        BEGIN { ORS = ""; k = 0 }
        { line = $0; sub(/\r$/, "", line) }
        line == b || line == b "--" {
            if (k == want) { done = 1; exit }
            if (line == b "--") exit
            k++; n = 0; next
        }
        k == want { if (n++) printf "\r\n"; printf "%s", line }
        END { exit done ? 0 : 1 }
    ' "$f" || {
        echo "mime_part: $f: part $idx not found or not terminated" >&2
        return 1
    }
}

# mime_body FILE: the body of the entity in FILE (after the first empty
# line), lines joined with CRLF, no CRLF added at the end.
mime_body() {
    LC_ALL=C awk '
        BEGIN { ORS = "" }
        { line = $0; sub(/\r$/, "", line) }
        !inbody { if (line == "") inbody = 1; next }
        { if (n++) printf "\r\n"; printf "%s", line }
    ' "$1"
}

# mime_decode FILE: the decoded body of the entity in FILE
# (Content-Transfer-Encoding base64, quoted-printable or identity).
# Quoted-printable is decoded with perl's MIME::QuotedPrint (perl is a
# dependency of swaks), which turns CRLF line ends into LF.
mime_decode() {
    local cte
    cte=$(msg_header "$1" content-transfer-encoding | tr '[:upper:]' '[:lower:]')
    case $cte in
        base64) mime_body "$1" | base64 -d -i ;;
        quoted-printable)
            # decode_qp wants "=\n" for a soft break; a body that ends in
            # "=" (soft break before the delimiter CRLF) is valid QP, so
            # add a line end and take it off again.  Output lines end in LF.
            mime_body "$1" | perl -MMIME::QuotedPrint -e '
                binmode STDIN; binmode STDOUT; local $/;
                my $b = <STDIN> // ""; my $d = decode_qp($b . "\r\n");
                $d =~ s/\n\z// unless $b =~ /=\z/; print $d' ;;
        *) mime_body "$1" ;;
    esac
}

# smime_split FILE DATA_OUT SIG_OUT: the signed first part, byte-exact,
# and the DER signature (openssl cms -cmsout: no verification involved).
smime_split() {
    local f=$1 data=$2 sig=$3
    mime_part "$f" 1 >"$data" || return 1
    openssl cms -cmsout -in "$f" -outform DER -out "$sig" 2>/dev/null || {
        echo "smime_split: $f: openssl cms -cmsout failed" >&2
        return 1
    }
}

# openssl_verify FILE CAFILE [LOG]: openssl cms -verify against CAFILE
# with the chain taken from the signature.
openssl_verify() {
    local f=$1 ca=$2 log=${3:-/dev/null}
    openssl cms -verify -CAfile "$ca" -in "$f" -out /dev/null >"$log" 2>&1
}

# gpgsm_home VAR CAFILE...: create a GNUPGHOME that trusts the first CA
# file (a root) and knows the others; its path is stored in VAR.  Its
# gpg-agent is stopped by e2e_cleanup.
gpgsm_home() {
    local _var=$1 h ca=$2 fpr
    shift
    h=$(mktemp -d "${TMPDIR:-/tmp}/segel-gnupg.XXXXXX")
    chmod 0700 "$h"
    E2E_GNUPGHOMES+=("$h")
    E2E_REMOVE_DIRS+=("$h")
    cat >"$h/gpgsm.conf" <<EOF
disable-crl-checks
disable-trusted-cert-crl-check
disable-policy-checks
disable-dirmngr
EOF
    # "disable-dirmngr" exists in GnuPG >= 2.1; drop it if unknown.
    if ! GNUPGHOME=$h gpgsm --batch --gpgconf-test >/dev/null 2>&1; then
        sed -i '/^disable-dirmngr$/d' "$h/gpgsm.conf"
    fi
    echo "allow-mark-trusted" >"$h/gpg-agent.conf"
    fpr=$(openssl x509 -in "$ca" -noout -fingerprint -sha1 | sed 's/.*=//')
    printf '%s S relax\n' "$fpr" >"$h/trustlist.txt"
    local c
    for c in "$@"; do
        GNUPGHOME=$h gpgsm --batch --import "$c" >>"$h/import.log" 2>&1 || {
            cat "$h/import.log" >&2
            return 1
        }
    done
    printf -v "$_var" '%s' "$h"
}

# gpgsm_verify GNUPGHOME FILE [LOG]: split FILE and verify with gpgsm.
gpgsm_verify() {
    local h=$1 f=$2 log=${3:-/dev/null} tmp rc
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/segel-split.XXXXXX")
    if ! smime_split "$f" "$tmp/data" "$tmp/sig.p7s" 2>"$log"; then
        rm -rf -- "$tmp"
        return 1
    fi
    GNUPGHOME=$h gpgsm --batch --status-fd 1 --verify "$tmp/sig.p7s" "$tmp/data" \
        >"$tmp/out" 2>&1
    rc=$?
    cat "$tmp/out" >"$log"
    # Good signature AND a fully valid chain to the trusted root.
    if ((rc == 0)) && grep -q '^\[GNUPG:\] GOODSIG' "$tmp/out" &&
        grep -q '^\[GNUPG:\] TRUST_FULLY' "$tmp/out"; then
        rc=0
    else
        rc=1
    fi
    rm -rf -- "$tmp"
    return "$rc"
}

# has_8bit FILE: the file has a byte > 127.
has_8bit() { [[ $(LC_ALL=C tr -d '\000-\177' <"$1" | wc -c) -gt 0 ]]; }
