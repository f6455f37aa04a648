/*
 * mapguard.c - SIGBUS-safe reads of memory mappings (see mapguard.h).
 *
 * Each thread has a pointer to the jump buffer of its innermost
 * map_guarded call (NULL outside one).  sigsetjmp does not save the signal
 * mask, so a guard costs no system call; instead the handler, before it
 * jumps, restores the mask of the interrupted code from its ucontext (what
 * returning from the handler would do: the kernel, or a sanitizer's
 * wrapper around the handler, blocks signals while it runs).  The pointer
 * uses the initial-exec TLS model so that reading it in the handler never
 * allocates.
 */
#include "mapguard.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <ucontext.h>

static __thread sigjmp_buf *guard_jb __attribute__((tls_model("initial-exec")));
static struct sigaction prev_bus;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_err;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	sigjmp_buf *jb = guard_jb;
	if (jb) {
		pthread_sigmask(SIG_SETMASK, &((ucontext_t *)uc)->uc_sigmask, NULL);
		siglongjmp(*jb, 1);
	}
	/* Not a guarded read: what would have happened without this handler. */
	if (prev_bus.sa_flags & SA_SIGINFO) {
		prev_bus.sa_sigaction(sig, si, uc);
		return;
	}
	if (prev_bus.sa_handler != SIG_DFL && prev_bus.sa_handler != SIG_IGN) {
		prev_bus.sa_handler(sig);
		return;
	}
	signal(SIGBUS, SIG_DFL);
	raise(SIGBUS);
}

static void install(void)
{
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &prev_bus) != 0)
		init_err = -errno;
}

int map_guard_init(void)
{
	pthread_once(&init_once, install);
	return init_err;
}

int map_guarded(int (*fn)(void *arg), void *arg)
{
	sigjmp_buf jb;
	sigjmp_buf *outer = guard_jb;
	if (sigsetjmp(jb, 0)) {
		guard_jb = outer;
		return MAPGUARD_FAULT;
	}
	guard_jb = &jb;
	int r = fn(arg);
	guard_jb = outer;
	return r;
}
