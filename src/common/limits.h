// Every size and time limit kubegate enforces, named in one place. Values
// are defaults; the config file may override the ones it names.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace kubegate::limits {

// Request head (request line + all headers). The API server accepts request
// lines up to 1 MiB; kubegate answers 431 past this rather than truncate.
inline constexpr std::size_t kMaxRequestHeadBytes = 1 << 20;
// Request body; matches kube-apiserver's MaxRequestBodyBytes (3 MiB).
inline constexpr std::size_t kMaxRequestBodyBytes = 3 << 20;
// Bodies kubegate must read to classify (DELETE's DeleteOptions).
inline constexpr std::size_t kMaxInspectedBodyBytes = 64 << 10;
// Response head from the upstream.
inline constexpr std::size_t kMaxResponseHeadBytes = 1 << 20;
// Per-direction relay buffer: the most bytes held for one direction of one
// connection. A slow reader stops the relay from reading the other side.
inline constexpr std::size_t kRelayBufferBytes = 64 << 10;
// One read from a stream being relayed: the plaintext of one TLS record
// (RFC 8446 5.1), so a body comes a record per read and goes on a record
// per write. Beast reads as far as its buffer's free room, at least 512.
inline constexpr std::size_t kRelayReadBytes = 16 << 10;
// Room for a response head and a small body (a Pod) in one read.
inline constexpr std::size_t kResponseHeadReadBytes = 4 << 10;
// Room for a request head in one read.
inline constexpr std::size_t kRequestHeadReadBytes = 4 << 10;
// The first piece buffer of a body of no announced length (a watch, logs
// -f, a chunked list): events are small and a watch may stay open for
// hours, so it starts small (it grows while pieces come full).
inline constexpr std::size_t kOpenEndedPieceBytes = 4 << 10;
// A client must deliver its complete request head within this time.
inline constexpr std::chrono::seconds kRequestHeadTimeout{30};
// A client must keep a request body moving; a stall longer than this ends it.
inline constexpr std::chrono::seconds kBodyIdleTimeout{60};
// Idle keep-alive connections from clients are closed after this.
inline constexpr std::chrono::seconds kClientIdleTimeout{120};
// Upgraded streams (exec, attach, port-forward) idle this long are closed;
// kubelet's streaming-connection-idle-timeout default is 4 h.
inline constexpr std::chrono::hours kUpgradedIdleTimeout{4};
// After answering an error before a request body was read, kubegate stops
// sending and keeps reading (and discarding) this long / this much, so the
// client finishes its write and reads the answer instead of a reset.
inline constexpr std::chrono::seconds kLingerTime{2};
inline constexpr std::size_t kLingerMaxBytes = 16 << 20;
// Connecting and TLS handshake to the upstream.
inline constexpr std::chrono::seconds kUpstreamConnectTimeout{10};
// Idle upstream connections kept per worker thread: as many as were in use
// at once, up to this bound, each for kUpstreamIdleKeep. (At 32, a worker
// serving 64 concurrent requests closed and reopened about 2,000 upstream
// TLS connections per 5 s; docs/performance.md.)
inline constexpr std::size_t kUpstreamPoolSize = 1024;
// An idle upstream connection older than this is not reused (API servers
// and load balancers close idle ones after about a minute).
inline constexpr std::chrono::seconds kUpstreamIdleKeep{50};

// Store and audit log.
// Prepared statements kept per SQLite connection.
inline constexpr std::size_t kSqlStatementCache = 64;
// How long a SQLite writer waits for another process's lock.
inline constexpr std::chrono::milliseconds kSqliteBusyTimeout{5000};
// Audit entries waiting for the writer. When full, allowed requests are
// refused (fail closed) and rejections' entries are counted as dropped.
inline constexpr std::size_t kAuditMaxQueue = 65536;
// Entries per group commit (one transaction, one flush).
inline constexpr std::size_t kAuditMaxBatch = 1024;
// The audit log's filter index is written behind the log (SQLite): when this
// many entries wait for it, or the oldest has waited kAuditIndexLag. Queries
// scan the entries not indexed yet, so the lag costs reads, not answers.
inline constexpr std::size_t kAuditIndexBatch = 2048;
inline constexpr std::chrono::milliseconds kAuditIndexLag{250};
// With the audit journal and audit.fsync: per_commit, entries no request
// waits for (results, refusals) are written at once and synced with the
// next decision's group, or at most this long after.
inline constexpr std::chrono::milliseconds kAuditUnawaitedSyncMax{100};
// Entries per catch-up transaction: a commit waiting behind one waits for
// at most this many entries' index writes (a few ms).
inline constexpr std::size_t kAuditIndexChunk = 512;
// Beyond this many entries waiting (the index keeps failing), the writer
// stops keeping copies and later reads them back from the log instead.
inline constexpr std::size_t kAuditIndexMaxKept = 65536;
// The audit journal (SQLite) starts a new segment file once the active one
// holds this much; a closed segment is deleted once SQLite holds all of it.
inline constexpr std::uint64_t kAuditJournalSegmentBytes = 4 * 1024 * 1024;
// Rows per multi-row INSERT statement.
inline constexpr std::size_t kAuditInsertRows = 64;
// After a failed commit the writer waits this long before trying again,
// doubling up to the maximum.
inline constexpr std::chrono::milliseconds kAuditRetryMin{50};
inline constexpr std::chrono::milliseconds kAuditRetryMax{1000};
// Request bodies stored in audit records are cut at this size.
inline constexpr std::size_t kAuditMaxStoredBody = 64 * 1024;
// Largest page of records one query returns.
inline constexpr std::size_t kAuditMaxQueryLimit = 10000;

