/* tiny: the command bench/actions.sh runs per request. It appends to the
 * file named by its first argument: one byte, or, given a second argument
 * (the request's number), a line "<number> <wall clock in ns>" so the load
 * generator can join it with the request's send time. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0) return 1;
	char buf[64];
	int n = 1;
	buf[0] = 'x';
	if (argc > 2) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		n = snprintf(buf, sizeof buf, "%s %lld\n", argv[2],
			     (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	}
	if (write(fd, buf, n) != n) return 1;
	return close(fd) != 0;
}
