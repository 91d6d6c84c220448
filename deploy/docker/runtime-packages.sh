#!/usr/bin/env bash
# Prints the Debian packages that provide the shared libraries BINARY... load (one a line,
# sorted), so that the runtime image installs exactly what the build links against.
#   deploy/docker/runtime-packages.sh build/ndx-queue build/ndx-worker
# Fails when a library belongs to no installed package.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
libs=$(ldd "$@" | awk '/=> \// {print $3}' | sort -u)
pkgs=()
for lib in $libs; do
  real=$(readlink -f "$lib")
  owner=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || true)
  [ -n "$owner" ] || { echo "runtime-packages: no package owns $lib" >&2; exit 1; }
  pkgs+=("${owner%%:*}")
done
printf '%s\n' "${pkgs[@]}" | sort -u
