#!/bin/sh
# Fails when an #include points up the layers:
#   util <- smime <- keystore, policy <- milter, tools
# (a directory may include only itself and the layers below it).
set -u
status=0
check() { # dir, allowed dirs...
	d=$1
	shift
	[ -d "$d" ] || return 0
	grep -rnE '^#[[:space:]]*include[[:space:]]+"' "$d" --include='*.c' --include='*.h' |
	while IFS= read -r hit; do
		inc=$(printf '%s' "$hit" | sed -E 's/.*include[[:space:]]+"([^"]*)".*/\1/')
		case "$inc" in
		*/*) top=${inc%%/*} ;;
		*) continue ;; # same directory
		esac
		ok=0
		for a in "$@"; do [ "$top" = "$a" ] && ok=1; done
		if [ $ok = 0 ]; then
			echo "layering: $hit: $d may not include $top/"
			echo x >>"$tmp"
		fi
	done
}
tmp=$(mktemp)
check util util
check smime util smime
check keystore util smime keystore
check policy util smime policy
check milter util smime keystore policy milter
check tools util smime keystore policy milter tools
if [ -s "$tmp" ]; then status=1; else echo "layering: ok"; fi
rm -f "$tmp"
exit $status
