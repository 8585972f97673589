/* skew.c: an LD_PRELOAD library for clock faults in tests. It adds
 * an offset, in milliseconds, to the wall clock of the process it is loaded
 * into: clock_gettime(CLOCK_REALTIME[_COARSE]), gettimeofday and time. The
 * offset is the integer in the file named by $FENCEKIT_SKEW_FILE, read again
 * at most every 50 ms of CLOCK_MONOTONIC, which it leaves alone (so does
 * Redis for its own timers: a jump shows in TIME and in key expiry).
 *
 * It calls the kernel through syscall(2) only: no libc clock function that
 * could come back into these, and no allocation (Debian's redis-server links
 * jemalloc, which reads the clock while it starts).
 *
 * Built by package skew (Build) with: cc -O2 -shared -fPIC -o libskew.so skew.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long skew_ms;
static long long next_read_ns;

static long long mono_ns(void) {
	struct timespec t;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void reread(void) {
	long long now = mono_ns();
	if (now < next_read_ns) return;
	next_read_ns = now + 50000000LL;
	const char *path = getenv("FENCEKIT_SKEW_FILE");
	if (path == NULL) return;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
	if (fd < 0) return;
	char buf[32];
	long n = (long)syscall(SYS_read, fd, buf, sizeof buf - 1);
	syscall(SYS_close, fd);
	if (n <= 0) return;
	buf[n] = 0;
	int neg = buf[0] == '-';
	long long v = 0;
	for (const char *c = buf + neg; *c >= '0' && *c <= '9'; c++) v = v * 10 + (*c - '0');
	skew_ms = neg ? -v : v;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
	int r = (int)syscall(SYS_clock_gettime, id, ts);
	if (r != 0 || (id != CLOCK_REALTIME && id != CLOCK_REALTIME_COARSE)) return r;
	reread();
	long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + skew_ms * 1000000LL;
	ts->tv_sec = ns / 1000000000LL;
	ts->tv_nsec = ns % 1000000000LL;
	return 0;
}

int gettimeofday(struct timeval *tv, void *tz) {
	(void)tz;
	struct timespec ts;
	int r = clock_gettime(CLOCK_REALTIME, &ts);
	if (r == 0 && tv != NULL) {
		tv->tv_sec = ts.tv_sec;
		tv->tv_usec = ts.tv_nsec / 1000;
	}
	return r;
}

time_t time(time_t *out) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (out != NULL) *out = ts.tv_sec;
	return ts.tv_sec;
}
