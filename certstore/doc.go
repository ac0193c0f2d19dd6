// Package certstore manages the certificates KVM agents trust when they
// download templates directly from mirrors. It answers the operator's
// question behind "PKIX path building failed" — which hop, which
// certificate, and what to trust — and then keeps every host's trust store
// holding exactly what the orchestrator says, checked by reading it back.
//
// # Probe and diagnose
//
// A template URL often redirects: the mirror's own host answers 302 and a
// CDN or object store serves the bytes. A verifying client that fails names
// only the last URL; Probe follows the chain one hop at a time and records,
// for each hop, the URL, status, Location, resolved addresses and the
// certificate chain exactly as served, then verifies it against an
// explicit root pool (ProbeOptions.Roots, or SystemRoots: never the
// platform verifier, which on macOS and Windows fetches missing
// intermediates behind the caller's back and says "fine" where a Linux
// agent fails). Each hop gets a Problem — missing-intermediate,
// unknown-authority, expired, not-yet-valid, hostname-mismatch,
// weak-signature, self-signed — and an explanation that names the
// certificate to trust or the fix to make on the server:
//
//	rep, err := certstore.Probe(ctx, "https://mirror.example/t.qcow2", certstore.ProbeOptions{AIA: true})
//	if err != nil { ... }
//	for _, h := range rep.Hops {
//		if h.TLS != nil && !h.TLS.Verified {
//			fmt.Printf("hop %d %s: %s\n", h.Index, h.TLS.Problem, h.TLS.Explanation)
//		}
//	}
//
// With AllAddresses the probe also dials every address of a hop's host
// with the same SNI, because the edges of one CDN name can serve different
// chains. The probe never sends its request (whose query may carry a
// signed URL's secret) to a hop whose TLS did not verify, unless told to.
//
// # Completing chains
//
// Complete fetches the intermediates a server failed to send, through the
// Authority Information Access caIssuers URLs of the certificates (DER,
// PEM or PKCS#7 responses), depth-first over every URL, loop-safe and
// bounded in depth, size, count and time. Fetched certificates are never
// trusted by being fetched: trust still has to end at a root the caller
// holds. Probe and Complete connect only where Policy allows: loopback,
// link-local and cloud metadata addresses are refused unless allowed, on
// the resolved address of every connection, redirects included (the same
// rules as the download package, from one internal package).
//
// # Registry and Sync
//
// A Registry keeps certificates by alias (a lowercase DNS label; "cloud"
// and "cloudca..." are the agent's own and reserved), scoped to a zone and
// hypervisor and optionally to one host, with each host's state. It is
// CloudStack's upload / revoke / list / provision of direct download
// certificates, without CloudStack's failure modes:
//
//   - Upload parses every certificate of the PEM, refuses expired and
//     not-yet-valid ones and duplicate aliases, and warns about pinned
//     leaves (naming the issuer to trust instead), SHA-1 signatures, weak
//     keys and close expiry (CheckAnchors).
//   - Sync reads each Up host's actual trust store, imports what is
//     missing or different, deletes what was revoked (from the zone or
//     from that host), reads the store back, and only then records the
//     host as Synced; a host whose import "succeeded" but whose store does
//     not hold the certificate is Failed and is retried. Entries the
//     registry does not own are left alone.
//   - Hosts are listed at every Sync, so hosts added later are picked up;
//     hosts that are down are skipped and caught up when they are Up.
//     RunSyncer repeats Sync on an interval until its context ends.
//
// Records live in a Database: NewMemoryDB, or certstore/sqlregistry for
// SQLite (embedded, the default) and PostgreSQL. certstore/registrytest
// checks any Database implementation.
//
// # Trust stores
//
// Hosts are reached through the TrustStore interface (list, import,
// delete by alias). FileStore is one for an agent's local store: a JKS
// file (written with keystore-go: lowercase aliases, type "X.509", sorted
// so the bytes are reproducible, private key entries kept), a PKCS12 trust
// store (go-pkcs12), or a directory of PEM files; the format is detected
// from the file's first bytes, and every change is an atomic rewrite under
// a lock. KeytoolStore drives the JDK's keytool for stores Go cannot
// rewrite, such as CloudStack's cloud.jks, a PKCS12 file holding the
// agent's private key.
//
// ReadStore, WriteJKS, WritePKCS12 and WritePEM convert between the
// formats; NewCertPool and NewTLSConfig make what Go clients take. The
// download package takes a *x509.CertPool (download.WithRootCAs) or a
// source consulted per connection (download.WithTrustSource, which a
// FileStore satisfies), so a certificate added here is trusted by the next
// download without a restart; certstore and download do not import each
// other.
//
// # Expiry
//
// CheckExpiry reports each certificate of a chain and the chain's soonest
// expiry with levels (ok, warning, critical, expired) at thresholds that
// default to 30 and 7 days; Registry.ExpiryReport does so for every
// registered certificate, most urgent first.
//
// # Errors
//
// Errors wrap a sentinel for errors.Is and name the certificate, alias,
// host, file or URL concerned: ErrInvalidCertificate, ErrInvalidAlias,
// ErrDuplicateAlias (the message names the certificate holding the alias),
// ErrNotFound, ErrExpired and ErrNotYetValid from the Registry;
// ErrWrongPassword (JKS and PKCS12 cannot tell it from a damaged file),
// ErrUnsupportedFormat, ErrInvalidStore and ErrNeedsKeytool from the
// stores; ErrInvalidOptions, ErrNoSystemRoots, ErrIncompleteChain and
// ErrAIA (an *AIAError naming the URL) from Probe and Complete. A Probe of
// a server with a bad chain is not an error: the Report says what is wrong.
//
// # Concurrency
//
// Probe, Complete and the conversion functions are safe to call
// concurrently. Registry, MemoryDB, FileStore and KeytoolStore are safe
// for concurrent use; a Registry serializes its work per host.
package certstore
