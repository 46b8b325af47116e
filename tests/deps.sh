#!/usr/bin/env bash
# Install what `make test` needs on a fresh Debian machine that has only gcc
# and make: curl and python3 for the protocol suite, clang and its sanitizer
# runtime for the fuzzer, valgrind, musl for the static build. Only what is
# missing is installed, and only as root; otherwise it says what to install.
# The real clients and daemons (docker, podman, containerd, skopeo) are
# installed by .ci/run, or by hand: see README.md.
set -u
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have curl || need+=(curl ca-certificates)
have python3 || need+=(python3)
have clang || need+=(clang)
have valgrind || need+=(valgrind)
have musl-gcc || need+=(musl-tools)
have tar || need+=(tar)
if have clang && ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
	need+=(libclang-rt-14-dev)
fi
[ ${#need[@]} = 0 ] && exit 0
if [ "$(id -u)" = 0 ] && have apt-get; then
	echo "deps: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null ||
		echo "deps: apt-get install ${need[*]} failed" >&2
else
	echo "deps: missing ${need[*]}; as root: apt-get install ${need[*]}" >&2
fi
exit 0
