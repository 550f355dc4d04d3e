// ctnetlink events as NDJSON lines, in C: ct-events' hot path. A datagram
// of conntrack events (include/uapi/linux/netfilter/nfnetlink_conntrack.h,
// nfnetlink.h, nf_conntrack_common.h) becomes the lines that
// src/netlink/conntrack.ts's decodeConntrack() and src/event-json.ts's
// LineWriter make of it, byte for byte, community_id included (SHA-1 here),
// with no JavaScript object per event. It handles the common events only:
// a datagram with anything else (an attribute it has no table entry for,
// labels, a helper, a security context, a counter past 2^53, anything
// malformed) is left to the JavaScript decoder whole (CT_LINES_DECLINE), so
// that `unknown` keys and error reports stay where they are written.
// Attribute tables are data, as in conntrack.ts, with the same slots.
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "ctlines.h"

#define NLMSG_HDRLEN 16
#define NLA_TYPE_MASK 0x3fff
#define NFNL_SUBSYS_CTNETLINK 1
#define IPCTNL_MSG_CT_NEW 0
#define IPCTNL_MSG_CT_DELETE 2
#define NLM_F_EXCL 0x200
#define NLM_F_CREATE 0x400
#define AF_INET_ 2
#define AF_INET6_ 10
/** Largest whole number a JavaScript number holds exactly (2^53 - 1). */
#define MAX_SAFE 9007199254740991ULL

// Slots of a tuple (CTA_TUPLE_*), relative to the tuple's first slot.
enum { T_SRC, T_SRC_LEN, T_DST, T_DST_LEN, T_SPORT, T_DPORT, T_PROTO, T_ICMP_TYPE, T_ICMP_CODE, T_ICMP_ID, T_ZONE, TUPLE_SLOTS };
// Slots of a counter pair (CTA_COUNTERS_*).
enum { C_PACKETS, C_BYTES };
// The message's slots.
enum {
  ORIG = 0, REPLY = ORIG + TUPLE_SLOTS, CORIG = REPLY + TUPLE_SLOTS, CREPLY = CORIG + 2,
  STATUS = CREPLY + 2, TIMEOUT, MARK, ID, ZONE, USE, SECMARK, TCP_STATE, SCTP_STATE, DCCP_STATE,
  START, STOP, EVENT_TS, HELPER, HELPER_END, SECCTX, SECCTX_END, LABELS, LABELS_END, SLOTS,
};

// Kinds of attribute, as in conntrack.ts.
enum { SKIP, U8, U16, U32, U64, ADDR, AT, SPAN, NEST };

typedef struct table table_t;
typedef struct {
  const char *name;   // NULL: no entry (an attribute this code does not know)
  uint8_t kind;
  uint8_t min;        // least payload bytes
  uint8_t size;       // ADDR: address bytes
  int16_t slot;
  const table_t *sub; // NEST
} spec_t;
struct table {
  const spec_t *specs;
  int n;
};

