#!/bin/sh
# Every dynamic symbol libgapi exports must start with gapi_ (and none with
# gapi__, the internal prefix). TAP output.
lib="${top_builddir:-.}/.libs/libgapi.so"
if [ ! -f "$lib" ]; then
    echo "1..0 # SKIP no shared library built"
    exit 0
fi
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRW]$/ {print $3}' | sort)
n=0; fail=0
bad=$(printf '%s\n' "$syms" | grep -v '^gapi_' | grep -v '^_init$' | grep -v '^_fini$' || true)
n=$((n+1))
if [ -z "$bad" ]; then echo "ok $n - only gapi_ symbols exported"; else
    echo "not ok $n - foreign symbols exported"; printf '# %s\n' $bad; fail=1; fi
internal=$(printf '%s\n' "$syms" | grep '^gapi__' || true)
n=$((n+1))
if [ -z "$internal" ]; then echo "ok $n - no gapi__ internals exported"; else
    echo "not ok $n - internal symbols exported"; printf '# %s\n' $internal; fail=1; fi
count=$(printf '%s\n' "$syms" | grep -c '^gapi_')
n=$((n+1))
if [ "$count" -ge 20 ]; then echo "ok $n - $count public symbols exported"; else
    echo "not ok $n - only $count public symbols exported"; fail=1; fi
for s in gapi_client_new gapi_client_free gapi_request_send gapi_strerror; do
    n=$((n+1))
    if printf '%s\n' "$syms" | grep -qx "$s"; then echo "ok $n - $s exported"; else
        echo "not ok $n - $s missing"; fail=1; fi
done
echo "1..$n"
exit $fail
