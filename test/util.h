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

/* Listeners on 127.0.0.1, port 0 (an evconnlistener on base) that answer
 * every connection they accept the same wrong way. Made and freed on the
 * thread that runs base (or while its loop is not running); NULL with a
 * message on stderr on failure.
 *
 * Garbage: writes "HTTP/1.1 400 Bad Request\r\n\r\n this is not TLS" at
 * once (before reading anything), then, once that is flushed, a FIN
 * (shutdown SHUT_WR). It reads and discards whatever the peer sends until
 * the peer closes, so the peer gets every byte and a clean FIN, never a
 * reset. A TLS client fails its handshake (the reply is not a TLS record).
 *
 * Reset: accepts and at once closes with SO_LINGER {1, 0}: an RST, no byte.
 */
typedef struct tu_listener tu_listener;
tu_listener *tu_garbage_listener(struct event_base *base, int *port);
tu_listener *tu_reset_listener(struct event_base *base, int *port);
/* Connections accepted so far. Any thread (locks an internal mutex). */
unsigned tu_listener_accepted(const tu_listener *l);
/* Stops listening and closes every connection still open. NULL is a no-op.
 * Connections closed here are freed through libevent's deferred finalizers:
 * one EVLOOP_NONBLOCK pass (tu_events_left does one) runs them. */
void tu_listener_free(tu_listener *l);

#endif