#define S_SKIP(nm) { nm, SKIP, 0, 0, 0, NULL }
#define S_U8(nm, sl) { nm, U8, 1, 0, sl, NULL }
#define S_U16(nm, sl) { nm, U16, 2, 0, sl, NULL }
#define S_U32(nm, sl) { nm, U32, 4, 0, sl, NULL }
#define S_U64(nm, sl) { nm, U64, 8, 0, sl, NULL }
#define S_ADDR(nm, sl, sz) { nm, ADDR, sz, sz, sl, NULL }
#define S_AT(nm, sl) { nm, AT, 8, 0, sl, NULL }
#define S_SPAN(nm, sl) { nm, SPAN, 0, 0, sl, NULL }
#define S_NEST(nm, t, sl) { nm, NEST, 0, 0, sl, &t }
#define TABLE(name, ...) \
  static const spec_t name##_specs[] = { __VA_ARGS__ }; \
  static const table_t name = { name##_specs, sizeof name##_specs / sizeof name##_specs[0] }

// CTA_IP_*
TABLE(IP_T,
  [1] = S_ADDR("CTA_IP_V4_SRC", T_SRC, 4), [2] = S_ADDR("CTA_IP_V4_DST", T_DST, 4),
  [3] = S_ADDR("CTA_IP_V6_SRC", T_SRC, 16), [4] = S_ADDR("CTA_IP_V6_DST", T_DST, 16));
// CTA_PROTO_*
TABLE(PROTO_T,
  [1] = S_U8("CTA_PROTO_NUM", T_PROTO), [2] = S_U16("CTA_PROTO_SRC_PORT", T_SPORT),
  [3] = S_U16("CTA_PROTO_DST_PORT", T_DPORT), [4] = S_U16("CTA_PROTO_ICMP_ID", T_ICMP_ID),
  [5] = S_U8("CTA_PROTO_ICMP_TYPE", T_ICMP_TYPE), [6] = S_U8("CTA_PROTO_ICMP_CODE", T_ICMP_CODE),
  [7] = S_U16("CTA_PROTO_ICMPV6_ID", T_ICMP_ID), [8] = S_U8("CTA_PROTO_ICMPV6_TYPE", T_ICMP_TYPE),
  [9] = S_U8("CTA_PROTO_ICMPV6_CODE", T_ICMP_CODE));
// CTA_TUPLE_*
TABLE(TUPLE_T,
  [1] = S_NEST("CTA_TUPLE_IP", IP_T, 0), [2] = S_NEST("CTA_TUPLE_PROTO", PROTO_T, 0),
  [3] = S_U16("CTA_TUPLE_ZONE", T_ZONE));
// CTA_PROTOINFO_*
TABLE(TCP_T,
  [1] = S_U8("CTA_PROTOINFO_TCP_STATE", TCP_STATE), [2] = S_SKIP("CTA_PROTOINFO_TCP_WSCALE_ORIGINAL"),
  [3] = S_SKIP("CTA_PROTOINFO_TCP_WSCALE_REPLY"), [4] = S_SKIP("CTA_PROTOINFO_TCP_FLAGS_ORIGINAL"),
  [5] = S_SKIP("CTA_PROTOINFO_TCP_FLAGS_REPLY"));
TABLE(SCTP_T,
  [1] = S_U8("CTA_PROTOINFO_SCTP_STATE", SCTP_STATE), [2] = S_SKIP("CTA_PROTOINFO_SCTP_VTAG_ORIGINAL"),
  [3] = S_SKIP("CTA_PROTOINFO_SCTP_VTAG_REPLY"));
TABLE(DCCP_T,
  [1] = S_U8("CTA_PROTOINFO_DCCP_STATE", DCCP_STATE), [2] = S_SKIP("CTA_PROTOINFO_DCCP_ROLE"),
  [3] = S_SKIP("CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ"), [4] = S_SKIP("CTA_PROTOINFO_DCCP_PAD"));
TABLE(PROTOINFO_T,
  [1] = S_NEST("CTA_PROTOINFO_TCP", TCP_T, 0), [2] = S_NEST("CTA_PROTOINFO_DCCP", DCCP_T, 0),
  [3] = S_NEST("CTA_PROTOINFO_SCTP", SCTP_T, 0));
// CTA_COUNTERS_*: the 64-bit pair is what current kernels send; 32-bit ones are legacy.
TABLE(COUNTERS_T,
  [1] = S_U64("CTA_COUNTERS_PACKETS", C_PACKETS), [2] = S_U64("CTA_COUNTERS_BYTES", C_BYTES),
  [3] = S_U32("CTA_COUNTERS32_PACKETS", C_PACKETS), [4] = S_U32("CTA_COUNTERS32_BYTES", C_BYTES),
  [5] = S_SKIP("CTA_COUNTERS_PAD"));
// CTA_TIMESTAMP_*
TABLE(TIMESTAMP_T,
  [1] = S_AT("CTA_TIMESTAMP_START", START), [2] = S_AT("CTA_TIMESTAMP_STOP", STOP),
  [3] = S_SKIP("CTA_TIMESTAMP_PAD"));
// CTA_HELP_*
TABLE(HELP_T, [1] = S_SPAN("CTA_HELP_NAME", HELPER), [2] = S_SKIP("CTA_HELP_INFO"));
// CTA_* (enum ctattr_type)
TABLE(CTA_T,
  [1] = S_NEST("CTA_TUPLE_ORIG", TUPLE_T, ORIG), [2] = S_NEST("CTA_TUPLE_REPLY", TUPLE_T, REPLY),
  [3] = S_U32("CTA_STATUS", STATUS), [4] = S_NEST("CTA_PROTOINFO", PROTOINFO_T, 0),
  [5] = S_NEST("CTA_HELP", HELP_T, 0), [6] = S_SKIP("CTA_NAT_SRC"), [7] = S_U32("CTA_TIMEOUT", TIMEOUT),
  [8] = S_U32("CTA_MARK", MARK), [9] = S_NEST("CTA_COUNTERS_ORIG", COUNTERS_T, CORIG),
  [10] = S_NEST("CTA_COUNTERS_REPLY", COUNTERS_T, CREPLY), [11] = S_U32("CTA_USE", USE),
  [12] = S_U32("CTA_ID", ID), [13] = S_SKIP("CTA_NAT_DST"), [14] = S_SKIP("CTA_TUPLE_MASTER"),
  [15] = S_SKIP("CTA_SEQ_ADJ_ORIG"), [16] = S_SKIP("CTA_SEQ_ADJ_REPLY"), [17] = S_U32("CTA_SECMARK", SECMARK),
  [18] = S_U16("CTA_ZONE", ZONE), [19] = S_SPAN("CTA_SECCTX", SECCTX), [20] = S_NEST("CTA_TIMESTAMP", TIMESTAMP_T, 0),
  [21] = S_SKIP("CTA_MARK_MASK"), [22] = S_SPAN("CTA_LABELS", LABELS), [23] = S_SKIP("CTA_LABELS_MASK"),
  [24] = S_SKIP("CTA_SYNPROXY"), [25] = S_SKIP("CTA_FILTER"), [26] = S_SKIP("CTA_STATUS_MASK"),
  [27] = S_AT("CTA_TIMESTAMP_EVENT", EVENT_TS));

// Names, as conntrack.ts has them.
static const char *const PROTO_NAMES[256] = {
  [1] = "icmp", [2] = "igmp", [6] = "tcp", [17] = "udp", [33] = "dccp", [47] = "gre", [58] = "icmpv6", [132] = "sctp", [136] = "udplite",
};
static const char *const TCP_STATES[] = { "NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2" };
static const char *const SCTP_STATES[] = { "NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED", "SHUTDOWN_SENT", "SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT", "HEARTBEAT_ACKED" };
static const char *const DCCP_STATES[] = { "NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT", "IGNORE", "INVALID" };
static const char *const STATUS_BITS[] = {
  "EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT", "DST_NAT", "SEQ_ADJUST", "SRC_NAT_DONE",
  "DST_NAT_DONE", "DYING", "FIXED_TIMEOUT", "TEMPLATE", "NAT_CLASH", "HELPER", "OFFLOAD", "HW_OFFLOAD",
};
#define COUNT(a) (int)(sizeof a / sizeof a[0])

static uint16_t u16h(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t u32h(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint32_t u16be(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t u32be(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t u64be(const uint8_t *p) { return (uint64_t)u32be(p) << 32 | u32be(p + 4); }

/** Walk the attributes in [s, e) by `t` into the slots from `base`; -1: leave it to JavaScript. */
static int walk(const table_t *t, const uint8_t *b, size_t s, size_t e, int base, int64_t *R) {
  while (s + 4 <= e) {
    size_t len = u16h(b + s);
    unsigned type = u16h(b + s + 2) & NLA_TYPE_MASK;
    if (len < 4 || s + len > e) return -1;
    const spec_t *a = (int)type < t->n ? &t->specs[type] : NULL;
    if (!a || !a->name) return -1; // kept as `unknown` by the JavaScript decoder
    if (len - 4 < a->min) return -1;
    size_t p = s + 4;
    int slot = base + a->slot;
    switch (a->kind) {
      case U8: R[slot] = b[p]; break;
      case U16: R[slot] = u16be(b + p); break;
      case U32: R[slot] = u32be(b + p); break;
      case U64: {
        uint64_t v = u64be(b + p);
        if (v > MAX_SAFE) return -1; // JavaScript's text of it is not the integer's
        R[slot] = (int64_t)v;
        break;
      }
      case ADDR: R[slot] = (int64_t)p; R[slot + 1] = a->size; break;
      case AT: R[slot] = (int64_t)p; break;
      case SPAN: R[slot] = (int64_t)p; R[slot + 1] = (int64_t)(s + len); break;
      case NEST: if (walk(a->sub, b, p, s + len, slot, R) != 0) return -1; break;
    }
    s += (len + 3) & ~(size_t)3;
  }
  return s < e ? -1 : 0; // trailing bytes: a cut message
}

// The output: bytes written while they fit; `over` once one did not.
typedef struct {
  char *p;
  char *end;
  int over;
} w_t;

static void put(w_t *w, const void *s, size_t n) {
  if (w->over || (size_t)(w->end - w->p) < n) { w->over = 1; return; }
  memcpy(w->p, s, n);
  w->p += n;
}
#define LIT(w, s) put(w, s, sizeof s - 1)
static void str(w_t *w, const char *s) { put(w, s, strlen(s)); }
static void u64(w_t *w, uint64_t v) {
  char tmp[20];
  int i = 20;
  do { tmp[--i] = (char)('0' + v % 10); v /= 10; } while (v);
  put(w, tmp + i, (size_t)(20 - i));
}
/** A JSON string of known-plain ASCII (names, addresses). */
static void qstr(w_t *w, const char *s) { LIT(w, "\""); str(w, s); LIT(w, "\""); }

static char *u8text(char *o, unsigned v) {
  if (v >= 100) { *o++ = (char)('0' + v / 100); v %= 100; *o++ = (char)('0' + v / 10); v %= 10; }
  else if (v >= 10) { *o++ = (char)('0' + v / 10); v %= 10; }
  *o++ = (char)('0' + v);
  return o;
}

/** Address text as src/ip.ts writes it: dotted quad, or RFC 5952 (IPv4-mapped dotted). */
static void ip_text(const uint8_t *a, int len, char *out) {
  char *o = out;
  if (len == 4) {
    for (int i = 0; i < 4; i++) { if (i) *o++ = '.'; o = u8text(o, a[i]); }
    *o = 0;
    return;
  }
  unsigned g[8];
  for (int i = 0; i < 8; i++) g[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
  if (!g[0] && !g[1] && !g[2] && !g[3] && !g[4] && g[5] == 0xffff) {
    memcpy(o, "::ffff:", 7);
    ip_text(a + 12, 4, o + 7);
    return;
  }
  int best = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (g[i]) { i++; continue; }
    int j = i;
    while (j < 8 && !g[j]) j++;
    if (j - i > best_len && j - i >= 2) { best = i; best_len = j - i; }
    i = j;
  }
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 8; i++) {
    if (i == best) { *o++ = ':'; *o++ = ':'; i += best_len - 1; continue; }
    if (i && i != best + best_len) *o++ = ':';
    unsigned v = g[i];
    int started = 0;
    for (int sh = 12; sh >= 0; sh -= 4) {
      unsigned d = (v >> sh) & 15;
      if (d || started || sh == 0) { *o++ = hex[d]; started = 1; }
    }
  }
  *o = 0;
}

// SHA-1 (FIPS 180-4) of a message of at most 55 bytes: one block. The
// schedule is kept as the last 16 words (section 6.1.3's alternative), and
// each group of 20 rounds has its own loop: its function and constant fixed.
static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }
#define SHA1_W(i) ((i) < 16 ? w[i] : (w[(i) & 15] = rol(w[((i) - 3) & 15] ^ w[((i) - 8) & 15] ^ w[((i) - 14) & 15] ^ w[(i) & 15], 1)))
#define SHA1_ROUND(i, f, k) do { \
    uint32_t t_ = rol(a, 5) + (f) + e + (k) + SHA1_W(i); \
    e = d; d = c; c = rol(b, 30); b = a; a = t_; \
  } while (0)
static void sha1_short(const uint8_t *m, size_t n, uint8_t out[20]) {
  uint8_t blk[64] = { 0 };
  memcpy(blk, m, n);
  blk[n] = 0x80;
  uint64_t bits = (uint64_t)n * 8;
  for (int i = 0; i < 8; i++) blk[63 - i] = (uint8_t)(bits >> (8 * i));
  uint32_t w[16];
  for (int i = 0; i < 16; i++) w[i] = u32be(blk + 4 * i);
  uint32_t h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  int i = 0;
  for (; i < 20; i++) SHA1_ROUND(i, (b & c) | (~b & d), 0x5a827999);
  for (; i < 40; i++) SHA1_ROUND(i, b ^ c ^ d, 0x6ed9eba1);
  for (; i < 60; i++) SHA1_ROUND(i, (b & c) | (b & d) | (c & d), 0x8f1bbcdc);
  for (; i < 80; i++) SHA1_ROUND(i, b ^ c ^ d, 0xca62c1d6);
  h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
  for (i = 0; i < 5; i++) { out[4 * i] = (uint8_t)(h[i] >> 24); out[4 * i + 1] = (uint8_t)(h[i] >> 16); out[4 * i + 2] = (uint8_t)(h[i] >> 8); out[4 * i + 3] = (uint8_t)h[i]; }
}

/** Base64 (RFC 4648 section 4) of 20 bytes: 28 characters, one '='. */
static void base64_20(const uint8_t *in, char *out) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  int o = 0;
  for (int i = 0; i < 18; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = tab[v >> 18]; out[o++] = tab[(v >> 12) & 63]; out[o++] = tab[(v >> 6) & 63]; out[o++] = tab[v & 63];
  }
  uint32_t v = (uint32_t)in[18] << 16 | (uint32_t)in[19] << 8;
  out[o++] = tab[v >> 18]; out[o++] = tab[(v >> 12) & 63]; out[o++] = tab[(v >> 6) & 63]; out[o++] = '=';
}

static int icmp_counterpart(int proto, int type) {
  // The request/reply pairs of Zeek's ICMP4_counterpart/ICMP6_counterpart (src/community-id.ts).
  static const int8_t v4[][2] = { { 8, 0 }, { 13, 14 }, { 15, 16 }, { 10, 9 }, { 17, 18 } };
  static const uint8_t v6[][2] = { { 128, 129 }, { 130, 131 }, { 133, 134 }, { 135, 136 }, { 139, 140 }, { 144, 145 } };
  if (proto == 1) {
    for (int i = 0; i < COUNT(v4); i++) { if (type == v4[i][0]) return v4[i][1]; if (type == v4[i][1]) return v4[i][0]; }
  } else {
    for (int i = 0; i < COUNT(v6); i++) { if (type == v6[i][0]) return v6[i][1]; if (type == v6[i][1]) return v6[i][0]; }
  }
  return -1;
}

/** Community ID v1 (src/community-id.ts has the spec's sections): "1:" and 28 characters. */
static void community_id(int proto, const uint8_t *sa, const uint8_t *da, int alen, int sport, int dport, char *out) {
  int ports = proto == 6 || proto == 17 || proto == 132 || proto == 1 || proto == 58;
  int one_way = 0;
  if (ports && (proto == 1 || proto == 58)) {
    int c = icmp_counterpart(proto, sport);
    if (c < 0) one_way = 1;
    else dport = c;
  }
  int swap = 0;
  if (!one_way) {
    int cmp = memcmp(sa, da, (size_t)alen);
    swap = cmp > 0 || (cmp == 0 && ports && sport > dport);
  }
  uint8_t m[40];
  size_t n = 0;
  m[n++] = 0; m[n++] = 0; // seed 0
  memcpy(m + n, swap ? da : sa, (size_t)alen); n += (size_t)alen;
  memcpy(m + n, swap ? sa : da, (size_t)alen); n += (size_t)alen;
  m[n++] = (uint8_t)proto;
  m[n++] = 0;
  if (ports) {
    int p1 = swap ? dport : sport, p2 = swap ? sport : dport;
    m[n++] = (uint8_t)(p1 >> 8); m[n++] = (uint8_t)p1; m[n++] = (uint8_t)(p2 >> 8); m[n++] = (uint8_t)p2;
  }
  uint8_t h[20];
  sha1_short(m, n, h);
  out[0] = '1'; out[1] = ':';
  base64_20(h, out + 2);
  out[30] = 0;
}

/** ISO 8601 UTC with microseconds, as isoMicros() in src/event.ts (years 1970 to 2255). */
static void iso_micros(uint64_t us, char *out) {
  time_t sec = (time_t)(us / 1000000);
  unsigned micro = (unsigned)(us % 1000000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  char *o = out;
  int y = tm.tm_year + 1900;
  *o++ = (char)('0' + y / 1000); *o++ = (char)('0' + y / 100 % 10); *o++ = (char)('0' + y / 10 % 10); *o++ = (char)('0' + y % 10);
  int f[5] = { tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec };
  const char sep[5] = { '-', 'T', ':', ':', '.' };
  *o++ = '-';
  for (int i = 0; i < 5; i++) { *o++ = (char)('0' + f[i] / 10); *o++ = (char)('0' + f[i] % 10); *o++ = sep[i]; }
  for (int d = 100000; d; d /= 10) *o++ = (char)('0' + micro / (unsigned)d % 10);
  *o++ = 'Z';
  *o = 0;
}

void ct_lines_now(char out[CT_TS_LEN + 1]) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  iso_micros((uint64_t)t.tv_sec * 1000000 + (uint64_t)(t.tv_nsec + 500) / 1000, out);
}

/** `,"key":"time"` of a stamp slot; 0: nothing to write (absent or 0), -1: leave to JavaScript. */
static int stamp(w_t *w, const uint8_t *b, const int64_t *R, int slot, const char *key) {
  if (R[slot] < 0) return 0;
  uint64_t ns = u64be(b + R[slot]);
  if (!ns) return 0;
  uint64_t us = ns / 1000;
  if (us > MAX_SAFE) return -1;
  char t[CT_TS_LEN + 1];
  iso_micros(us, t);
  str(w, key);
  qstr(w, t);
  return 0;
}

/** The tuple in slots from `t` as an object, its addresses' text given. */
static void tuple(w_t *w, const int64_t *R, int t, const char *src, const char *dst) {
  LIT(w, "{\"src\":"); qstr(w, src);
  if (R[t + T_SPORT] >= 0) { LIT(w, ",\"sport\":"); u64(w, (uint64_t)R[t + T_SPORT]); }
  LIT(w, ",\"dst\":"); qstr(w, dst);
  if (R[t + T_SPORT] >= 0 && R[t + T_DPORT] >= 0) { LIT(w, ",\"dport\":"); u64(w, (uint64_t)R[t + T_DPORT]); }
  LIT(w, "}");
}

/**
 * One message's line. 1: written; 0: not an event (another type), or one
 * the filters leave out; -1: leave the datagram to JavaScript.
 */
static int message(w_t *w, const uint8_t *b, size_t start, size_t end, unsigned type, unsigned flags, const ct_lines_opts *o, uint32_t *received) {
  if (type >> 8 != NFNL_SUBSYS_CTNETLINK) return 0;
  unsigned msg = type & 0xff;
  const char *kind;
  if (msg == IPCTNL_MSG_CT_DELETE) kind = "destroy";
  else if (msg == IPCTNL_MSG_CT_NEW) kind = flags & (NLM_F_CREATE | NLM_F_EXCL) ? "new" : "update";
  else return 0;
  if (end - start < 4) return -1;
  int64_t R[SLOTS];
  for (int i = 0; i < SLOTS; i++) R[i] = -1;
  if (walk(&CTA_T, b, start + 4, end, 0, R) != 0) return -1;
  if (R[ORIG + T_SRC] < 0 || R[ID] < 0 || R[ORIG + T_DST] < 0) return -1;
  if (R[ORIG + T_SRC_LEN] != R[ORIG + T_DST_LEN]) return -1;
  if (R[REPLY + T_SRC] >= 0 && (R[REPLY + T_DST] < 0 || R[REPLY + T_SRC_LEN] != R[REPLY + T_DST_LEN])) return -1;
  // What only the JavaScript decoder writes (rare: labels, a helper, a security context).
  if (R[HELPER] >= 0 || R[LABELS] >= 0 || R[SECCTX] >= 0) return -1;
  // An original tuple with a source port and no destination port: its reply's key order differs.
  if (R[ORIG + T_SPORT] >= 0 && R[ORIG + T_DPORT] < 0) return -1;
  int alen = (int)R[ORIG + T_SRC_LEN];
  unsigned nf = b[start];
  const char *family = nf == AF_INET_ ? "ipv4" : nf == AF_INET6_ ? "ipv6" : alen == 4 ? "ipv4" : "ipv6";
  int proto = R[ORIG + T_PROTO] >= 0 ? (int)R[ORIG + T_PROTO] : 0;
  (*received)++;
  if (!o->all_protos && !(o->protos[proto >> 3] & (1u << (proto & 7)))) return 0;
  if (o->family && strcmp(family, o->family == AF_INET_ ? "ipv4" : "ipv6") != 0) return 0;

  char osrc[48], odst[48], rsrc[48], rdst[48];
  ip_text(b + R[ORIG + T_SRC], alen, osrc);
  ip_text(b + R[ORIG + T_DST], alen, odst);
  LIT(w, "{\"ts\":\""); put(w, o->ts, CT_TS_LEN);
  LIT(w, "\",\"event\":"); qstr(w, kind);
  LIT(w, ",\"id\":"); u64(w, (uint64_t)R[ID]);
  LIT(w, ",\"family\":"); qstr(w, family);
  LIT(w, ",\"proto\":");
  if (PROTO_NAMES[proto]) qstr(w, PROTO_NAMES[proto]);
  else { LIT(w, "\""); u64(w, (uint64_t)proto); LIT(w, "\""); }
  LIT(w, ",\"src\":"); qstr(w, osrc);
  if (R[ORIG + T_SPORT] >= 0) { LIT(w, ",\"sport\":"); u64(w, (uint64_t)R[ORIG + T_SPORT]); }
  LIT(w, ",\"dst\":"); qstr(w, odst);
  if (R[ORIG + T_SPORT] >= 0) { LIT(w, ",\"dport\":"); u64(w, (uint64_t)R[ORIG + T_DPORT]); }
  LIT(w, ",\"reply\":");
  if (R[REPLY + T_SRC] >= 0) {
    ip_text(b + R[REPLY + T_SRC], (int)R[REPLY + T_SRC_LEN], rsrc);
    ip_text(b + R[REPLY + T_DST], (int)R[REPLY + T_DST_LEN], rdst);
    tuple(w, R, REPLY, rsrc, rdst);
  } else {
    // The original swapped, as the JavaScript decoder makes it.
    int64_t S[TUPLE_SLOTS];
    for (int i = 0; i < TUPLE_SLOTS; i++) S[i] = -1;
    S[T_SPORT] = R[ORIG + T_DPORT];
    S[T_DPORT] = R[ORIG + T_SPORT];
    if (R[ORIG + T_SPORT] < 0) S[T_SPORT] = -1;
    tuple(w, S, 0, odst, osrc);
  }
  int64_t st = R[TCP_STATE] >= 0 ? R[TCP_STATE] : R[SCTP_STATE] >= 0 ? R[SCTP_STATE] : R[DCCP_STATE];
  if (st >= 0) {
    const char *const *names = R[TCP_STATE] >= 0 ? TCP_STATES : R[SCTP_STATE] >= 0 ? SCTP_STATES : DCCP_STATES;
    int n = R[TCP_STATE] >= 0 ? COUNT(TCP_STATES) : R[SCTP_STATE] >= 0 ? COUNT(SCTP_STATES) : COUNT(DCCP_STATES);
    LIT(w, ",\"state\":");
    if (st < n) qstr(w, names[st]);
    else { LIT(w, "\""); u64(w, (uint64_t)st); LIT(w, "\""); }
  }
  LIT(w, ",\"status\":[");
  if (R[STATUS] >= 0) {
    uint32_t v = (uint32_t)R[STATUS];
    int first = 1;
    for (int i = 0; i < 32; i++) {
      if (!(v & (1u << i))) continue;
      if (!first) LIT(w, ",");
      first = 0;
      if (i < COUNT(STATUS_BITS)) qstr(w, STATUS_BITS[i]);
      else { LIT(w, "\"BIT"); u64(w, (uint64_t)i); LIT(w, "\""); }
    }
  }
  LIT(w, "]");
  if (R[TIMEOUT] >= 0) { LIT(w, ",\"timeout\":"); u64(w, (uint64_t)R[TIMEOUT]); }
  LIT(w, ",\"mark\":"); u64(w, R[MARK] >= 0 ? (uint64_t)R[MARK] : 0);
  LIT(w, ",\"zone\":"); u64(w, R[ZONE] >= 0 ? (uint64_t)R[ZONE] : R[ORIG + T_ZONE] >= 0 ? (uint64_t)R[ORIG + T_ZONE] : 0);
  int icmp = R[ORIG + T_ICMP_TYPE] >= 0;
  int itype = (int)R[ORIG + T_ICMP_TYPE], icode = R[ORIG + T_ICMP_CODE] >= 0 ? (int)R[ORIG + T_ICMP_CODE] : 0;
  if (icmp) {
    LIT(w, ",\"icmp\":{\"type\":"); u64(w, (uint64_t)itype);
    LIT(w, ",\"code\":"); u64(w, (uint64_t)icode);
    LIT(w, ",\"id\":"); u64(w, R[ORIG + T_ICMP_ID] >= 0 ? (uint64_t)R[ORIG + T_ICMP_ID] : 0);
    LIT(w, "}");
  }
  char cid[32];
  int sport = R[ORIG + T_SPORT] >= 0 ? (int)R[ORIG + T_SPORT] : 0, dport = R[ORIG + T_DPORT] >= 0 ? (int)R[ORIG + T_DPORT] : 0;
  community_id(proto, b + R[ORIG + T_SRC], b + R[ORIG + T_DST], alen, icmp ? itype : sport, icmp ? icode : dport, cid);
  LIT(w, ",\"community_id\":"); qstr(w, cid);
  if (o->host) put(w, o->host, o->host_len);
  if (R[CORIG + C_PACKETS] >= 0 || R[CREPLY + C_PACKETS] >= 0) {
    uint64_t c[4];
    for (int i = 0; i < 4; i++) c[i] = R[CORIG + i] >= 0 ? (uint64_t)R[CORIG + i] : 0;
    LIT(w, ",\"counters\":{\"orig\":{\"packets\":"); u64(w, c[0]);
    LIT(w, ",\"bytes\":"); u64(w, c[1]);
    LIT(w, "},\"reply\":{\"packets\":"); u64(w, c[2]);
    LIT(w, ",\"bytes\":"); u64(w, c[3]);
    LIT(w, "}}");
  }
  if (stamp(w, b, R, START, ",\"start\":") != 0 || stamp(w, b, R, STOP, ",\"stop\":") != 0) return -1;
  if (R[SECMARK] > 0) { LIT(w, ",\"secmark\":"); u64(w, (uint64_t)R[SECMARK]); }
  LIT(w, "}\n");
  return 1;
}

long ct_lines_datagram(const uint8_t *d, size_t len, char *out, size_t cap, const ct_lines_opts *o, uint32_t *emitted, uint32_t *received) {
  w_t w = { out, out + cap, 0 };
  uint32_t em = 0, rec = 0;
  size_t off = 0;
  while (off < len) {
    if (len - off < NLMSG_HDRLEN) return CT_LINES_DECLINE;
    size_t mlen = u32h(d + off);
    if (mlen < NLMSG_HDRLEN || off + mlen > len) return CT_LINES_DECLINE;
    int r = message(&w, d, off + NLMSG_HDRLEN, off + mlen, u16h(d + off + 4), u16h(d + off + 6), o, &rec);
    if (r < 0) return CT_LINES_DECLINE;
    em += (uint32_t)r;
    off += (mlen + 3) & ~(size_t)3;
  }
  if (w.over) return CT_LINES_NO_ROOM;
  *emitted += em;
  *received += rec;
  return w.p - out;
}
