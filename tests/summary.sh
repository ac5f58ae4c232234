#!/bin/sh
# Prints the total of the suites recorded in BUILDDIR/results.txt.
B=${1:-build}
[ -f "$B/results.txt" ] || { echo "no results"; exit 1; }
awk '{p += $2; f += $3} END {printf "%d passed, %d failed\n", p, f; exit (f > 0)}' "$B/results.txt"
