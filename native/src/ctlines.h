// ctnetlink events as NDJSON lines in C (ctlines.c): used by nlsock.c's
// conntrack mode, and exported as conntrackLines() for the tests that hold
// it to the JavaScript decoder's bytes.
#ifndef CTPIPE_CTLINES_H
#define CTPIPE_CTLINES_H

#include <stddef.h>
#include <stdint.h>

/** Characters of an event `ts`: 2026-11-23T07:41:33.965873Z */
#define CT_TS_LEN 27
/** ct_lines_datagram(): the datagram is the JavaScript decoder's. */
#define CT_LINES_DECLINE (-1)
/** ct_lines_datagram(): the lines need more room than `cap`. */
#define CT_LINES_NO_ROOM (-2)

typedef struct {
  char ts[CT_TS_LEN + 1];
  /** `,"host":"..."` as the JSON writer writes it, or NULL for no host field. */
  const char *host;
  size_t host_len;
  /** Keep only the protocol numbers whose bit is set here, unless all_protos. */
  uint8_t protos[32];
  int all_protos;
  /** Keep only this family (AF_INET, AF_INET6), or 0 for both. */
  int family;
} ct_lines_opts;

/** The current time as an event `ts`. */
void ct_lines_now(char out[CT_TS_LEN + 1]);

/**
 * The lines of the conntrack events in one datagram, at `out` (room: `cap`
 * bytes). Returns the bytes written and adds to *emitted (lines written) and
 * *received (events decoded, filtered out or not); or CT_LINES_DECLINE or
 * CT_LINES_NO_ROOM, with nothing added.
 */
long ct_lines_datagram(const uint8_t *d, size_t len, char *out, size_t cap, const ct_lines_opts *o, uint32_t *emitted, uint32_t *received);

#endif
