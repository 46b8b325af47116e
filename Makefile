# quinistry: `make` builds the static server, `make run` serves on :8080,
# `make test` builds and runs every test. See README.md.

CFLAGS_STD = -std=c99 -Wall -Wextra -pedantic
# Fixed, not ?=: a CFLAGS in the environment would change the bytes, and a
# rebuild of `quinistry source` must give the same binary (README).
CFLAGS = -O2
# Static, with musl where it is installed (a ~100 KiB binary), else glibc.
CC_STATIC := $(shell command -v musl-gcc >/dev/null 2>&1 && echo musl-gcc || echo $(CC))
SRC = quinistry.c sha256.c
HDR = sha256.h

all: quinistry

# The image is the binary, so its size is the pull: drop unused code and
# data (gc-sections), unwind tables (C has no exceptions), symbols (-s) and
# the padding that aligns functions and branch targets (~1.2 KiB of our
# code; the code segment is whole pages in the file, so that was 4 KiB).
SIZE_FLAGS = -ffunction-sections -fdata-sections -Wl,--gc-sections \
	-fno-asynchronous-unwind-tables -fno-unwind-tables \
	-falign-functions=1 -falign-jumps=1 -falign-loops=1 -falign-labels=1

quinistry: $(SRC) $(HDR) Makefile
	$(CC_STATIC) $(CFLAGS_STD) $(CFLAGS) $(SIZE_FLAGS) -static -s -o $@ $(SRC)

# Same program with AddressSanitizer and UndefinedBehaviorSanitizer.
quinistry-asan: $(SRC) $(HDR) Makefile
	$(CC) $(CFLAGS_STD) -O1 -g -fno-omit-frame-pointer \
	    -fsanitize=address,undefined -fno-sanitize-recover=all -o $@ $(SRC)
asan: quinistry-asan

# Installs what the tests need when it is missing (root on Debian).
deps:
	@tests/deps.sh

run: quinistry
	./quinistry

test: deps quinistry quinistry-asan
	./test.sh

bench: quinistry
	bench/bench.sh

fuzz:
	tests/fuzz.sh

clean:
	rm -rf quinistry quinistry-asan quinistry.tar quinistry-oci

.PHONY: all asan deps run test bench fuzz clean
