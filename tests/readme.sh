#!/bin/bash
# The README's examples, run as pasted: every ```console block in README.md
# and k8s/README.md that follows a line `<!-- test -->` (or
# `<!-- test: TOOL... -->`, naming the clients it needs: docker, podman,
# ctr, skopeo, server, repo) is run against a fresh quinistry, and what each
# command prints is compared with the lines under it. A marked ```sh block
# (commands without output) runs as one script under `set -e`: it must
# exit 0. Blocks marked `repo` run in a copy of the repository's tracked
# files (for `make` and the like), the others in a scratch directory.
#
#   tests/readme.sh            run and compare (one check per command)
#   tests/readme.sh --update   also rewrite the examples' digests and sizes
#                              (and the outputs they appear in) from this
#                              build, in both files; the binary changes them
#
# The block format: `$ ` starts a command (a line ending in `\` continues
# it on the next line); the lines after it, up to the next `$ `, are its
# output, stdout and stderr together. A line `…` stands for any number of
# lines left out. `Date:` lines match any date. Commands of one block run
# in one bash (with pipefail), so a variable set in one is seen by the next;
# a command that exits non-zero fails its check.
#
# What differs from a user's machine, on purpose and only this:
#  - the port numbers 8080 to 8089 in commands and outputs are replaced by
#    free ports (8080 becomes one, 8081 another...);
#  - the block marked `server` is not run as a command: its command starts
#    the server the other blocks use, and its output is the server's
#    start-up lines;
#  - commands run in a scratch directory holding ./quinistry (the binary
#    under test), with TZ=UTC, and after `docker|podman run -d ... -e
#    PORT=N` the next command waits (at most 10 s) until port N answers;
#  - docker and ctr reach the private daemons of tests/daemons.sh (ctr in
#    its own namespace), podman uses a private store.
#
# Env: QUINISTRY (binary, default ./quinistry), README_FILES, CI=true (a missing client
# is a failure, else a skip), QT_DAEMONS_ENV (see tests/daemons.sh).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/clientlib.sh || exit 1

UPDATE=0
[ "${1:-}" = --update ] && UPDATE=1
FILES=${README_FILES:-README.md k8s/README.md} # another list: for trying a draft

begin_suite qt-readme
TAG=quinistry # the README names its containers quinistry-N
CTR_NS=qt-readme
PM_STORES=(1)

# podman's settings as files, so that the README's podman commands run
# unchanged: the store under $T, as tests/clientlib.sh's pm() has it.
podman_env() {
	local s=$T/podman1
	mkdir -p "$s/tmp" || return 1
	printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' \
		"$s/root" "$s/run" >"$T/storage.conf"
	printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n%s\n%s\n' \
		'runtime = "runc"' "tmp_dir = \"$s/tmp\"" >"$T/containers.conf"
	export CONTAINERS_STORAGE_CONF=$T/storage.conf CONTAINERS_CONF=$T/containers.conf
}

# Which of the clients a block may name are usable here.
ready_tools() {
	READY="server"
	have git && git rev-parse --git-dir >/dev/null 2>&1 && READY="$READY repo"
	have skopeo && READY="$READY skopeo"
	setup_daemons
	docker_ready "readme: docker" >/dev/null && READY="$READY docker"
	export CONTAINERD_NAMESPACE=qt-readme
	ctr_ready "readme: ctr" >/dev/null && READY="$READY ctr"
	if have podman && have runc && [ "$(id -u)" = 0 ] && podman_env; then
		PODMAN_OK=1
		READY="$READY podman"
	fi
}

suite_needs readme: curl python3 tar sha256sum
mkdir -p "$T/work" && ln -s "$Q" "$T/work/quinistry" || exit 1
ready_tools
export READY UPDATE CI
# shellcheck disable=SC2086 # FILES is a list
python3 tests/readme.py "$T/work" $FILES
rc=$?
# The config digest the server printed: the clean-up removes docker's image.
CFG=$(cat "$T/work/.config-digest" 2>/dev/null)
exit $rc
