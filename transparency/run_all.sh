#!/usr/bin/env bash
# Runs the transparency proof on every supported Django/Python pair, one after
# the other, and ends with "transparency: N passed, N failed".
# Exit status: 0 when every pair passed, 1 otherwise.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

pairs=(
    "django>=5.2,<5.3|3.11"
    "django>=6.0,<6.1|3.12"
    "django>=6.1,<6.2|3.13"
)

passed=0
failed=0
summary=()
for pair in "${pairs[@]}"; do
    spec="${pair%%|*}"
    python="${pair##*|}"
    echo
    echo "######## $spec on Python $python ########"
    if python3 "$here/run.py" "$spec" "$python" "$@"; then
        passed=$((passed + 1))
        summary+=("PASS  $spec on Python $python")
    else
        status=$?
        failed=$((failed + 1))
        summary+=("FAIL  $spec on Python $python (exit $status)")
    fi
done

echo
echo "######## summary ########"
printf '%s\n' "${summary[@]}"
echo "transparency: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