// Policy and approvals.
// How often the gateway checks whether the policy file changed.
inline constexpr std::chrono::milliseconds kPolicyFileCheckInterval{1000};
// Held requests and streams under a grant are woken by the change itself
// (approval/wake_ups.h). As a safety net for changes made by another
// process sharing the store, one sweep per gateway looks this often for
// the approval requests and grants someone waits on (two queries in all).
inline constexpr std::chrono::milliseconds kWakeUpSweepInterval{1000};
// Replicas sharing PostgreSQL: each says it is alive this often; one not
// seen for kReplicaDeadAfter is gone, and the requests only it held are
// abandoned by the survivors (docs/architecture.md).
inline constexpr std::chrono::milliseconds kReplicaHeartbeat{1000};
inline constexpr std::chrono::milliseconds kReplicaDeadAfter{10000};
// A held request handed off at shutdown is answered 503 with this
// Retry-After; client-go (kubectl) waits it out and sends the request
// again (at most 10 times), reaching another replica behind the Service.
// Well inside kReplicaDeadAfter, so the retry finds the request pending.
inline constexpr std::chrono::seconds kHandOffRetryAfter{1};
// Namespace labels read for namespaceSelector rules are used this long
// (a label change takes effect within it); at most this many are kept.
inline constexpr std::chrono::seconds kNamespaceLabelTtl{10};
inline constexpr std::size_t kNamespaceLabelCacheEntries = 4096;
// The largest upstream answer kubegate reads for itself (a Namespace, a
// server-side dry-run result).
inline constexpr std::size_t kMaxOwnUpstreamResponseBytes = 1 << 20;
// Session recording: the longest WebSocket message the recording decoder
// keeps (longer ones are cut and counted).
inline constexpr std::size_t kRecordingMaxMessageBytes = 1 << 20;
// Decoded payload a session may have queued for the recording writer. Past
// it, an optional recording drops payload (counted, marked truncated) and a
// required one makes the relay wait, checking this often.
inline constexpr std::size_t kRecordingMaxPendingBytes = 16 << 20;
inline constexpr std::chrono::milliseconds kRecordingBehindPoll{2};
// Approval notifications: queued events, attempts per event, the time one
// attempt may take, and the first retry's wait (doubling).
inline constexpr std::size_t kWebhookMaxQueue = 1000;
inline constexpr int kWebhookAttempts = 3;
inline constexpr std::chrono::seconds kWebhookTimeout{5};
inline constexpr std::chrono::milliseconds kWebhookRetryBackoff{200};
// What a caller may send ahead of its answer while its request is held or
// a streamed answer (watch, logs -f) runs: kept for the next request up to
// this bound, beyond it the request is withdrawn / the stream ended.
inline constexpr std::size_t kMaxBytesReadAhead = 64 * 1024;
// How long ending a session (grant expired or revoked, recording failed) may
// take: its Status, and answers to a SPDY client's late streams; then close.
inline constexpr std::chrono::seconds kSessionEndNoticeTimeout{2};
// Bodies of approval API requests (approve/deny/revoke).
inline constexpr std::size_t kMaxApprovalApiBody = 16 * 1024;
// Bearer tokens read as JWTs (OIDC ID tokens, ServiceAccount tokens): the
// longest kubegate parses. kube-apiserver has no bound of its own below
// its 1 MiB header limit; real ID tokens are 1-4 KiB.
inline constexpr std::size_t kMaxJwtBytes = 16 << 10;
// An OIDC discovery or JWKS document kubegate reads from an issuer.
inline constexpr std::size_t kMaxJwksBytes = 256 << 10;
// OIDC signing keys: refreshed this often while the issuer answers; an
// issuer without keys yet is asked again this often (kube-apiserver polls
// every 10 s); a token whose kid is unknown makes one refresh, at most this
// often per issuer; keys not refreshed for kOidcKeyMaxAge are not used
// (the issuer has been unreachable for that long: tokens get 503).
inline constexpr std::chrono::minutes kOidcKeyRefresh{5};
inline constexpr std::chrono::seconds kOidcKeyRetry{10};
inline constexpr std::chrono::seconds kOidcUnknownKidRefresh{10};
inline constexpr std::chrono::hours kOidcKeyMaxAge{24};
inline constexpr std::chrono::seconds kOidcFetchTimeout{10};
// ServiceAccount tokens: a TokenReview answer is reused this long at most
// (never past the token's own exp), for at most this many tokens.
inline constexpr std::chrono::seconds kTokenReviewCacheTtl{10};
inline constexpr std::size_t kTokenReviewCacheEntries = 10000;
// Per-task agent tokens: the longest life one may be issued with, and how
// often each gateway re-reads the store for revocations (a revoked token is
// refused within this on every worker and replica).
inline constexpr std::chrono::hours kMaxTaskTokenTtl{24};
inline constexpr std::chrono::milliseconds kCredentialPoll{250};
// Static tokens of identities managed at runtime: every one expires, one
// year at the longest (rotate them); 90 days unless asked otherwise.
inline constexpr std::chrono::hours kMaxStaticTokenTtl{366 * 24};
inline constexpr std::chrono::hours kDefaultStaticTokenTtl{90 * 24};
// exp, nbf and iat are checked with this much leeway for clock skew.
inline constexpr std::chrono::seconds kJwtClockSkew{30};

}  // namespace kubegate::limits
