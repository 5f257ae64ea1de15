/*
 * A tiny DNS server for tests: UDP on 127.0.0.1, port 0, built on libevent's
 * evdns server API and run on the event_base it is given. Like the test
 * server it uses no gapi code.
 *
 * Answers (one reply per request, RD echoed, no AA, TTL 60):
 *   a name added with td_dns_add_a, type A     NOERROR + its A records
 *   a name added with td_dns_add_a, other type NOERROR, no answer (so AAAA
 *                                              gets "no data", not an error)
 *   any other name, any type                   NXDOMAIN (rcode 3)
 * Names compare without regard to ASCII case (evdns clients randomize the
 * case of the names they ask for) and with one trailing dot ignored. A
 * request with several questions gets NXDOMAIN if any name is unknown.
 *
 * Point an evdns_base at it with
 *   dns = evdns_base_new(base, 0);
 *   evdns_base_nameserver_ip_add(dns, "127.0.0.1:PORT");
 *
 * Threads: td_dns_new and td_dns_free run on the thread that runs the base
 * (or while its loop is not running); td_dns_add_a and td_dns_queries lock an
 * internal mutex and may be called from any thread.
 */
#ifndef GAPI_TEST_DNS_SERVER_H
#define GAPI_TEST_DNS_SERVER_H

struct event_base;

typedef struct td_dns td_dns;

/* Binds 127.0.0.1:0 (UDP) and serves on base. NULL (and why, on stderr) on
 * failure. */
td_dns *td_dns_new(struct event_base *base);
/* The UDP port it listens on. */
int td_dns_port(td_dns *d);
/* Adds an A record: name resolves to ipv4 (dotted quad). Calling it again
 * for the same name adds another address (answers list them in the order
 * added). Aborts with a message if ipv4 is not an IPv4 address (a test bug,
 * better loud than a confusing NXDOMAIN). */
void td_dns_add_a(td_dns *d, const char *name, const char *ipv4);
/* DNS requests (messages) received so far, answered or not. */
unsigned td_dns_queries(td_dns *d);
/* Closes the port (and its socket) and frees everything; leaves no event on
 * the base. NULL is a no-op. */
void td_dns_free(td_dns *d);

#endif
