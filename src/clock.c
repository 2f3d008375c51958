/* clock.c: the monotonic and wall clocks (clock.h) and the UTC stamps of log lines, run directories and
 * status files. */
#define _POSIX_C_SOURCE 200809L
#include "ipr/clock.h"

#include <time.h>

static double seconds_of(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double ipr_clock_monotonic_s(void) { return seconds_of(CLOCK_MONOTONIC); }

double ipr_clock_wall_s(void) { return seconds_of(CLOCK_REALTIME); }

void ipr_clock_utc_stamp(int64_t epoch, char *out, size_t cap, int compact) {
    time_t t = (time_t)epoch;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, compact ? "%Y%m%dT%H%M%SZ" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}
