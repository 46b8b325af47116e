/*
 * noipv6 COMMAND [ARG...]: run COMMAND as on a kernel without IPv6.
 *
 * A seccomp filter makes socket(AF_INET6, ...) fail with EAFNOSUPPORT,
 * which is what a kernel booted with ipv6.disable=1 answers; every other
 * system call, and socket() for other families, goes through. The filter
 * is inherited across execve(), so COMMAND and its children see it.
 * PR_SET_NO_NEW_PRIVS lets an unprivileged user install it.
 *
 * Exit status: COMMAND's, or 125 when the filter cannot be installed
 * (no seccomp in this kernel, an architecture we do not know), 127 when
 * COMMAND cannot be run. tests/ops.sh uses it for the IPv4 fallback.
 */
#define _DEFAULT_SOURCE

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

/* System call numbers depend on the ABI, so the filter checks that the
 * call comes through the ABI this program was built for. */
#if defined(__x86_64__) && defined(__ILP32__)
#define OUR_ARCH 0 /* x32 */
#elif defined(__x86_64__)
#define OUR_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define OUR_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define OUR_ARCH AUDIT_ARCH_I386
#elif defined(__riscv) && __riscv_xlen == 64
#define OUR_ARCH AUDIT_ARCH_RISCV64
#else
#define OUR_ARCH 0
#endif

#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS SECCOMP_RET_KILL
#endif

/* x86_64 also takes x32 calls, numbered from __X32_SYSCALL_BIT up, under
 * the same audit arch: they are stopped too. Elsewhere no call number
 * reaches this bound. */
#ifdef __X32_SYSCALL_BIT
#define FOREIGN_NR __X32_SYSCALL_BIT
#else
#define FOREIGN_NR 0xffffffffU
#endif

/* The low 32 bits of args[0] (the int domain): where they sit in the u64 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define ARG0_LOW (offsetof(struct seccomp_data, args[0]) + 4)
#else
#define ARG0_LOW offsetof(struct seccomp_data, args[0])
#endif

static int install_filter(void)
{
	struct sock_filter code[] = {
		/* 0-3: another ABI's call numbers mean other calls: stop */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, OUR_ARCH, 0, 7),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, FOREIGN_NR, 5, 0),
		/* 4-7: socket(AF_INET6, ...): no such family here */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_LOW),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 0, 1),
		BPF_STMT(BPF_RET | BPF_K,
		    SECCOMP_RET_ERRNO | (EAFNOSUPPORT & SECCOMP_RET_DATA)),
		/* 8: anything else goes through; 9: the stop */
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog;

	if (OUR_ARCH == 0) {
		fprintf(stderr, "noipv6: unknown architecture for seccomp\n");
		return -1;
	}
	prog.len = (unsigned short)(sizeof code / sizeof code[0]);
	prog.filter = code;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		fprintf(stderr, "noipv6: seccomp: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: noipv6 COMMAND [ARG...]\n");
		return 2;
	}
	if (install_filter() < 0)
		return 125;
	execvp(argv[1], argv + 1);
	fprintf(stderr, "noipv6: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
