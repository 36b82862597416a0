#!/usr/bin/env bash
# deps.sh - check Postern's Debian build and test dependencies.
#
# As root, installs what is missing with apt-get (non-interactive); as any
# other user, prints the exact apt-get line to run and fails.
# Later features add their packages to the lists below.
set -euo pipefail

BUILD_PKGS=(
	build-essential pkg-config
	libssl-dev libsasl2-dev heimdal-dev libldap-dev libdb-dev zlib1g-dev libcrypt-dev
)
TEST_PKGS=(
	python3 python3-pytest python3-pytest-xdist perl openssl swaks
	clang libclang-rt-14-dev
	dovecot-sieve
	fetchmail curl
	mutt
	sieve-connect libgssapi-perl
	postfix unbound ldnsutils
	inn2 sasl2-bin
	heimdal-kdc heimdal-clients slapd ldap-utils python3-gssapi
	libsasl2-modules libsasl2-modules-gssapi-heimdal
)

# inn2 (INN, the real NNTP peer of the news-gw tests): its post-install step
# runs innconfval, which fails when the host name has no domain ("hostname
# does not resolve or domain not set"). That leaves inn2 half-configured and
# every later apt-get exits non-zero. inn2_repair gives /etc/news/inn.conf a
# domain: line and configures the pending packages again (twice: the first
# run may stop at inn2 before the others). Safe to call at any time.
inn2_domain_fix() {
	local conf=/etc/news/inn.conf
	[ -f "$conf" ] || return 0
	grep -Eq '^[[:space:]]*domain:[[:space:]]*[^[:space:]]' "$conf" && return 0
	sed -i -E '/^[[:space:]]*#?[[:space:]]*domain:/d' "$conf"
	echo "domain: localdomain" >>"$conf"
	echo "deps: set 'domain: localdomain' in $conf (inn2 needs a domain)"
}
inn2_repair() {
	local status
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' inn2 2>/dev/null || true)
	case "$status" in
	ii*|"") return 0 ;;
	esac
	echo "deps: inn2 is not fully configured (dpkg: '$status'): repairing"
	inn2_domain_fix
	dpkg --configure -a || { inn2_domain_fix; dpkg --configure -a; } || true
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' inn2 2>/dev/null || true)
	case "$status" in
	ii*) ;;
	*) echo "deps: inn2 still not configured (dpkg: '$status')" >&2; return 1 ;;
	esac
}
if [ "$(id -u)" -eq 0 ]; then
	inn2_repair
fi

missing=()
for p in "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing+=("$p") ;;
	esac
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all build and test dependencies are installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: install them with:" >&2
	echo "  sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# postfix (for smtp-sink/smtp-source and the relay benchmark) asks how to
# configure itself: answer "No configuration" before installing it
echo "postfix postfix/main_mailer_type select No configuration" |
	debconf-set-selections
apt-get update -qq || apt-get update
if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
	# most likely inn2's post-install (see inn2_repair); anything else
	# fails again on the second try
	inn2_repair
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
inn2_repair
