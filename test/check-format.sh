#!/bin/sh
# Every C source and header is formatted as .clang-format says (TAP).
# Skips when clang-format is not installed (scripts/deps.sh installs it).
cd "${top_srcdir:-.}" || exit 1
if ! command -v clang-format >/dev/null 2>&1; then
    echo "1..0 # SKIP clang-format not installed"
    exit 0
fi
n=0; fail=0
for f in $(ls include/*.h src/*/*.[ch] test/*.[ch] examples/*.c bench/*.c fuzz/*.[ch] 2>/dev/null); do
    n=$((n+1))
    if clang-format --style=file "$f" | cmp -s - "$f"; then
        echo "ok $n - $f formatted"
    else
        echo "not ok $n - $f differs from clang-format (run: clang-format -i $f)"; fail=1
    fi
done
echo "1..$n"
exit $fail
