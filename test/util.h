/*
 * Helpers shared by the integration tests: a process watchdog, running a
 * loop until a condition holds, and checking that nothing is left on a base.
 * Uses only libevent (no gapi code), like the test server.
 */
#ifndef GAPI_TEST_UTIL_H
#define GAPI_TEST_UTIL_H

struct event_base;

/* Abort the whole test program (with a TAP "Bail out!") after seconds. */
void tu_watchdog(unsigned seconds);

/* Run the loop until *counter >= target or timeout_ms passes.
 * Returns 0 when the target was reached, -1 on timeout. */
int tu_run_until(struct event_base *base, const int *counter, int target, unsigned timeout_ms);

/* Run the loop for ms milliseconds. */
void tu_run_for(struct event_base *base, unsigned ms);

/* Events still added or active on base (after letting pending finalizers
 * run with one non-blocking loop pass). 0 means clean. */
int tu_events_left(struct event_base *base);

/* A TCP port on 127.0.0.1 that refuses connections (bound, then closed). */
int tu_closed_port(void);

/* A listening socket on 127.0.0.1 that never accepts: connections complete
 * the TCP handshake and then hear nothing. Returns fd, sets *port. */
int tu_silent_listener(int *port);

#endif
