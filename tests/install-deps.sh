#!/bin/sh
# Installs the Debian packages Segel needs to build, test and run its demo.
# As root it runs apt-get itself; otherwise it prints the exact command.
set -eu
PKGS="build-essential pkg-config libssl-dev libmilter-dev libetpan-dev
libconfig-dev libsqlite3-dev libcurl4-gnutls-dev libcmocka-dev sqlite3
openssl postfix sasl2-bin libsasl2-modules swaks gpgsm miltertest
clang-format clang libclang-rt-14-dev valgrind python3 softhsm2
libengine-pkcs11-openssl iproute2 procps libnss3-tools"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
ensure_user() {
	# The milter drops privileges to this user (segelctl init picks it up).
	if ! getent passwd segel >/dev/null && [ "$(id -u)" = 0 ]; then
		useradd --system --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin segel
	fi
}
if [ -z "$missing" ]; then
	ensure_user
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "segel: missing packages; run as root:" >&2
	echo "  apt-get install -y$missing" >&2
	exit 1
fi
echo "segel: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure the system instance; we only use private ones.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
ensure_user
