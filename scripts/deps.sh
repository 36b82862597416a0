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
	python3 python3-pytest perl openssl swaks
	clang libclang-rt-14-dev
	dovecot-sieve
	fetchmail curl
	mutt
	sieve-connect
	postfix unbound
)

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
apt-get install -y -q --no-install-recommends "${missing[@]}"
