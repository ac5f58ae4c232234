#!/bin/sh
# Fails when a C file differs from what clang-format makes of it.
set -u
bad=0
for f in $(git ls-files '*.c' '*.h') $(git ls-files --others --exclude-standard '*.c' '*.h'); do
	[ -f "$f" ] || continue
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "format: $f is not clang-formatted (run: make format)"
		bad=1
	fi
done
[ $bad = 0 ] && echo "format: ok"
exit $bad
