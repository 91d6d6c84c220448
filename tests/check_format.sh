#!/usr/bin/env bash
# Fails when a tracked C++ file is not clang-formatted (.clang-format: Google, 100 columns).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v clang-format >/dev/null || { echo "clang-format is not installed" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.h' '*.cc' 2>/dev/null || find . -name '*.h' -o -name '*.cc')
[ ${#files[@]} -gt 0 ] || { echo "no C++ files found" >&2; exit 1; }
clang-format --dry-run -Werror "${files[@]}"
echo "format: ${#files[@]} files clean"
