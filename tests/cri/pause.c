/*
 * The pod sandbox's first process, for tests/cri.sh: the CRI runtime starts
 * it to hold the pod's namespaces open, and it does nothing else. The usual
 * image for this (registry.k8s.io/pause) cannot be fetched offline, so the
 * test builds this one, statically linked, and packs it as an image.
 *
 * It sleeps until a signal comes; it reaps any child that ends (as PID 1
 * of a pod with a shared PID namespace must); on SIGTERM or SIGINT it exits
 * with 0. The signals stay blocked except inside sigsuspend(), so that one
 * arriving between the test of `stop` and the sleep is not lost (a plain
 * pause() loop would then sleep until SIGKILL).
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static void on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static void handle(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(sig, &sa, NULL);
}

int main(void)
{
	sigset_t block, wait_set;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &wait_set);
	sigdelset(&wait_set, SIGTERM);
	sigdelset(&wait_set, SIGINT);
	sigdelset(&wait_set, SIGCHLD);
	handle(SIGTERM, on_stop);
	handle(SIGINT, on_stop);
	handle(SIGCHLD, on_child);
	while (!stop)
		sigsuspend(&wait_set);
	return EXIT_SUCCESS;
}
